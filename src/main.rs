//! `meit`: the MEIT ECG report service (one-shot `report` now; `serve` with the serving layer).
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "meit", version, about = "MEIT ECG report service")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write the report of one ECG record and print it.
    Report(meit::cli::report::ReportArgs),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Report(args) => {
            let out = meit::cli::report::run(&args).context("meit report")?;
            println!("{out}");
        }
    }
    let _ = PathBuf::new();
    Ok(())
}
