//! Reading request bodies: size limit, media type, JSON with clear errors.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::Request;
use serde::de::DeserializeOwned;

use crate::error::{DaemonError, Result};
use crate::model::DefineRequest;

/// The largest request body accepted (a domain definition is a few KiB).
pub const MAX_BODY: usize = 4 << 20;

/// The media type of the request, lower case, without parameters (`""` when absent).
fn media_type(req: &Request<Incoming>) -> String {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

async fn read_all(req: Request<Incoming>) -> Result<Bytes> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(DaemonError::PayloadTooLarge { limit: MAX_BODY })
        }
        Err(e) => Err(DaemonError::BadRequest(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| DaemonError::BadRequest(format!("invalid JSON body: {e}")))
}

/// The domain XML of a define request: `application/json` `{"xml": "..."}`, or the XML itself
/// as `application/xml` / `text/xml`.
pub async fn read_define_body(req: Request<Incoming>) -> Result<String> {
    let media = media_type(&req);
    match media.as_str() {
        "application/json" => {
            let r: DefineRequest = parse_json(&read_all(req).await?)?;
            Ok(r.xml)
        }
        "application/xml" | "text/xml" => String::from_utf8(read_all(req).await?.to_vec())
            .map_err(|e| {
                DaemonError::BadRequest(format!(
                    "the XML body is not UTF-8 (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ))
            }),
        _ => Err(DaemonError::UnsupportedMediaType {
            found: media,
            expected: "send application/json {\"xml\": \"<domain>...\"} or application/xml with the domain XML".into(),
        }),
    }
}

/// An optional JSON body: empty → `None`; else it must be `application/json` and parse.
pub async fn read_json_or_empty<T: DeserializeOwned>(req: Request<Incoming>) -> Result<Option<T>> {
    let media = media_type(&req);
    let bytes = read_all(req).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if media != "application/json" {
        return Err(DaemonError::UnsupportedMediaType {
            found: media,
            expected: "send no body or an application/json one".into(),
        });
    }
    parse_json(&bytes).map(Some)
}

/// Whether the client asked for XML rather than JSON (`Accept: application/xml`).
pub fn wants_xml(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.split(';').next().unwrap_or("").trim();
                t.eq_ignore_ascii_case("application/xml") || t.eq_ignore_ascii_case("text/xml")
            })
        })
}
