//! `trainer eval`: the benchmark (report quality, clinical F1 with baselines, zero-shot
//! transfer, noise robustness) through the serving engine; see [`crate::eval`].
use std::path::PathBuf;

use crate::eval::{EvalError, EvalOptions, EvalSummary, Tasks};
use crate::model::bundle::Precision;
use crate::model::kv::KvDtype;

pub use crate::train::data::DEFAULT_INSTRUCTION;

#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// PTB-XL root (ptbxl_database.csv, scp_statements.csv, records500/).
    #[arg(long)]
    pub ptbxl: PathBuf,
    /// Output directory (outputs.jsonl, metrics.json, results.md, robustness.svg).
    #[arg(long)]
    pub out: PathBuf,
    /// `default` (SmolLM2-135M-Instruct, fetched on first use), a GGUF file or an HF directory.
    #[arg(long, default_value = "default", env = "MEIT_MODEL")]
    pub model: String,
    /// Directory with a trained PEFT adapter and ECG encoder; `default` = the adapter shipped in
    /// model-cards/, `none` = the untrained encoder.
    #[arg(long, default_value = "default")]
    pub adapter: String,
    /// Decode precision: f32, q8_0 or q4_0.
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// KV cache elements: auto (f32 with f32 weights, int8 with quantized ones), f32, f16 or
    /// int8.
    #[arg(long, default_value = "auto")]
    pub kv_cache: String,
    /// Evaluate only the first N test records.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Maximum tokens per report.
    #[arg(long, default_value_t = 96)]
    pub max_tokens: usize,
    /// Tasks: any of quality, zeroshot, noise (comma-separated).
    #[arg(long, default_value = "quality,zeroshot,noise")]
    pub tasks: String,
    /// Zero-shot sets root (cinc2021/, code15_ecgfm/).
    #[arg(long)]
    pub other: Option<PathBuf>,
    /// Records of the noise sweep: the first N test records (default: all evaluated).
    #[arg(long)]
    pub noise_limit: Option<usize>,
    /// Retrieval candidates: the first N training records on disk (default: all).
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// First N records of each zero-shot list (default: all).
    #[arg(long)]
    pub zeroshot_limit: Option<usize>,
    /// Seed of the noise draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// MEIT protocol batch size (0 = the whole set as one batch).
    #[arg(long, default_value_t = 0)]
    pub meit_batch: usize,
    /// Sequences decoded together by the engine.
    #[arg(long, default_value_t = 16)]
    pub max_running: usize,
    /// The instruction given with every ECG.
    #[arg(long, default_value = DEFAULT_INSTRUCTION)]
    pub instruction: String,
}

impl EvalArgs {
    pub fn options(&self) -> Result<EvalOptions, EvalError> {
        Ok(EvalOptions {
            ptbxl: self.ptbxl.clone(),
            out: self.out.clone(),
            model: self.model.clone(),
            adapter: crate::model::bundle::resolve_adapter(&self.adapter),
            precision: Precision::parse(&self.precision)?,
            kv_cache: KvDtype::parse_choice(&self.kv_cache)
                .map_err(|e| EvalError::Option(format!("--kv-cache {e}")))?,
            instruction: self.instruction.clone(),
            limit: self.limit,
            max_tokens: self.max_tokens,
            tasks: Tasks::parse(&self.tasks)?,
            other: self.other.clone(),
            noise_limit: self.noise_limit,
            train_limit: self.train_limit,
            zeroshot_limit: self.zeroshot_limit,
            seed: self.seed,
            meit_batch: self.meit_batch,
            max_running: self.max_running,
        })
    }
}

pub fn run(args: &EvalArgs) -> Result<EvalSummary, EvalError> {
    crate::eval::run(&args.options()?)
}
