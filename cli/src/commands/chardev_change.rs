//! `virtnet chardev-change NAME DEVICE --type pty|unix|file|null [--path P] [--mode bind|connect]
//! [--append] [--live] [--config] [--persistent]`: switch a serial port's, console's or
//! channel's host side while the guest runs.

use hyper::Method;
use virtnet_api::{ChardevChangeResponse, ChardevType};

use super::device_scope::{applied, DeviceScope};
use super::remote::print_json;
use crate::client::{encode, Body, Client, ClientError};

/// The new back end.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChrTypeArg {
    /// A new pseudo terminal (its path is printed).
    Pty,
    /// A unix socket (`--path`; QEMU listens unless `--mode connect`).
    Unix,
    /// Output written to a file (`--path`).
    File,
    /// Output discarded.
    Null,
}

/// Who listens on a unix socket.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    /// QEMU listens.
    Bind,
    /// QEMU connects to a listening socket.
    Connect,
}

/// Runs the command.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    client: &Client,
    json: bool,
    name: &str,
    device: &str,
    type_: ChrTypeArg,
    path: Option<&str>,
    mode: Option<ModeArg>,
    append: bool,
    scope: DeviceScope,
) -> Result<(), ClientError> {
    let t = match type_ {
        ChrTypeArg::Pty => ChardevType::Pty,
        ChrTypeArg::Unix => ChardevType::Unix,
        ChrTypeArg::File => ChardevType::File,
        ChrTypeArg::Null => ChardevType::Null,
    };
    let mut body = serde_json::json!({ "type": t });
    if let Some(p) = path {
        // Relative paths are the caller's, not the daemon's.
        let abs = std::path::absolute(p).map_err(|e| ClientError {
            kind: "usage".into(),
            message: format!("--path {p}: {e}"),
        })?;
        body["path"] = abs.display().to_string().into();
    }
    if let Some(m) = mode {
        body["mode"] = if m == ModeArg::Bind {
            "bind"
        } else {
            "connect"
        }
        .into();
    }
    if append {
        body["append"] = true.into();
    }
    scope.add_to(&mut body);
    let r: ChardevChangeResponse = client
        .call(
            Method::POST,
            &format!("/v1/domains/{}/chardevs/{}", encode(name), encode(device)),
            Body::Json(&body),
        )
        .await?;
    if json {
        print_json(&r);
    } else {
        let to = match (&r.path, type_) {
            (Some(p), _) => format!("{} {p}", format!("{type_:?}").to_lowercase()),
            (None, _) => format!("{type_:?}").to_lowercase(),
        };
        println!(
            "Character device {} of domain '{}' switched to {to} ({})",
            r.device,
            r.name,
            applied(r.live, r.config)
        );
    }
    Ok(())
}
