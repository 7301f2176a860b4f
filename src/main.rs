//! `meit`: the MEIT ECG report service: `serve` the HTTP API, or write one `report`.
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
    /// Serve the HTTP API (`/v1/ecg/report`, `/v1/chat/completions`, `/metrics`, ...).
    Serve(meit::cli::serve::ServeArgs),
    /// Write the report of one ECG record and print it.
    Report(meit::cli::report::ReportArgs),
}

fn main() -> Result<()> {
    meit::cli::alloc::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("tokio runtime")?;
            rt.block_on(meit::cli::serve::run(&args))
                .context("meit serve")?;
        }
        Cmd::Report(args) => {
            let out = meit::cli::report::run(&args).context("meit report")?;
            println!("{out}");
        }
    }
    Ok(())
}
