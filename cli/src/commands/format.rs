//! `virtnet format FILE`: print the canonical XML (defaults filled, guest addresses assigned),
//! as the daemon's `dumpxml` will.

use std::io::Write;
use std::process::ExitCode;

use virtnet_conf::load_domain;

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
    match load_domain(&input.text) {
        Ok(domain) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (e.g. `| head`) is not an error worth a message.
            let _ = out.write_all(domain.to_xml().as_bytes());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in problems {
                let pos = p.pos();
                eprintln!("{}:{}:{}: {}", input.name, pos.line, pos.col, p);
            }
            ExitCode::FAILURE
        }
    }
}
