//! The network endpoints (`/v1/networks...`): net-define, net-undefine, net-start,
//! net-destroy, net-list, net-dumpxml, net-autostart.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::body::{read_define_body, read_json_or_empty};
use super::router::{query_flag, Route};
use super::{defined, json, xml_or_json};
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::networks::model::NetAutostartRequest;

/// Serves one network route.
pub async fn dispatch(
    daemon: &Daemon,
    route: Route,
    req: Request<Incoming>,
    query: Option<&str>,
) -> Result<Response<Full<Bytes>>> {
    let nets = &daemon.networks;
    match route {
        Route::NetList => json(StatusCode::OK, &nets.list(query_flag(query, "all")?).await),
        Route::NetDefine => {
            let xml = read_define_body(req).await?;
            let r = nets.define(&xml).await?;
            defined(r.created, &r)
        }
        Route::NetInfo(name) => json(StatusCode::OK, &nets.info(&name).await?),
        Route::NetUndefine(name) => json(StatusCode::OK, &nets.undefine(&name).await?),
        Route::NetXml(name) => {
            let r = nets.xml(&name).await?;
            xml_or_json(&req, &r.xml, &r)
        }
        Route::NetStart(name) => json(StatusCode::OK, &nets.start(&name).await?),
        Route::NetDestroy(name) => json(StatusCode::OK, &nets.destroy(&name).await?),
        Route::NetAutostart(name) => {
            let r: NetAutostartRequest = read_json_or_empty(req).await?.unwrap_or_default();
            json(StatusCode::OK, &nets.set_autostart(&name, r.enable).await?)
        }
        other => Err(DaemonError::Internal(format!(
            "{other:?} is not a network route"
        ))),
    }
}
