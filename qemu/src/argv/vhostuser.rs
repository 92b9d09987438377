//! The unix socket chardev of a vhost-user NIC: `-chardev socket,...` at start, QMP
//! `chardev-add` for hot-plug.

use serde_json::{json, Value};
use virtnet_conf::interface::{InterfaceKind, SocketMode};

use super::caps::QemuCaps;
use super::ids::NicSpec;
use super::opts::{escape_comma, id_is_safe, Props};
use crate::error::QemuError;

/// The chardev of a vhost-user NIC in both forms.
#[derive(Debug, Clone, PartialEq)]
pub struct VhostUserChardev {
    /// The chardev id (`charnet0`), referenced by the netdev.
    pub id: String,
    /// The `-chardev` value, libvirt's form:
    /// `socket,id=charnet0,path=/tmp/vhost0.sock[,server=on][,reconnect-ms=10000]`.
    pub cmdline: String,
    /// The arguments of QMP `chardev-add` for the same chardev.
    pub qmp_args: Value,
}

/// The chardev of a vhost-user interface; `None` for other types.
///
/// `mode='server'`: QEMU listens (`server=on`; at start QEMU waits for the back end, as
/// libvirt lets it). `mode='client'`: QEMU connects, and with `<reconnect enabled='yes'
/// timeout='N'/>` retries every N seconds (`reconnect-ms` from QEMU 9.2, `reconnect` before;
/// `enabled='no'` gives 0).
pub fn vhostuser_chardev(
    spec: &NicSpec<'_>,
    caps: &QemuCaps,
) -> Result<Option<VhostUserChardev>, QemuError> {
    let InterfaceKind::VhostUser { socket } = &spec.iface.kind else {
        return Ok(None);
    };
    let refuse = |message: &str| QemuError::UnsupportedInterface {
        interface: spec.describe(),
        message: message.to_string(),
    };
    crate::validate::argv_guard(spec.iface, caps)?;
    let Some(sock) = socket else {
        // The argv guard refuses this with the rule's message; not reached.
        return Err(refuse("it has no <source> socket"));
    };
    let id = spec.ids.chardev.clone();
    if !id_is_safe(&id) {
        return Err(refuse(
            "its chardev id cannot be used by QEMU: use an alias of letters, digits and '-'",
        ));
    }
    let path = sock.path.value.as_str();
    if path.is_empty() || path.contains('\0') {
        return Err(refuse("the socket path is empty or has a NUL byte"));
    }
    let server = sock.mode == SocketMode::Server;
    // The argv guard refused <reconnect> on a server socket.
    let reconnect = match &sock.reconnect {
        None => None,
        Some(r) if r.enabled => Some(u64::from(r.timeout.unwrap_or(0))),
        Some(_) => Some(0),
    };
    // Seconds → (key, value) by QEMU version.
    let reconnect = reconnect.map(|secs| {
        if caps.has_reconnect_ms() {
            ("reconnect-ms", secs * 1000)
        } else {
            ("reconnect", secs)
        }
    });

    let mut cmdline = format!("socket,id={id},path={}", escape_comma(path));
    if server {
        cmdline.push_str(",server=on");
    }
    if let Some((k, v)) = reconnect {
        cmdline.push_str(&format!(",{k}={v}"));
    }

    let mut data = Props::new();
    data.put("addr", json!({"type": "unix", "data": {"path": path}}))
        .put("server", server);
    if server {
        // QMP's default is already no wait; say it, so a hot-plug never blocks the monitor.
        data.put("wait", false);
    }
    if let Some((k, v)) = reconnect {
        data.put(k, v);
    }
    let mut backend = Props::new();
    backend.put("type", "socket").put("data", data.into_value());
    let mut args = Props::new();
    args.put("id", id.as_str())
        .put("backend", backend.into_value());
    Ok(Some(VhostUserChardev {
        id,
        cmdline,
        qmp_args: args.into_value(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::QemuVersion;
    use virtnet_conf::xml::{parse_document, Limits};
    use virtnet_conf::Interface;

    fn chardev(xml: &str, caps: &QemuCaps) -> Result<Option<VhostUserChardev>, QemuError> {
        let list =
            vec![Interface::from_element(parse_document(xml, Limits::default()).unwrap()).unwrap()];
        vhostuser_chardev(&NicSpec::new(&list, 0).unwrap(), caps)
    }

    #[test]
    fn server_client_and_reconnect() {
        let latest = QemuCaps::latest();
        let c = chardev(
            "<interface type='vhostuser'><source type='unix' path='/tmp/vhost0.sock' \
             mode='server'/></interface>",
            &latest,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            c.cmdline,
            "socket,id=charnet0,path=/tmp/vhost0.sock,server=on"
        );
        assert_eq!(
            c.qmp_args.to_string(),
            r#"{"id":"charnet0","backend":{"type":"socket","data":{"addr":{"type":"unix","data":{"path":"/tmp/vhost0.sock"}},"server":true,"wait":false}}}"#
        );
        let xml = "<interface type='vhostuser'><source type='unix' path='/tmp/a,b.sock' \
                   mode='client'><reconnect enabled='yes' timeout='10'/></source></interface>";
        let c = chardev(xml, &latest).unwrap().unwrap();
        assert_eq!(
            c.cmdline,
            "socket,id=charnet0,path=/tmp/a,,b.sock,reconnect-ms=10000"
        );
        assert_eq!(c.qmp_args["backend"]["data"]["reconnect-ms"], 10000);
        assert_eq!(
            c.qmp_args["backend"]["data"]["addr"]["data"]["path"],
            "/tmp/a,b.sock"
        );
        let old = QemuCaps {
            version: QemuVersion::new(7, 2, 22),
            vhost_net: true,
        };
        let c = chardev(xml, &old).unwrap().unwrap();
        assert_eq!(
            c.cmdline,
            "socket,id=charnet0,path=/tmp/a,,b.sock,reconnect=10"
        );
        let off = "<interface type='vhostuser'><source type='unix' path='/s' mode='client'>\
                   <reconnect enabled='no'/></source></interface>";
        assert!(chardev(off, &latest)
            .unwrap()
            .unwrap()
            .cmdline
            .ends_with(",reconnect-ms=0"));
    }

    #[test]
    fn other_types_and_refusals() {
        let latest = QemuCaps::latest();
        assert!(chardev("<interface type='user'/>", &latest)
            .unwrap()
            .is_none());
        let e = chardev(
            "<interface type='vhostuser'><backend type='passt'/></interface>",
            &latest,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not supported yet"), "{e}");
        assert!(matches!(e, QemuError::Refused(_)), "{e:?}");
        let e = chardev(
            "<interface type='vhostuser'><source type='unix' path='/s' mode='server'>\
             <reconnect enabled='yes' timeout='1'/></source></interface>",
            &latest,
        )
        .unwrap_err();
        assert!(e.to_string().contains("mode='client'"), "{e}");
    }
}
