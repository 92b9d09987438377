//! Serial ports, consoles and channels: a `-chardev` for the host side and a `-device` for the
//! guest side (`isa-serial`, `pci-serial`, `virtserialport`, `virtconsole`).

use virtnet_conf::address::DeviceAddress;
use virtnet_conf::devices::{Chardev, ChrSource};
use virtnet_conf::Domain;

use super::caps::GuestCtx;
use super::devaddr::address_props;
use super::hostfds::{log_of, ChardevFd, ChardevRole, PassedFd};
use super::opts::{escape_comma, id_is_safe, json_arg, Props};
use crate::error::QemuError;

fn unsupported(c: &Chardev, message: impl Into<String>) -> QemuError {
    QemuError::UnsupportedDevice {
        device: format!("<{} type='{}'>", c.kind.as_str(), c.source.type_name()),
        message: message.into(),
    }
}

/// The fd passed for chardev `id` in `role`, if virtnetd opened one.
fn passed<'a>(fds: &'a [ChardevFd], id: &str, role: ChardevRole) -> Option<&'a PassedFd> {
    fds.iter()
        .find(|f| f.chardev == id && f.role == role)
        .map(|f| &f.fd)
}

/// `-add-fd set=S,fd=N,opaque=O` for an fdset, else nothing.
fn add_fd_args(fd: Option<&PassedFd>) -> Vec<String> {
    match fd {
        Some(PassedFd::FdSet { set, fd, opaque }) => vec![
            "-add-fd".into(),
            format!("set={set},fd={fd},opaque={}", escape_comma(opaque)),
        ],
        _ => Vec::new(),
    }
}

/// The `-chardev` arguments (preceded by the `-add-fd`s of the files virtnetd opened for it)
/// of chardev `id`, with the fds in `fds` used where given.
pub(crate) fn chardev_arg(
    c: &Chardev,
    id: &str,
    fds: &[ChardevFd],
) -> Result<Vec<String>, QemuError> {
    let source = passed(fds, id, ChardevRole::Source);
    let log = passed(fds, id, ChardevRole::Log);
    let mut args = add_fd_args(source);
    args.extend(add_fd_args(log));
    let mut value = chardev_value(c, id, source)?;
    if let Some((file, append)) = log_of(c) {
        match log {
            Some(PassedFd::FdSet { set, .. }) => {
                value.push_str(&format!(",logfile=/dev/fdset/{set}"))
            }
            _ if file.is_empty() || file.contains('\0') => {
                return Err(unsupported(
                    c,
                    "the <log file> path is empty or has a NUL byte",
                ))
            }
            _ => value.push_str(&format!(",logfile={}", escape_comma(file))),
        }
        if let Some(a) = append {
            value.push_str(&format!(",logappend={a}"));
        }
    }
    args.push("-chardev".into());
    args.push(value);
    Ok(args)
}

