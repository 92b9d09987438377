//! `virtnetd --metrics-listen ADDR:PORT`: a TCP listener for a Prometheus scraper that serves
//! `GET /metrics` and nothing else (the API stays on the unix socket).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};

/// Binds `addr` (refused at startup with the OS's reason).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::StartupIo {
            action: "bind the metrics address",
            path: addr.to_string().into(),
            source,
        })
}

/// The scrape answer: the exposition with its content type.
pub async fn response(daemon: &Daemon) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(daemon.metrics_text().await)));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(super::text::CONTENT_TYPE),
    );
    resp
}

/// Serves `GET /metrics` on `listener` for as long as the runtime runs; any other request is
/// answered 404 (405 for another method on /metrics).
pub async fn serve(listener: TcpListener, daemon: Arc<Daemon>) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let daemon = daemon.clone();
                async move {
                    let status = match (req.method(), req.uri().path()) {
                        (&Method::GET, "/metrics") => return Ok(response(&daemon).await),
                        (_, "/metrics") => StatusCode::METHOD_NOT_ALLOWED,
                        _ => StatusCode::NOT_FOUND,
                    };
                    let mut r = Response::new(Full::new(Bytes::from_static(
                        b"only GET /metrics is served here\n",
                    )));
                    *r.status_mut() = status;
                    Ok::<_, Infallible>(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
