//! The commands that talk to virtnetd (virsh's names), and the options they share.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use virtnet_api::RO_SOCKET_NAME;

use crate::client::{Client, ClientError, DEFAULT_SOCKET};

/// Options of every daemon command.
#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// virtnetd's API socket [default: $VIRTNET_CONNECT, else /run/virtnet/virtnetd.sock].
    // Not clap's `env`: a value from the environment would show in usage lines as if the
    // option had been given (and were required).
    #[arg(long, short = 'c', global = true, value_name = "SOCKET")]
    pub connect: Option<PathBuf>,
    /// Print JSON (the API's documents) instead of tables and messages.
    #[arg(long, global = true)]
    pub json: bool,
    /// Use virtnetd's read-only socket (virtnetd-ro.sock next to the API socket; open to the
    /// group virtnet): queries only, changes are refused.
    #[arg(long, short = 'r', global = true)]
    pub readonly: bool,
}

impl GlobalOpts {
    /// The socket to use: `--connect`, else `$VIRTNET_CONNECT` (when not empty), else
    /// [`DEFAULT_SOCKET`]; with `--readonly`, the read-only socket in that one's directory.
    pub fn socket(&self) -> PathBuf {
        let socket = self
            .connect
            .clone()
            .or_else(|| {
                std::env::var_os("VIRTNET_CONNECT")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        if self.readonly {
            readonly_socket(&socket)
        } else {
            socket
        }
    }
}

/// The read-only socket of the daemon at `socket`: [`RO_SOCKET_NAME`] in its directory (as
/// virtnetd places it), or `socket` itself when it already names one.
fn readonly_socket(socket: &std::path::Path) -> PathBuf {
    if socket.file_name() == Some(RO_SOCKET_NAME.as_ref()) {
        return socket.to_path_buf();
    }
    socket.with_file_name(RO_SOCKET_NAME)
}

/// The commands served by virtnetd.
#[derive(Subcommand, Debug)]
pub enum Remote {
    /// Define a VM (or replace its definition) from domain XML.
    Define {
        /// Domain XML file (`-` reads standard input).
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Remove a VM's persistent definition (the VM must not be running).
    Undefine {
        /// VM name.
        name: String,
    },
    /// Start a defined VM.
    Start {
        /// VM name.
        name: String,
    },
    /// Shut a VM down: ACPI power button, then terminate QEMU after the timeout.
    Shutdown {
        /// VM name.
        name: String,
        /// Seconds the guest gets to power off before QEMU is terminated.
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        timeout: u64,
    },
    /// Move a running VM to another virtnetd without stopping its guest (live migration).
    #[command(after_help = super::migrate::AFTER_HELP)]
    Migrate(super::migrate::MigrateArgs),
    /// Cancel a VM's running migration (it stays here, as before it started).
    Domjobabort {
        /// VM name.
        name: String,
    },
    /// Stop a VM at once (terminate QEMU) and release its host resources.
    Destroy {
        /// VM name.
        name: String,
    },
    /// List VMs (running ones unless --all or --inactive).
    List {
        /// Running and shut off VMs.
        #[arg(long)]
        all: bool,
        /// Only VMs that are not running.
        #[arg(long, conflicts_with = "all")]
        inactive: bool,
        /// Print only the names.
        #[arg(long)]
        name: bool,
    },
    /// Show a VM's basic facts.
    Dominfo {
        /// VM name.
        name: String,
    },
    /// Print a VM's domain XML (the live one while it runs).
    Dumpxml {
        /// VM name.
        name: String,
        /// The persistent definition, even while the VM runs.
        #[arg(long)]
        inactive: bool,
    },
    /// List a VM's network interfaces.
    Domiflist {
        /// VM name.
        name: String,
        /// From the persistent definition, even while the VM runs.
        #[arg(long)]
        inactive: bool,
    },
    /// Show a running VM's NIC counters, seen from the guest (tx: what the guest sent), as
    /// virsh domifstat: from the tap or macvtap, or the switch port for a switch network.
    Domifstat {
        /// VM name.
        name: String,
        /// The interface: its host device name, MAC or alias.
        interface: String,
    },
    /// Show the addresses the host sees for a running VM's NICs (virsh domifaddr): the
    /// neighbour (ARP) table for tap NICs, the switch's learned address for switch NICs with
    /// a filter.
    Domifaddr {
        /// VM name.
        name: String,
        /// Only this interface (host device name, MAC or alias).
        interface: Option<String>,
        /// Where addresses come from: arp (the host's view). lease and agent are refused:
        /// virtnet runs no DHCP server and talks to no guest agent.
        #[arg(long, default_value = "arp", value_parser = ["arp", "lease", "agent"])]
        source: String,
    },
    /// Set a network interface's link state (QMP set_link live; <link state> in the definition).
    DomifSetlink {
        /// VM name.
        name: String,
        /// The interface: its MAC, host device name or alias.
        interface: String,
        /// The new state.
        state: super::domif_setlink::LinkArg,
        #[command(flatten)]
        scope: super::domif_setlink::Scope,
    },
    /// Attach a device (an <interface>) described by an XML file.
    AttachDevice {
        /// VM name.
        name: String,
        /// Device XML file (`-` reads standard input).
        #[arg(value_name = "FILE")]
        file: String,
        #[command(flatten)]
        scope: super::device_scope::DeviceScope,
    },
    /// Detach the device (an <interface>, found by its MAC or alias) an XML file describes.
    DetachDevice {
        /// VM name.
        name: String,
        /// Device XML file (`-` reads standard input).
        #[arg(value_name = "FILE")]
        file: String,
        #[command(flatten)]
        scope: super::device_scope::DeviceScope,
        /// Seconds to wait for the guest to release the device; after that the removal stays
        /// pending and completes when the guest releases it.
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
    },
    /// Change a device (link state; a vhost-user NIC's socket with --replug) to match an XML file.
    UpdateDevice {
        /// VM name.
        name: String,
        /// Device XML file (`-` reads standard input).
        #[arg(value_name = "FILE")]
        file: String,
        #[command(flatten)]
        scope: super::device_scope::DeviceScope,
        /// Allow unplugging and plugging the NIC again when QEMU cannot change it in place (a
        /// vhost-user socket path). MAC, alias and PCI address stay; the guest sees its link
        /// go down and up.
        #[arg(long)]
        replug: bool,
        /// With --replug: seconds to wait for the guest to release the old NIC.
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
    },
    /// Attach a network interface described by options.
    AttachInterface {
        /// VM name.
        name: String,
        #[command(flatten)]
        opts: super::attach_interface::IfaceOpts,
        #[command(flatten)]
        scope: super::device_scope::DeviceScope,
    },
    /// Detach a network interface by type (and MAC when several have that type).
    DetachInterface {
        /// VM name.
        name: String,
        /// Interface type.
        #[arg(long = "type", value_name = "TYPE")]
        type_: super::attach_interface::IfaceType,
        /// The interface's MAC.
        #[arg(long, value_name = "MAC")]
        mac: Option<String>,
        #[command(flatten)]
        scope: super::device_scope::DeviceScope,
        /// Seconds to wait for the guest to release the device.
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
    },
    /// Attach this terminal to a running VM's serial console (Ctrl+] leaves).
    Console {
        /// VM name.
        name: String,
        /// The console: a serial port's or channel's alias (default: the first serial port).
        #[arg(long, value_name = "DEVNAME")]
        devname: Option<String>,
        /// Take the console over from the client holding it (that one is disconnected).
        #[arg(long)]
        force: bool,
    },
    /// Switch the host side of a serial port, console or channel (pty, unix socket, file) while
    /// the guest runs.
    ChardevChange {
        /// VM name.
        name: String,
        /// The device: its alias (serial0, serial1, channel0; `dumpxml` shows them) or a
        /// channel's target name.
        device: String,
        /// The new back end.
        #[arg(long = "type", value_name = "TYPE")]
        type_: super::chardev_change::ChrTypeArg,
        /// File or socket path.
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
        /// unix: who listens (default bind: QEMU).
        #[arg(long, value_name = "MODE")]
        mode: Option<super::chardev_change::ModeArg>,
        /// file: append instead of truncating.
        #[arg(long)]
        append: bool,
        #[command(flatten)]
        scope: super::device_scope::DeviceScope,
    },
    /// Send one QMP command to a running VM's QEMU (experts: virtnetd does not track what it
    /// changes).
    QemuMonitorCommand {
        /// VM name.
        name: String,
        /// The command: `{"execute": "query-status"}`, or just `query-status`.
        command: String,
        /// Indent the answer.
        #[arg(long)]
        pretty: bool,
    },
    #[command(flatten)]
    Net(super::net::NetCommand),
    /// Print a shell completion script (e.g. `virtnet completions bash > /etc/bash_completion.d/virtnet`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Runs a daemon command; `command` builds the whole CLI (for completions).
pub fn run(cmd: Remote, opts: &GlobalOpts, command: impl FnOnce() -> clap::Command) -> ExitCode {
    if let Remote::Completions { shell } = cmd {
        return super::completions::run(shell, command());
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = Client::new(opts.socket());
    let json = opts.json;
    let result: Result<(), ClientError> = runtime.block_on(async {
        match cmd {
            Remote::Define { file } => super::define::run(&client, json, &file).await,
            Remote::Undefine { name } => super::undefine::run(&client, json, &name).await,
            Remote::Start { name } => super::start::run(&client, json, &name).await,
            Remote::Shutdown { name, timeout } => {
                super::shutdown::run(&client, json, &name, Some(timeout)).await
            }
            Remote::Destroy { name } => super::shutdown::run(&client, json, &name, None).await,
            Remote::Migrate(args) => super::migrate::run(&client, json, &args).await,
            Remote::Domjobabort { name } => super::migrate::abort(&client, json, &name).await,
            Remote::List {
                all,
                inactive,
                name,
            } => super::list::run(&client, json, all, inactive, name).await,
            Remote::Dominfo { name } => super::dominfo::run(&client, json, &name).await,
            Remote::Dumpxml { name, inactive } => {
                super::dumpxml::run(&client, json, &name, inactive).await
            }
            Remote::Domiflist { name, inactive } => {
                super::domiflist::run(&client, json, &name, inactive).await
            }
            Remote::Domifstat { name, interface } => {
                super::domifstat::stats(&client, json, &name, &interface).await
            }
            Remote::Domifaddr {
                name,
                interface,
                source,
            } => {
                super::domifstat::addresses(&client, json, &name, interface.as_deref(), &source)
                    .await
            }
            Remote::DomifSetlink {
                name,
                interface,
                state,
                scope,
            } => super::domif_setlink::run(&client, json, &name, &interface, state, scope).await,
            Remote::QemuMonitorCommand {
                name,
                command,
                pretty,
            } => super::qemu_monitor_command::run(&client, &name, &command, pretty).await,
            Remote::AttachDevice { name, file, scope } => {
                super::attach_device::run(&client, json, &name, &file, scope).await
            }
            Remote::DetachDevice {
                name,
                file,
                scope,
                timeout,
            } => super::detach_device::run(&client, json, &name, &file, scope, timeout).await,
            Remote::UpdateDevice {
                name,
                file,
                scope,
                replug,
                timeout,
            } => {
                super::update_device::run(&client, json, &name, &file, scope, replug, timeout).await
            }
            Remote::AttachInterface { name, opts, scope } => {
                super::attach_interface::run(&client, json, &name, &opts, scope).await
            }
            Remote::DetachInterface {
                name,
                type_,
                mac,
                scope,
                timeout,
            } => {
                super::detach_interface::run(
                    &client,
                    json,
                    &name,
                    type_,
                    mac.as_deref(),
                    scope,
                    timeout,
                )
                .await
            }
            Remote::Console {
                name,
                devname,
                force,
            } => super::console::run(&client, &name, devname.as_deref(), force).await,
            Remote::ChardevChange {
                name,
                device,
                type_,
                path,
                mode,
                append,
                scope,
            } => {
                super::chardev_change::run(
                    &client,
                    json,
                    &name,
                    &device,
                    type_,
                    path.as_deref(),
                    mode,
                    append,
                    scope,
                )
                .await
            }
            Remote::Net(n) => super::net::run(&client, json, n).await,
            Remote::Completions { .. } => unreachable!("handled above"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

/// Prints a table with a header line and a rule, columns padded, like virsh.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            s.push(' ');
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s
    };
    println!("{}", line(header.to_vec()));
    let total: usize = widths.iter().map(|w| w + 3).sum();
    println!("{}", "-".repeat(total));
    for row in rows {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// `-` for a missing value, as virsh prints it.
pub fn dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// How long ago a time in milliseconds since the epoch was: `12.3 s ago`.
pub(crate) fn ago(unix_ms: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    format!("{:.1} s ago", now.saturating_sub(unix_ms) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readonly_socket_is_next_to_the_api_socket() {
        let ro = |p: &str| readonly_socket(std::path::Path::new(p));
        assert_eq!(
            ro("/run/virtnet/virtnetd.sock"),
            PathBuf::from("/run/virtnet/virtnetd-ro.sock")
        );
        assert_eq!(
            ro("/tmp/x/virtnetd-ro.sock"),
            PathBuf::from("/tmp/x/virtnetd-ro.sock")
        );
        assert_eq!(
            ro("/tmp/x/api.sock"),
            PathBuf::from("/tmp/x/virtnetd-ro.sock")
        );
    }
}