/// The `-chardev` value for a host-side source (`pty`, `file`, `unix`, `tcp`, `null`, ...);
/// `passed`: the fd virtnetd opened for its source.
fn chardev_value(c: &Chardev, id: &str, passed: Option<&PassedFd>) -> Result<String, QemuError> {
    let path = |p: &str| -> Result<String, QemuError> {
        if p.is_empty() || p.contains('\0') {
            return Err(unsupported(c, "the source path is empty or has a NUL byte"));
        }
        Ok(escape_comma(p))
    };
    let host = |h: &str| -> Result<String, QemuError> {
        if !id_is_safe(h) {
            return Err(unsupported(
                c,
                format!("'{h}' is not a host name or address"),
            ));
        }
        Ok(h.to_string())
    };
    Ok(match &c.source {
        ChrSource::Null => format!("null,id={id}"),
        ChrSource::Pty { .. } => format!("pty,id={id}"),
        ChrSource::File { path: p, append } => {
            let p = match passed {
                Some(PassedFd::FdSet { set, .. }) => format!("/dev/fdset/{set}"),
                _ => path(p)?,
            };
            let mut s = format!("file,id={id},path={p}");
            if let Some(a) = append {
                s.push_str(&format!(",append={a}"));
            }
            s
        }
        ChrSource::Dev { path: p } => format!("serial,id={id},path={}", path(p)?),
        ChrSource::Pipe { path: p } => format!("pipe,id={id},path={}", path(p)?),
        ChrSource::Unix {
            listen,
            path: p,
            reconnect,
        } => {
            let Some(p) = p else {
                return Err(unsupported(
                    c,
                    "a unix socket needs <source mode='bind' path='...'/>",
                ));
            };
            let mut s = match passed {
                Some(PassedFd::Listening { fd }) if *listen => format!("socket,id={id},fd={fd}"),
                _ => format!("socket,id={id},path={}", path(p)?),
            };
            if *listen {
                s.push_str(",server=on,wait=off");
            }
            if reconnect.is_some() {
                return Err(unsupported(
                    c,
                    "<reconnect> on a character device is not supported yet",
                ));
            }
            s
        }
        ChrSource::Tcp {
            listen,
            host: h,
            service,
            protocol,
            tls,
            reconnect,
        } => {
            let (Some(h), Some(port)) = (h, service) else {
                return Err(unsupported(c, "a tcp source needs host and service (port)"));
            };
            let mut s = format!("socket,id={id},host={},port={}", host(h)?, host(port)?);
            match protocol.as_str() {
                "raw" => {}
                "telnet" => s.push_str(",telnet=on"),
                other => {
                    return Err(unsupported(
                        c,
                        format!("protocol '{other}' is not supported: use raw or telnet"),
                    ))
                }
            }
            if *listen {
                s.push_str(",server=on,wait=off");
            }
            if tls.as_deref() == Some("yes") || reconnect.is_some() {
                return Err(unsupported(c, "TLS and <reconnect> are not supported yet"));
            }
            s
        }
        ChrSource::Udp {
            bind_host,
            bind_service,
            connect_host,
            connect_service,
        } => {
            let Some(port) = connect_service else {
                return Err(unsupported(
                    c,
                    "a udp source needs <source mode='connect' service='PORT'/>",
                ));
            };
            format!(
                "udp,id={id},host={},port={},localaddr={},localport={}",
                host_or_empty(connect_host.as_deref(), c)?,
                host(port)?,
                host_or_empty(bind_host.as_deref(), c)?,
                match bind_service {
                    Some(s) => host(s)?,
                    None => "0".to_string(),
                }
            )
        }
        ChrSource::Stdio => {
            return Err(unsupported(
                c,
                "stdio is not available: QEMU runs detached from any terminal; use type='pty'",
            ))
        }
        other => {
            return Err(unsupported(
                c,
                format!(
                    "source type '{}' is not supported: use pty, file, unix, tcp, udp or null",
                    other.type_name()
                ),
            ))
        }
    })
}

fn host_or_empty(h: Option<&str>, c: &Chardev) -> Result<String, QemuError> {
    match h {
        None => Ok(String::new()),
        Some(h) if id_is_safe(h) => Ok(h.to_string()),
        Some(h) => Err(unsupported(
            c,
            format!("'{h}' is not a host name or address"),
        )),
    }
}

