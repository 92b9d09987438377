//! `virtnet`: a virsh-like command line for VMs built around their network interfaces.

mod commands;
mod input;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Manage QEMU/KVM virtual machines and their network interfaces.
#[derive(Parser)]
#[command(name = "virtnet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check domain XML files; print each problem as FILE:LINE:COL: message.
    Validate {
        /// Domain XML files (`-` reads standard input).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
    },
    /// Print the canonical domain XML: defaults filled, guest PCI addresses assigned.
    Format {
        /// Domain XML file (`-` reads standard input).
        #[arg(value_name = "FILE")]
        file: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files } => commands::validate::run(&files),
        Command::Format { file } => commands::format::run(&file),
    }
}
