use std::process::ExitCode;

use clap::Parser as _;
use softswitch::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line: the context chain joined by ": ".
            eprintln!("softswitch: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
