//! The HTTP/1.1 + JSON API on the unix socket (see daemon/PROTOCOL.md and daemon/openapi.yaml).

mod access;
mod body;
mod console;
mod networks;
pub mod router;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::model::{
    AddrSource, AttachRequest, ChardevChangeRequest, DetachRequest, ErrorBody, ErrorDetail, Link,
    QmpRequest, SetLinkRequest, ShutdownRequest, UpdateRequest, VersionInfo, API_VERSION,
};
pub use access::Access;
use body::{read_define_body, read_json_or_empty, wants_xml};
use router::{query_flag, query_param, route, Route};

/// How long in-flight requests may take to finish once the daemon is asked to stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on every listener (each with the [`Access`] it grants) until `shutdown`
/// completes, then lets the requests in flight finish (up to 10 s).
pub async fn serve(
    listeners: Vec<(UnixListener, Access)>,
    daemon: Arc<Daemon>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = JoinSet::new();
    for (listener, access) in listeners {
        loops.spawn(accept_loop(
            listener,
            Arc::new(access),
            daemon.clone(),
            stop_rx.clone(),
        ));
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    while loops.join_next().await.is_some() {}
}

/// One listener's accept loop: serves its connections until `stop` turns true, then drains
/// them (up to [`DRAIN_TIMEOUT`]).
async fn accept_loop(
    listener: UnixListener,
    access: Arc<Access>,
    daemon: Arc<Daemon>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let daemon = daemon.clone();
                    let access = access.clone();
                    let mut stop_rx = stop.clone();
                    let peer = console::Peer(stream.peer_cred().ok());
                    conns.spawn(async move {
                        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                            let daemon = daemon.clone();
                            let access = access.clone();
                            req.extensions_mut().insert(peer.clone());
                            async move { Ok::<_, Infallible>(handle(&daemon, &access, req).await) }
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades();
                        tokio::pin!(conn);
                        tokio::select! {
                            r = conn.as_mut() => r,
                            _ = stop_rx.changed() => {
                                conn.as_mut().graceful_shutdown();
                                conn.await
                            }
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; closing them");
        conns.abort_all();
    }
}

/// One request → one response; every error becomes a JSON error body.
async fn handle(
    daemon: &Arc<Daemon>,
    access: &Access,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let response = match dispatch(daemon, access, req).await {
        Ok(r) => r,
        Err(e) => {
            if e.http_status() >= 500 {
                tracing::error!(%method, %path, error = %e, "request failed");
            } else {
                tracing::info!(%method, %path, error = %e, "request refused");
            }
            error_response(&e)
        }
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    response
}

async fn dispatch(
    daemon: &Arc<Daemon>,
    access: &Access,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>> {
    let route = route(req.method().as_str(), req.uri().path())?;
    access.check(req.method().as_str(), req.uri().path(), &route)?;
    let query = req.uri().query().map(str::to_string);
    let query = query.as_deref();
    match route {
        Route::Version => json(
            StatusCode::OK,
            &VersionInfo {
                daemon: env!("CARGO_PKG_VERSION").into(),
                api: API_VERSION,
            },
        ),
        Route::Host => json(StatusCode::OK, &daemon.host_info().await),
        Route::Metrics => Ok(crate::metrics::listen::response(daemon).await),
        Route::List => json(StatusCode::OK, &daemon.list()),
        Route::Define => {
            let xml = read_define_body(req).await?;
            let r = daemon.define(&xml).await?;
            defined(r.created, &r)
        }
        Route::Info(name) => json(StatusCode::OK, &daemon.info(&name)?),
        Route::Undefine(name) => json(StatusCode::OK, &daemon.undefine(&name).await?),
        Route::Xml(name) => {
            let inactive = query_flag(query, "inactive")?;
            let r = daemon.xml(&name, inactive)?;
            xml_or_json(&req, &r.xml, &r)
        }
        Route::Interfaces(name) => {
            let inactive = query_flag(query, "inactive")?;
            json(StatusCode::OK, &daemon.interfaces(&name, inactive)?)
        }
        Route::InterfaceStats(name, iface) => json(
            StatusCode::OK,
            &daemon.interface_stats(&name, &iface).await?,
        ),
        Route::Addresses(name) => {
            let source = match query_param(query, "source").as_deref() {
                None | Some("arp") => AddrSource::Arp,
                Some("lease") => AddrSource::Lease,
                Some("agent") => AddrSource::Agent,
                Some(other) => {
                    return Err(DaemonError::BadRequest(format!(
                        "unknown address source '{other}': give arp, lease or agent"
                    )))
                }
            };
            let iface = query_param(query, "interface");
            json(
                StatusCode::OK,
                &daemon
                    .interface_addresses(&name, iface.as_deref(), source)
                    .await?,
            )
        }
        Route::Start(name) => {
            read_json_or_empty::<serde_json::Map<String, serde_json::Value>>(req)
                .await?
                .filter(|m| !m.is_empty())
                .map_or(Ok(()), |m| {
                    Err(DaemonError::BadRequest(format!(
                        "start takes no parameters, got {}",
                        m.keys().cloned().collect::<Vec<_>>().join(", ")
                    )))
                })?;
            json(StatusCode::OK, &daemon.start(&name).await?)
        }
        Route::Shutdown(name) => {
            let r: ShutdownRequest = read_json_or_empty(req).await?.unwrap_or_default();
            json(
                StatusCode::OK,
                &daemon.shutdown(&name, r.timeout_secs).await?,
            )
        }
        Route::Destroy(name) => json(StatusCode::OK, &daemon.destroy(&name).await?),
        Route::Migrate(name) => {
            let r: virtnet_api::MigrateRequest = required_json(
                req,
                "send {\"dest\": \"/path/to/destination/virtnetd.sock\", \"migrate_uri\": \"tcp:HOST[:PORT]\", \"timeout_secs\": N}",
            )
            .await?;
            let d = daemon.clone();
            let r = detached(async move { d.migrate(&name, &r).await }).await?;
            json(StatusCode::OK, &r)
        }
        Route::MigrateProgress(name) => json(StatusCode::OK, &daemon.migrate_progress(&name)?),
        Route::MigrateIncoming(name, step) => match step {
            router::MigrateStep::Prepare => {
                let r: virtnet_api::PrepareRequest = required_json(
                    req,
                    "send {\"live_xml\", \"definition_xml\", \"listen_uri\"}",
                )
                .await?;
                let d = daemon.clone();
                let r = detached(async move { d.migrate_prepare(&name, &r).await }).await?;
                json(StatusCode::OK, &r)
            }
            router::MigrateStep::Finish => {
                let d = daemon.clone();
                let r = detached(async move { d.migrate_finish(&name).await }).await?;
                json(StatusCode::OK, &r)
            }
            router::MigrateStep::Abort => {
                let d = daemon.clone();
                let r = detached(async move { d.migrate_abort(&name).await }).await?;
                json(StatusCode::OK, &r)
            }
            router::MigrateStep::Cancel => json(StatusCode::OK, &daemon.migrate_cancel(&name)?),
        },
        Route::Console(name) => console::open(daemon, &name, req, query).await,
        Route::Qmp(name) => {
            let r: QmpRequest = read_json_or_empty(req).await?.ok_or_else(|| {
                DaemonError::BadRequest(
                    "send {\"execute\": \"COMMAND\", \"arguments\": {...}}".into(),
                )
            })?;
            json(
                StatusCode::OK,
                &daemon
                    .qmp_passthrough(&name, &r.execute, r.arguments)
                    .await?,
            )
        }
        Route::AttachDevice(name) => {
            let r: AttachRequest = required_json(
                req,
                "send {\"xml\": \"<interface ...>\", \"live\": bool, \"config\": bool, \"persistent\": bool}",
            )
            .await?;
            json(StatusCode::OK, &daemon.attach_device(&name, &r).await?)
        }
        Route::DetachDevice(name) => {
            let r: DetachRequest = required_json(
                req,
                "send {\"xml\": \"<interface ...>\"} or {\"type\": \"bridge\", \"mac\": \"...\"}, with \"live\", \"config\", \"persistent\"",
            )
            .await?;
            let r = daemon.detach_device(&name, &r).await?;
            let status = if r.pending {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            json(status, &r)
        }
        Route::UpdateDevice(name) => {
            let r: UpdateRequest = required_json(
                req,
                "send {\"xml\": \"<interface ...>\", \"live\": bool, \"config\": bool, \"replug\": bool}",
            )
            .await?;
            json(StatusCode::OK, &daemon.update_device(&name, &r).await?)
        }
        Route::ChardevChange(name, device) => {
            let r: ChardevChangeRequest = required_json(
                req,
                "send {\"type\": \"pty\"|\"unix\"|\"file\"|\"null\", \"path\": \"...\", \"live\": bool, \"config\": bool}",
            )
            .await?;
            json(
                StatusCode::OK,
                &daemon.chardev_change(&name, &device, &r).await?,
            )
        }
        Route::NetList
        | Route::NetDefine
        | Route::NetInfo(_)
        | Route::NetUndefine(_)
        | Route::NetXml(_)
        | Route::NetStart(_)
        | Route::NetDestroy(_)
        | Route::NetAutostart(_) => networks::dispatch(daemon, route, req, query).await,
        Route::SetLink(name, iface) => {
            let r: SetLinkRequest = read_json_or_empty(req).await?.ok_or_else(|| {
                DaemonError::BadRequest(
                    "send {\"state\": \"up\"|\"down\", \"live\": bool, \"config\": bool}".into(),
                )
            })?;
            let up = r.state == Link::Up;
            json(
                StatusCode::OK,
                &daemon.set_link(&name, &iface, up, r.live, r.config).await?,
            )
        }
    }
}

/// Runs a migration step on a task of its own: it must run to its end (or its undo) even when
/// the client goes away (hyper drops a request's future when its connection closes: the CLI
/// interrupted, or the source virtnetd's request to the destination timing out).
async fn detached<T: Send + 'static>(
    fut: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(fut)
        .await
        .map_err(|e| DaemonError::Internal(format!("the migration task failed: {e}")))?
}

/// A JSON body that must be there; `hint` says what to send.
async fn required_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    hint: &str,
) -> Result<T> {
    read_json_or_empty(req)
        .await?
        .ok_or_else(|| DaemonError::BadRequest(hint.to_string()))
}

/// A JSON response.
fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response<Full<Bytes>>> {
    let mut body = serde_json::to_vec(value)
        .map_err(|e| DaemonError::Internal(format!("cannot serialise the response: {e}")))?;
    body.push(b'\n');
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// The answer to a define: 201 when `created`, 200 when it replaced a definition.
fn defined<T: Serialize>(created: bool, value: &T) -> Result<Response<Full<Bytes>>> {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json(status, value)
}

/// `xml` as `application/xml` when the client asks for XML (`Accept`), else `value` as JSON.
fn xml_or_json<T: Serialize>(
    req: &Request<Incoming>,
    xml: &str,
    value: &T,
) -> Result<Response<Full<Bytes>>> {
    if !wants_xml(req) {
        return json(StatusCode::OK, value);
    }
    let mut resp = Response::new(Full::new(Bytes::copy_from_slice(xml.as_bytes())));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    Ok(resp)
}

/// `{"error": {"kind", "message"}}` with the error's status.
fn error_response(e: &DaemonError) -> Response<Full<Bytes>> {
    let body = ErrorBody {
        error: ErrorDetail {
            kind: e.kind().into(),
            message: e.to_string(),
        },
    };
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &body).unwrap_or_else(|_| {
        let mut r = Response::new(Full::new(Bytes::from_static(b"internal error\n")));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}
