//! CloudWatch in the protocol the Rust SDK speaks (Smithy RPC v2 CBOR), in front of moto, which speaks CloudWatch's JSON protocol only.
//!
//! `aws-sdk-cloudwatch` sends `POST /service/GraniteServiceVersion20100801/operation/{Operation}`
//! with a CBOR body; real CloudWatch takes it, moto (5.2) answers it with a
//! `NotImplementedError`. This proxy turns each request into the same
//! operation in CloudWatch's JSON protocol (`X-Amz-Target`, the same
//! members; CBOR timestamps as epoch seconds), forwards it to moto with its
//! signature, and turns moto's JSON answer back into CBOR: members whose
//! name ends in `Timestamp`, and `GetMetricData`'s `Timestamps`, as CBOR
//! timestamps (tag 1, epoch seconds), JSON numbers with a fraction as
//! floats, nulls left out. moto keeps the state; nothing is invented here.
//! Point the SDK at it with `AWS_ENDPOINT_URL_CLOUDWATCH`.

use std::convert::Infallible;

use bytes::Bytes;
use ciborium::Value as Cbor;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;
use tokio::net::TcpListener;

/// The path the SDK posts to, before the operation's name.
const OPERATION_PATH: &str = "/service/GraniteServiceVersion20100801/operation/";
/// The JSON protocol's target prefix (`targetPrefix` in the service model).
const TARGET_PREFIX: &str = "GraniteServiceVersion20100801";

/// The proxy, listening on a free loopback port.
#[derive(Debug)]
pub struct CloudWatchCbor {
    pub port: u16,
    _server: tokio::task::JoinHandle<()>,
}

impl CloudWatchCbor {
    /// Translates for moto at `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| async move {
                        Ok::<_, Infallible>(answer(request, upstream).await)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            port,
            _server: server,
        }
    }

    /// `AWS_ENDPOINT_URL_CLOUDWATCH`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

async fn answer(request: Request<Incoming>, upstream: u16) -> Response<Full<Bytes>> {
    let (mut parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Some(operation) = parts
        .uri
        .path()
        .strip_prefix(OPERATION_PATH)
        .map(str::to_owned)
    else {
        return refused(format!("not an RPC v2 CBOR request: {}", parts.uri.path()));
    };
    let input: Json = if body.is_empty() {
        Json::Object(Default::default())
    } else {
        match ciborium::from_reader::<Cbor, _>(body.as_ref()) {
            Ok(input) => from_cbor(input),
            Err(e) => return refused(format!("undecodable CBOR: {e}")),
        }
    };
    parts.uri = hyper::Uri::from_static("/");
    for name in ["smithy-protocol", "accept", "x-amzn-query-mode"] {
        parts.headers.remove(name);
    }
    let header = |v: String| hyper::header::HeaderValue::from_str(&v).expect("header value");
    parts.headers.insert(
        hyper::header::CONTENT_TYPE,
        header("application/x-amz-json-1.0".to_owned()),
    );
    parts.headers.insert(
        "x-amz-target",
        header(format!("{TARGET_PREFIX}.{operation}")),
    );
    let response =
        crate::flaky_events::forward(parts, Bytes::from(input.to_string()), upstream).await;
    let (mut parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let output: Json = serde_json::from_slice(&body).unwrap_or_else(|_| {
        serde_json::json!({"__type": "InternalFailure", "message": String::from_utf8_lossy(&body)})
    });
    let mut encoded = Vec::new();
    ciborium::into_writer(&to_cbor(&output, ""), &mut encoded).expect("encode CBOR");
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    parts.headers.insert(
        hyper::header::CONTENT_TYPE,
        header("application/cbor".to_owned()),
    );
    parts
        .headers
        .insert("smithy-protocol", header("rpc-v2-cbor".to_owned()));
    parts
        .headers
        .insert(hyper::header::CONTENT_LENGTH, encoded.len().into());
    Response::from_parts(parts, Full::new(Bytes::from(encoded)))
}

/// A CBOR request as CloudWatch's JSON protocol writes it: timestamps
/// (tag 1) as epoch seconds.
fn from_cbor(value: Cbor) -> Json {
    match value {
        // A timestamp (tag 1) is its epoch seconds; other tags their value.
        Cbor::Tag(_, inner) => from_cbor(*inner),
        Cbor::Integer(i) => i128::from(i)
            .try_into()
            .map(|i: i64| Json::from(i))
            .unwrap_or(Json::Null),
        Cbor::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Cbor::Text(s) => Json::String(s),
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Array(items) => Json::Array(items.into_iter().map(from_cbor).collect()),
        Cbor::Map(members) => Json::Object(
            members
                .into_iter()
                .filter_map(|(k, v)| match k {
                    Cbor::Text(k) => Some((k, from_cbor(v))),
                    _ => None,
                })
                .collect(),
        ),
        _ => Json::Null,
    }
}

/// `value`, the member `name` of its parent, as RPC v2 CBOR writes it.
fn to_cbor(value: &Json, name: &str) -> Cbor {
    match value {
        Json::Number(n) if name.ends_with("Timestamp") || name == "Timestamps" => {
            Cbor::Tag(1, Box::new(Cbor::Float(n.as_f64().unwrap_or_default())))
        }
        Json::Number(n) => match n.as_i64() {
            Some(i) => Cbor::Integer(i.into()),
            None => Cbor::Float(n.as_f64().unwrap_or_default()),
        },
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(*b),
        Json::String(s) => Cbor::Text(s.clone()),
        Json::Array(items) => Cbor::Array(items.iter().map(|v| to_cbor(v, name)).collect()),
        Json::Object(members) => Cbor::Map(
            members
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (Cbor::Text(k.clone()), to_cbor(v, k)))
                .collect(),
        ),
    }
}

fn refused(why: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(400)
        .body(Full::new(Bytes::from(why)))
        .expect("response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_tagged_and_fractions_are_floats() {
        let moto = serde_json::json!({
            "MetricAlarms": [{"StateUpdatedTimestamp": 1796211859.792, "Period": 60,
                              "Threshold": 0.0, "Unit": null}]
        });
        let Cbor::Map(top) = to_cbor(&moto, "") else {
            panic!("a map")
        };
        let Cbor::Array(alarms) = &top[0].1 else {
            panic!("an array")
        };
        let Cbor::Map(alarm) = &alarms[0] else {
            panic!("a map")
        };
        let get = |k: &str| alarm.iter().find(|(n, _)| n == &Cbor::Text(k.into()));
        assert!(matches!(
            get("StateUpdatedTimestamp"),
            Some((_, Cbor::Tag(1, _)))
        ));
        assert_eq!(get("Period").map(|p| &p.1), Some(&Cbor::Integer(60.into())));
        assert_eq!(get("Threshold").map(|p| &p.1), Some(&Cbor::Float(0.0)));
        assert!(get("Unit").is_none());
    }
}
