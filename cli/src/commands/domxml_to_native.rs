//! `virtnet domxml-to-native qemu-argv FILE`: print the QEMU command line virtnet would run for
//! a domain, one option per line like libvirt's `.args` files. Nothing on the host is touched:
//! the fds virtnet would open are shown as placeholders.

use std::io::Write;
use std::process::ExitCode;

use virtnet_conf::load_domain;
use virtnet_qemu::argv::{build_argv, format_argv, NicBackend, QemuCaps, RuntimePaths};
use virtnet_qemu::{QemuError, QemuVersion};

use crate::input::read_input;

/// The only native format (virsh's name for it).
pub const FORMAT: &str = "qemu-argv";

/// The QEMU binary shown when the domain has no `<emulator>`.
pub const DEFAULT_EMULATOR: &str = "/usr/bin/qemu-system-x86_64";

/// Help shown after the options.
pub const AFTER_HELP: &str = "\
Nothing is probed or opened: the command line shows placeholders where virtnet passes host \
resources when it really starts the domain:
  @tap-fd:net0:0@    fd of the tap (or macvtap) of interface net0, queue 0
  @vhost-fd:net0:0@  fd of /dev/vhost-net for that queue
  @vdpa-fd:net0@     fd of the vhost-vdpa device (added to an fd set with -add-fd)
  @qmp-socket@       the QMP socket of the domain
  @memory-dir@       the directory of file-backed guest RAM
Interfaces without <mac> get a random 52:54:00:xx:xx:xx address, as virsh does.
QEMU gets fds, never tap names or scripts: virtnet creates the taps itself.";

/// Runs the command.
pub fn run(format: &str, file: &str, qemu_version: &str, no_vhost_net: bool) -> ExitCode {
    if format != FORMAT {
        eprintln!(
            "virtnet: unknown native format '{format}': the only one is '{FORMAT}' (e.g. \
             virtnet domxml-to-native {FORMAT} {file})"
        );
        return ExitCode::FAILURE;
    }
    let version: QemuVersion = match qemu_version.parse() {
        Ok(v) => v,
        Err(_) => {
            eprintln!(
                "virtnet: --qemu-version '{qemu_version}' is not a version: use MAJOR.MINOR[.MICRO], \
                 e.g. 7.2.0"
            );
            return ExitCode::FAILURE;
        }
    };
    let caps = QemuCaps {
        version,
        vhost_net: !no_vhost_net,
    };
    let input = match read_input(file) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let domain = match load_domain(&input.text) {
        Ok(d) => d,
        Err(problems) => {
            for p in problems {
                let pos = p.pos();
                eprintln!("{}:{}:{}: {}", input.name, pos.line, pos.col, p);
            }
            return ExitCode::FAILURE;
        }
    };
    let paths = RuntimePaths {
        memory_dir: Some("@memory-dir@".into()),
        // virtnetd confines QEMU unless told not to (`--sandbox off`, `<seclabel type='none'/>`).
        sandbox: !domain.unconfined(),
        ..RuntimePaths::new("@qmp-socket@")
    };
    let argv = NicBackend::placeholders(&domain.devices.interfaces, &caps)
        .and_then(|backends| build_argv(&domain, &caps, &backends, &paths));
    match argv {
        Ok(args) => {
            let emulator = domain.emulator().unwrap_or(DEFAULT_EMULATOR);
            let mut out = std::io::stdout().lock();
            // A closed pipe (e.g. `| head`) is not an error worth a message.
            let _ = out.write_all(format_argv(emulator, &args).as_bytes());
            ExitCode::SUCCESS
        }
        // Refused by the validation layer's rule (the builder checks those it cannot
        // express): FILE:LINE:COL like `virtnet validate`.
        Err(QemuError::Refused(r)) if r.pos.is_known() => {
            eprintln!("{}:{}:{}: {r}", input.name, r.pos.line, r.pos.col);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{}: {e}", input.name);
            ExitCode::FAILURE
        }
    }
}
