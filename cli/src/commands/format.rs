//! `virtnet format FILE`: print the canonical XML (defaults filled, guest addresses assigned),
//! as the daemon's `dumpxml` will; what `virtnet define` refuses is refused
//! ([`super::validate::load_for_define`]).

use std::io::Write;
use std::process::ExitCode;

use super::validate::load_for_define;
use crate::input::read_input;

/// Runs the command.
pub fn run(file: &str) -> ExitCode {
    let input = match read_input(file) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match load_for_define(&input.text) {
        Ok(domain) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (e.g. `| head`) is not an error worth a message.
            let _ = out.write_all(domain.to_xml().as_bytes());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for (pos, p) in problems {
                eprintln!("{}:{}:{}: {}", input.name, pos.line, pos.col, p);
            }
            ExitCode::FAILURE
        }
    }
}
