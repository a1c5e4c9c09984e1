//! The `pedia` binary.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = operator::cli::Cli::parse();
    if cli.keeps_sqlite_store() {
        operator::malloc_arenas::limit();
    }
    operator::telemetry::init(cli.log_level.as_deref());
    match operator::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
