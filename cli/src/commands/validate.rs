//! `virtnet validate FILE...`: exit 0 when every file is valid, else print each problem as
//! `FILE:LINE:COL: message` on stderr and exit 1.

use std::process::ExitCode;

use virtnet_conf::load_domain;

use crate::input::read_input;

/// Runs the command.
pub fn run(files: &[String]) -> ExitCode {
    let mut ok = true;
    for path in files {
        let input = match read_input(path) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("{e}");
                ok = false;
                continue;
            }
        };
        if let Err(problems) = load_domain(&input.text) {
            ok = false;
            for p in problems {
                let pos = p.pos();
                eprintln!("{}:{}:{}: {}", input.name, pos.line, pos.col, p);
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
