//! `virtnet`: a virsh-like command line for VMs built around their network interfaces.

mod client;
mod commands;
mod input;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Manage QEMU/KVM virtual machines and their network interfaces.
#[derive(Parser)]
#[command(name = "virtnet", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: commands::remote::GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check domain XML files; print each problem as FILE:LINE:COL: message, and
    /// `FILE: valid` for each valid one.
    Validate {
        /// Domain XML files (`-` reads standard input).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
        /// Print only the problems (nothing for a valid file).
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Print the canonical domain XML: defaults filled, guest PCI addresses assigned.
    Format {
        /// Domain XML file (`-` reads standard input).
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Print the QEMU command line of a domain (one option per line, emulator first), as
    /// virtnet would start it; host fds and paths are shown as placeholders.
    #[command(after_help = commands::domxml_to_native::AFTER_HELP)]
    DomxmlToNative {
        /// The native format: `qemu-argv`.
        #[arg(value_name = "FORMAT")]
        format: String,
        /// Domain XML file (`-` reads standard input).
        #[arg(value_name = "FILE")]
        file: String,
        /// The QEMU version to build for (options such as reconnect-ms depend on it).
        #[arg(long, value_name = "VERSION", default_value = "10.0.0")]
        qemu_version: String,
        /// Build as if /dev/vhost-net were not usable (no vhost-net fds for taps).
        #[arg(long)]
        no_vhost_net: bool,
    },
    /// Write the man pages (virtnet.1, virtnet-COMMAND.1) into DIR (used by scripts/install).
    #[command(hide = true)]
    Man {
        /// Output directory (created if missing).
        #[arg(value_name = "DIR")]
        dir: std::path::PathBuf,
    },
    #[command(flatten)]
    Remote(commands::remote::Remote),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files, quiet } => commands::validate::run(&files, quiet),
        Command::Format { file } => commands::format::run(&file),
        Command::DomxmlToNative {
            format,
            file,
            qemu_version,
            no_vhost_net,
        } => commands::domxml_to_native::run(&format, &file, &qemu_version, no_vhost_net),
        Command::Man { dir } => commands::man::run(&dir, Cli::command()),
        Command::Remote(r) => commands::remote::run(r, &cli.global, Cli::command),
    }
}
