//! `trainer`: builds the instruction dataset, instruction-tunes (LoRA + ECG encoder), measures
//! training throughput, scores reports and runs the benchmark (`trainer eval`).
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    about = "MEIT instruction tuning and benchmark"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the instruction dataset (JSONL) and print its statistics.
    Prepare(meit::cli::prepare::PrepareArgs),
    /// Score candidate reports against references (BLEU, METEOR, ROUGE, CIDEr-D; JSON out).
    Score(meit::cli::score::ScoreArgs),
    /// LoRA instruction tuning of the backbone with the ECG encoder trained jointly.
    Train(Box<meit::cli::train::TrainArgs>),
    /// Training throughput (samples/s) on synthetic batches of a given shape.
    BenchTrain(meit::cli::train::BenchArgs),
    /// Run the benchmark through the serving engine (quality, clinical F1, zero-shot, noise).
    Eval(Box<meit::cli::eval::EvalArgs>),
}

fn main() -> Result<()> {
    meit::cli::alloc::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Prepare(args) => {
            let stats = meit::cli::prepare::run(&args).context("trainer prepare")?;
            println!("{}", meit::cli::prepare::summary(&stats));
            println!("wrote {}", args.out.display());
        }
        Cmd::Score(args) => {
            let scores = meit::cli::score::run(&args).context("trainer score")?;
            println!("{}", serde_json::to_string_pretty(&scores)?);
        }
        Cmd::Train(args) => {
            let dir = meit::cli::train::run(&args).context("trainer train")?;
            println!("final adapter: {}", dir.display());
        }
        Cmd::BenchTrain(args) => {
            let times = meit::cli::train::bench(&args).context("trainer bench-train")?;
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            let median = *sorted
                .get(sorted.len() / 2)
                .context("bench-train needs --steps >= 1")?;
            let samples = (args.hyper.batch * args.hyper.accum) as f64;
            println!(
                "candle train step: batch {} x accum {}, seq {}, rank {}: median {:.3} s/step, {:.2} samples/s (steps: {:?})",
                args.hyper.batch, args.hyper.accum, args.seq, args.hyper.rank, median, samples / median, times
            );
        }
        Cmd::Eval(args) => {
            let summary = meit::cli::eval::run(&args).context("trainer eval")?;
            let md = std::fs::read_to_string(summary.out.join("results.md"))
                .context("reading results.md")?;
            println!("{md}");
            println!(
                "wrote {} in {:.1} s",
                summary.out.display(),
                summary.wall_seconds
            );
        }
    }
    Ok(())
}
