//! The `seashell` binary: parse the command line, call the library, map errors to exit codes
//! (the remote command's code; 255 for seashell's own failures; 1 for local usage errors).

use std::process::ExitCode;

use clap::Parser;
use seashell::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen(args) => seashell::keys::keygen::run(&args),
        Command::Fingerprint(args) => seashell::keys::keygen::fingerprint(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("seashell: {err}");
            ExitCode::from(1)
        }
    }
}