/// Every serial port, console and channel.
/// `fds`: what virtnetd opened for them (see [`super::hostfds`]); the others are opened by QEMU.
pub(crate) fn chardev_args(
    domain: &Domain,
    guest: &GuestCtx,
    fds: &[ChardevFd],
) -> Result<Vec<String>, QemuError> {
    let d = &domain.devices;
    let mut args = Vec::new();
    if let Some(p) = d.parallels.first() {
        return Err(unsupported(
            p,
            "parallel ports are not supported: use a serial port",
        ));
    }
    for (i, c) in d.serials.iter().enumerate() {
        let port = c.target.port.unwrap_or(i as u32);
        let alias = c
            .info
            .alias
            .clone()
            .unwrap_or_else(|| format!("serial{port}"));
        let chr = format!("char{alias}");
        check_ids(c, &alias)?;
        args.extend(chardev_arg(c, &chr, fds)?);
        let mut p = Props::new();
        match c.target_type().unwrap_or("isa-serial") {
            "isa-serial" => {
                p.put("driver", "isa-serial")
                    .put("chardev", chr)
                    .put("id", alias)
                    .put("index", port);
            }
            "pci-serial" => {
                p.put("driver", "pci-serial")
                    .put("chardev", chr)
                    .put("id", alias);
                address_props(guest, c.info.address.as_ref(), &mut p)
                    .map_err(|m| unsupported(c, m))?;
            }
            other => {
                return Err(unsupported(
                    c,
                    format!("serial target type '{other}' is not supported: use isa-serial"),
                ))
            }
        }
        args.push("-device".into());
        args.push(json_arg(&p.into_value()));
    }
    for (i, c) in d.consoles.iter().enumerate() {
        match c.target_type().unwrap_or("serial") {
            // Console 0 of type serial is the first serial port, already built.
            "serial" if i < d.serials.len() => continue,
            "serial" => {
                return Err(unsupported(
                    c,
                    "a serial console needs a <serial> port to show: add <serial type='pty'/>",
                ))
            }
            "virtio" => {
                let alias = c
                    .info
                    .alias
                    .clone()
                    .unwrap_or_else(|| format!("console{i}"));
                args.extend(virtio_serial_port(c, &alias, "virtconsole", None, fds)?);
            }
            other => {
                return Err(unsupported(
                    c,
                    format!("console target type '{other}' is not supported: use serial or virtio"),
                ))
            }
        }
    }
    for (i, c) in d.channels.iter().enumerate() {
        if c.target_type() != Some("virtio") {
            return Err(unsupported(
                c,
                "only virtio channels (<target type='virtio' name='...'/>) are supported",
            ));
        }
        let alias = c
            .info
            .alias
            .clone()
            .unwrap_or_else(|| format!("channel{i}"));
        let name = c.target.name.as_deref();
        args.extend(virtio_serial_port(c, &alias, "virtserialport", name, fds)?);
    }
    Ok(args)
}

fn check_ids(c: &Chardev, alias: &str) -> Result<(), QemuError> {
    if id_is_safe(alias) {
        Ok(())
    } else {
        Err(unsupported(
            c,
            format!("the id '{alias}' cannot be used by QEMU"),
        ))
    }
}

/// A port on a virtio-serial controller (`virtconsole` or `virtserialport`).
fn virtio_serial_port(
    c: &Chardev,
    alias: &str,
    driver: &str,
    name: Option<&str>,
    fds: &[ChardevFd],
) -> Result<Vec<String>, QemuError> {
    check_ids(c, alias)?;
    let chr = format!("char{alias}");
    let mut p = Props::new();
    p.put("driver", driver);
    match &c.info.address {
        Some(DeviceAddress::Other(el)) if el.get_attr("type") == Some("virtio-serial") => {
            let num = |k: &str| {
                el.get_attr(k)
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(0)
            };
            p.put(
                "bus",
                format!("virtio-serial{}.{}", num("controller"), num("bus")),
            );
            if let Some(port) = el.get_attr("port").and_then(|v| v.parse::<u32>().ok()) {
                p.put("nr", port);
            }
        }
        None => {}
        Some(_) => {
            return Err(unsupported(
                c,
                "a virtio console or channel needs a virtio-serial address (or none)",
            ))
        }
    }
    p.put("chardev", chr.as_str()).put("id", alias);
    if let Some(n) = name {
        if n.contains(',') || n.is_empty() {
            return Err(unsupported(c, format!("channel name '{n}' cannot be used")));
        }
        p.put("name", n);
    }
    let mut args = chardev_arg(c, &chr, fds)?;
    args.extend(["-device".into(), json_arg(&p.into_value())]);
    Ok(args)
}
