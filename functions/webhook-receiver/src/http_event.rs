//! The Lambda HTTP events the receiver takes and the responses it gives.
//!
//! One lenient parser covers API Gateway REST (v1), HTTP API (v2), Lambda
//! function URLs (v2 shape) and ALB target groups. It never fails and never
//! panics: an event of no known shape, or a body flagged base64 that does not
//! decode, becomes a request the handler answers with a 400. (lambda_http's own
//! conversion panics on undecodable base64 and parses the event up to three
//! times, which is why the receiver reads events itself.)

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which service sent the event; it decides the response shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    ApiGatewayV1,
    /// HTTP API and Lambda function URLs.
    ApiGatewayV2,
    Alb,
    /// Not an HTTP event of any known shape.
    Unknown,
}

/// An HTTP request as the handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub origin: Origin,
    /// Upper case, as sent; empty when the event had none.
    pub method: String,
    /// Header names in lower case, values in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body bytes after any base64 decoding, or why there are none.
    pub body: Result<Vec<u8>, BodyError>,
    /// The address that connected to API Gateway or the load balancer.
    pub source_ip: Option<IpAddr>,
}

/// Why a request has no usable body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// `isBase64Encoded` is true but the body is not base64.
    UndecodableBase64,
    /// The event is not an HTTP event the receiver knows.
    UnknownEvent,
}

impl HttpRequest {
    /// The first value of header `name` (given in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads a Lambda event. Never fails: unknown shapes are [`Origin::Unknown`].
    pub fn from_event(event: &[u8]) -> Self {
        match serde_json::from_slice::<WireEvent>(event) {
            Ok(wire) => wire.into_request(),
            Err(_) => Self::unknown(),
        }
    }

