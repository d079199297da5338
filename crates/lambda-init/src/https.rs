//! The TLS connector of the functions' own HTTP clients (handlers' endpoints, the receiver's allowlist fetch): rustls on aws-lc, the provider the AWS SDK already links, HTTP/1.

use std::sync::Arc;

use hyper_util::client::legacy::connect::HttpConnector;

/// An HTTP/1 connector over rustls.
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// `http` under TLS. With `plain_http`, only `http://` (a loopback or
/// in-network service) and no roots to load; otherwise `https://` only,
/// trusting the system's roots (file and CPU work: build it once).
pub fn connector(mut http: HttpConnector, plain_http: bool) -> Result<Connector, String> {
    http.enforce_http(false);
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    Ok(if plain_http {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        builder
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http)
    } else {
        builder
            .with_provider_and_native_roots(provider)
            .map_err(|e| format!("loading the system's CA roots: {e}"))?
            .https_only()
            .enable_http1()
            .wrap_connector(http)
    })
}
