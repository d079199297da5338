//! Cold-start plumbing the two functions share: log setup, and a failed start reported as a Lambda init error.
//!
//! - [`logging::init`] installs JSON-lines logging that honours Lambda's log
//!   controls.
//! - [`metrics::Metrics`] writes CloudWatch metrics (EMF) to stdout.
//! - [`aws::loader`] starts the AWS SDK configuration at the least cold-start
//!   cost.
//! - [`https::connector`] is the TLS connector of the functions' own HTTP
//!   clients.
//! - A function whose configuration is missing or invalid must not start
//!   serving, and must not panic at its first request. [`fail_init`] logs the
//!   message, posts it to the Runtime API's `/runtime/init/error` (so Lambda
//!   reports `Runtime.InitError` with that message to whoever invoked it), and
//!   returns it as the error `main` exits with.

pub mod aws;
pub mod https;
pub mod logging;
pub mod metrics;

use std::fmt::Display;

use lambda_runtime_api_client::PooledClient;
use lambda_runtime_api_client::body::Body;

/// The error type `main` returns.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";
const ERROR_TYPE: &str = "Runtime.InitError";

/// Logs `error`, reports it to the Runtime API when there is one, and returns it.
pub async fn fail_init(error: impl Display) -> Error {
    let message = error.to_string();
    tracing::error!(error = %message, "cold start failed");
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
        && let Err(report) = report(&message).await
    {
        tracing::error!(error = %report, "could not report the init error to the Lambda Runtime API");
    }
    message.into()
}

async fn report(message: &str) -> Result<(), Error> {
    let payload = serde_json::json!({ "errorType": ERROR_TYPE, "errorMessage": message });
    let request = lambda_runtime_api_client::build_request()
        .method(http::Method::POST)
        .uri(INIT_ERROR_PATH)
        .header("lambda-runtime-function-error-type", ERROR_TYPE)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(&payload)?))?;
    let response = PooledClient::builder().build().call(request).await?;
    if !response.status().is_success() {
        return Err(format!("runtime API answered {}", response.status()).into());
    }
    Ok(())
}
