//! `virtnet validate [--quiet] FILE...`: print `FILE: valid` for each valid file (as
//! virt-xml-validate does; not with `--quiet`) and each problem as `FILE:LINE:COL: message`
//! on stderr; exit 0 when every file is valid, else 1. Valid means what `virtnet define` accepts:
//! conf's rules and the validation layer's for define ([`virtnet_qemu::validate`]).

use std::process::ExitCode;

use virtnet_conf::xml::Pos;
use virtnet_conf::{load_domain, Domain};
use virtnet_qemu::validate::{validate_domain, Operation};

use crate::input::read_input;

/// A definition as `virtnet define` reads it: parsed, defaults filled, validated by conf and
/// by the validation layer for define. The problems with their positions otherwise.
pub(crate) fn load_for_define(text: &str) -> Result<Domain, Vec<(Pos, String)>> {
    let domain = load_domain(text).map_err(|errs| {
        errs.iter()
            .map(|e| (e.pos(), e.to_string()))
            .collect::<Vec<_>>()
    })?;
    match validate_domain(Operation::Define, &domain, None) {
        Ok(()) => Ok(domain),
        Err(r) => Err(r.0.iter().map(|r| (r.pos, r.to_string())).collect()),
    }
}

/// Runs the command.
pub fn run(files: &[String], quiet: bool) -> ExitCode {
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
        match load_for_define(&input.text) {
            Ok(_) if !quiet => println!("{}: valid", input.name),
            Ok(_) => {}
            Err(problems) => {
                ok = false;
                for (pos, p) in problems {
                    eprintln!("{}:{}:{}: {}", input.name, pos.line, pos.col, p);
                }
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