    fn unknown() -> Self {
        Self {
            origin: Origin::Unknown,
            method: String::new(),
            headers: Vec::new(),
            body: Err(BodyError::UnknownEvent),
            source_ip: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WireEvent {
    http_method: Option<String>,
    request_context: Option<WireContext>,
    headers: Option<std::collections::HashMap<String, Option<String>>>,
    multi_value_headers: Option<std::collections::HashMap<String, Option<Vec<Option<String>>>>>,
    body: Option<String>,
    is_base64_encoded: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WireContext {
    http: Option<WireHttp>,
    identity: Option<WireIdentity>,
    elb: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WireHttp {
    method: Option<String>,
    source_ip: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WireIdentity {
    source_ip: Option<String>,
}

impl WireEvent {
    fn into_request(self) -> HttpRequest {
        let context = self.request_context.unwrap_or_default();
        let (origin, method) = match (&context, self.http_method) {
            (WireContext { elb: Some(_), .. }, Some(method)) => (Origin::Alb, method),
            (
                WireContext {
                    http: Some(http), ..
                },
                _,
            ) if http.method.is_some() => (
                Origin::ApiGatewayV2,
                http.method.clone().unwrap_or_default(),
            ),
            (_, Some(method)) => (Origin::ApiGatewayV1, method),
            _ => return HttpRequest::unknown(),
        };

        // Multi-value headers carry everything single-value headers do (API
        // Gateway v1 sends both); ALB sends one or the other.
        let mut headers: Vec<(String, String)> =
            match self.multi_value_headers.filter(|m| !m.is_empty()) {
                Some(multi) => multi
                    .into_iter()
                    .flat_map(|(name, values)| {
                        let name = name.to_ascii_lowercase();
                        values
                            .unwrap_or_default()
                            .into_iter()
                            .flatten()
                            .map(move |v| (name.clone(), v))
                    })
                    .collect(),
                None => self
                    .headers
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(name, value)| Some((name.to_ascii_lowercase(), value?)))
                    .collect(),
            };
        headers.sort_by(|a, b| a.0.cmp(&b.0));

        let source_ip = match origin {
            Origin::ApiGatewayV1 => context.identity.and_then(|i| i.source_ip),
            Origin::ApiGatewayV2 => context.http.and_then(|h| h.source_ip),
            // The load balancer appends the address it saw to X-Forwarded-For;
            // anything before it was sent by the client and proves nothing.
            Origin::Alb => headers
                .iter()
                .rev()
                .find(|(n, _)| n == "x-forwarded-for")
                .and_then(|(_, v)| v.rsplit(',').next().map(|ip| ip.trim().to_owned())),
            Origin::Unknown => None,
        }
        .and_then(|ip| ip.parse().ok());

        let body = self.body.unwrap_or_default();
        let body = if self.is_base64_encoded.unwrap_or(false) {
            BASE64
                .decode(body.as_bytes())
                .map_err(|_| BodyError::UndecodableBase64)
        } else {
            Ok(body.into_bytes())
        };

        HttpRequest {
            origin,
            method: method.to_ascii_uppercase(),
            headers,
            body,
            source_ip,
        }
    }
}

/// An HTTP response, before it is shaped for its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Extra headers besides `content-type`.
    pub headers: Vec<(&'static str, &'static str)>,
    /// A JSON document, or nothing.
    pub body: Option<String>,
}

/// A response in the shape its origin expects, ready for the runtime to
/// serialise (once). Every field is a plain string, number or map, so the
/// JSON is always an object with a `statusCode`: never `null`, which API
/// Gateway would answer with a 502.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseEvent {
    pub status_code: u16,
    /// ALB's `"405 Method Not Allowed"`; only for ALB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_description: Option<String>,
    pub headers: BTreeMap<&'static str, &'static str>,
    /// The same headers as lists; only for ALB, which reads either form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_value_headers: Option<BTreeMap<&'static str, [&'static str; 1]>>,
    pub body: String,
    pub is_base64_encoded: bool,
}

impl HttpResponse {
    /// The response in the shape `origin` expects.
    pub fn into_event(self, origin: Origin) -> ResponseEvent {
        let mut headers = BTreeMap::new();
        if self.body.is_some() {
            headers.insert("content-type", "application/json");
        }
        headers.extend(self.headers);
        let alb = origin == Origin::Alb;
        ResponseEvent {
            status_code: self.status,
            status_description: alb
                .then(|| format!("{} {}", self.status, reason_phrase(self.status))),
            multi_value_headers: alb.then(|| headers.iter().map(|(k, v)| (*k, [*v])).collect()),
            headers,
            body: self.body.unwrap_or_default(),
            is_base64_encoded: false,
        }
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_gateway_v1() {
        let event = br#"{"resource":"/webhook","path":"/webhook","httpMethod":"POST",
            "headers":{"X-Hub-Signature":"sha1=ab","Content-Type":"application/json"},
            "multiValueHeaders":{"X-Hub-Signature":["sha1=ab"],"Content-Type":["application/json"]},
            "requestContext":{"identity":{"sourceIp":"34.231.68.152"},"stage":"prod"},
            "body":"{\"a\":1}","isBase64Encoded":false}"#;
        let request = HttpRequest::from_event(event);
        assert_eq!(request.origin, Origin::ApiGatewayV1);
        assert_eq!(request.method, "POST");
        assert_eq!(request.header("x-hub-signature"), Some("sha1=ab"));
        assert_eq!(request.body.as_deref(), Ok(&b"{\"a\":1}"[..]));
        assert_eq!(
            request.source_ip,
            Some("34.231.68.152".parse().expect("ip"))
        );
    }

    #[test]
    fn api_gateway_v1_with_null_headers() {
        let event = br#"{"httpMethod":"POST","headers":null,"multiValueHeaders":null,"requestContext":{},"body":null,"isBase64Encoded":null}"#;
        let request = HttpRequest::from_event(event);
        assert_eq!(request.origin, Origin::ApiGatewayV1);
        assert!(request.headers.is_empty());
        assert_eq!(request.body.as_deref(), Ok(&b""[..]));
        assert_eq!(request.source_ip, None);
    }

    #[test]
    fn api_gateway_v2_and_function_url_base64() {
        let event = br#"{"version":"2.0","rawPath":"/","headers":{"x-hub-signature":"sha1=cd"},
            "requestContext":{"http":{"method":"post","sourceIp":"2001:db8::1"}},
            "body":"eyJhIjoxfQ==","isBase64Encoded":true}"#;
        let request = HttpRequest::from_event(event);
        assert_eq!(request.origin, Origin::ApiGatewayV2);
        assert_eq!(request.method, "POST");
        assert_eq!(request.body.as_deref(), Ok(&b"{\"a\":1}"[..]));
        assert_eq!(request.source_ip, Some("2001:db8::1".parse().expect("ip")));
    }

    #[test]
    fn alb_takes_the_last_forwarded_address() {
        let event = br#"{"httpMethod":"POST","requestContext":{"elb":{"targetGroupArn":"arn"}},
            "headers":{"x-forwarded-for":"6.6.6.6, 54.217.125.63","X-HUB-SIGNATURE":"sha1=ef"},
            "body":"x","isBase64Encoded":false}"#;
        let request = HttpRequest::from_event(event);
        assert_eq!(request.origin, Origin::Alb);
        assert_eq!(request.header("x-hub-signature"), Some("sha1=ef"));
        assert_eq!(
            request.source_ip,
            Some("54.217.125.63".parse().expect("ip"))
        );
    }

    #[test]
    fn undecodable_base64_is_reported_not_panicked() {
        let event = br#"{"httpMethod":"POST","requestContext":{},"body":"%%% not base64","isBase64Encoded":true}"#;
        assert_eq!(
            HttpRequest::from_event(event).body,
            Err(BodyError::UndecodableBase64)
        );
    }

    #[test]
    fn unknown_events() {
        for event in [
            &b"[]"[..],
            b"null",
            b"{}",
            b"{\"Records\":[]}",
            b"not json",
            b"{\"httpMethod\":7}",
        ] {
            let request = HttpRequest::from_event(event);
            assert_eq!(
                request.origin,
                Origin::Unknown,
                "{}",
                String::from_utf8_lossy(event)
            );
            assert_eq!(request.body, Err(BodyError::UnknownEvent));
        }
    }

    #[test]
    fn response_shapes() {
        let response = HttpResponse {
            status: 405,
            headers: vec![("allow", "POST, HEAD")],
            body: Some("{}".into()),
        };
        let json = |event: ResponseEvent| serde_json::to_value(event).expect("serialisable");
        let v2 = json(response.clone().into_event(Origin::ApiGatewayV2));
        assert_eq!(v2["statusCode"], 405);
        assert_eq!(v2["headers"]["allow"], "POST, HEAD");
        assert_eq!(v2["headers"]["content-type"], "application/json");
        assert_eq!(v2["isBase64Encoded"], false);
        assert!(v2.get("multiValueHeaders").is_none());
        assert!(v2.get("statusDescription").is_none());
        let alb = json(response.into_event(Origin::Alb));
        assert_eq!(alb["statusDescription"], "405 Method Not Allowed");
        assert_eq!(alb["multiValueHeaders"]["allow"][0], "POST, HEAD");
        let head = json(
            HttpResponse {
                status: 200,
                headers: vec![],
                body: None,
            }
            .into_event(Origin::ApiGatewayV1),
        );
        assert_eq!(head["body"], "");
        assert!(head["headers"].get("content-type").is_none());
    }
}
