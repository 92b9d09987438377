//! `virtnet completions SHELL`: a completion script generated from the CLI definition.

use std::process::ExitCode;

/// Prints the completion script for `shell`.
pub fn run(shell: clap_complete::Shell, mut command: clap::Command) -> ExitCode {
    clap_complete::generate(shell, &mut command, "virtnet", &mut std::io::stdout());
    ExitCode::SUCCESS
}
