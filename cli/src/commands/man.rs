//! `virtnet man DIR` (hidden, used by `scripts/install`): writes the man pages generated from
//! the CLI definition: `virtnet.1` and one `virtnet-SUBCOMMAND.1` per visible subcommand.

use std::path::Path;
use std::process::ExitCode;

/// Writes the man pages of `command` and its subcommands into `dir` (created if missing).
pub fn run(dir: &Path, command: clap::Command) -> ExitCode {
    match write_all(dir, command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: cannot write the man pages into {}: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

fn write_all(dir: &Path, command: clap::Command) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut command = command;
    command.build();
    write_page(dir, "virtnet", command.clone())?;
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        // clap's names are `&'static str` without its `string` feature; this command runs
        // once and exits, so leaking a few names is simpler than enabling it.
        let name: &'static str = format!("virtnet-{}", sub.get_name()).leak();
        write_page(dir, name, sub.clone().name(name))?;
    }
    Ok(())
}

fn write_page(dir: &Path, name: &str, command: clap::Command) -> std::io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.1")), page)
}
