//! `meit report`: one ECG record in, one report out, through the whole model path.
use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::api::ecg::EcgInput;
use crate::model::bundle::{BackboneSource, LoadOptions, MeitModel, Precision};
use crate::model::{chat, tokenizer, ModelError};
use crate::signal::{self, SignalError, TARGET_LEN};

pub use crate::train::data::DEFAULT_INSTRUCTION;

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// A WFDB record (path without extension, or the .hea file) or a JSON ECG file.
    #[arg(long)]
    pub ecg: PathBuf,
    /// The instruction given with the ECG.
    #[arg(long, default_value = DEFAULT_INSTRUCTION)]
    pub instruction: String,
    /// `default` (SmolLM2-135M-Instruct, fetched on first use), a GGUF file or an HF directory.
    #[arg(long, default_value = "default", env = "MEIT_MODEL")]
    pub model: String,
    /// Directory with a trained PEFT adapter and ECG encoder; `default` = the adapter shipped in
    /// model-cards/, `none` = the untrained encoder.
    #[arg(long, env = "MEIT_ADAPTER", default_value = "default")]
    pub adapter: String,
    /// Decode precision: f32 (exact to the references), q8_0 or q4_0 (faster).
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// Maximum tokens to generate.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("ECG {path}: {source}")]
    Signal {
        path: PathBuf,
        #[source]
        source: SignalError,
    },
    #[error("ECG {path}: {msg}")]
    Json { path: PathBuf, msg: String },
}

/// Reads a WFDB record or a JSON ECG object into a raw signal.
pub fn read_ecg(path: &Path) -> Result<signal::RawEcg, ReportError> {
    let sig = |source| ReportError::Signal {
        path: path.to_path_buf(),
        source,
    };
    if path.extension().is_some_and(|e| e == "json") {
        let raw = std::fs::read_to_string(path).map_err(|e| ReportError::Json {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        let obj: EcgInput = serde_json::from_str(&raw).map_err(|e| ReportError::Json {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        return obj.into_raw("ecg").map_err(|e| ReportError::Json {
            path: path.to_path_buf(),
            msg: e.to_string(),
        });
    }
    let record = if path.extension().is_some_and(|e| e == "hea" || e == "dat") {
        path.with_extension("")
    } else {
        path.to_path_buf()
    };
    signal::read_wfdb(&record).map_err(sig)
}

/// Runs the whole path and returns the report text (with a note when the model is untrained).
pub fn run(args: &ReportArgs) -> Result<String, ReportError> {
    let raw = read_ecg(&args.ecg)?;
    let ecg = signal::preprocess(&raw).map_err(|source| ReportError::Signal {
        path: args.ecg.clone(),
        source,
    })?;
    let dev = Device::Cpu;
    let opts = LoadOptions {
        backbone: BackboneSource::parse(&args.model),
        adapter: crate::model::bundle::resolve_adapter(&args.adapter),
        prefix_slots: 1,
        precision: Precision::parse(&args.precision)?,
        kv_cache: None,
    };
    let model = MeitModel::load(&opts, &dev)?;
    let prefix = model.encode_ecg(&ecg.data, TARGET_LEN)?;
    let prompt = tokenizer::encode(&model.tokenizer, &chat::user_prompt(&args.instruction))?;
    let ids = model.generate_greedy(&prompt, Some(&prefix), args.max_tokens)?;
    let text = tokenizer::decode(&model.tokenizer, &ids)?;
    if !model.trained {
        tracing::warn!(
            "no trained adapter is loaded: the ECG encoder is untrained, so this text does not \
             describe the ECG (pass --adapter DIR)"
        );
    }
    Ok(text.trim().to_string())
}
