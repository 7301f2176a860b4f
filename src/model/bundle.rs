//! Assembles the served model: backbone (default GGUF, a GGUF path or an HF directory), optional
//! LoRA adapter merged at load, the ECG encoder, and the tokenizer.
use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use tokenizers::Tokenizer;

use super::config::LlamaConfig;
use super::encoder::{seeded_init, EcgEncoder, EncoderConfig};
use super::encoder_infer::FrozenEncoder;
use super::error::{ModelError, Result};
use super::kv::KvDtype;
use super::lora::Adapter;
use super::weights::Weights;
use super::{fetch, gguf, hf, tokenizer, Llama};

/// Encoder files saved next to a PEFT adapter.
pub const ENCODER_CONFIG_FILE: &str = "encoder_config.json";
pub const ENCODER_WEIGHTS_FILE: &str = "encoder.safetensors";
/// Seed of the untrained encoder used when no adapter directory is given.
pub const UNTRAINED_ENCODER_SEED: u64 = 0;

/// Where the backbone comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackboneSource {
    /// SmolLM2-135M-Instruct, fetched into the cache on first use.
    Default,
    Gguf(PathBuf),
    HfDir(PathBuf),
}

impl BackboneSource {
    /// `default`, a `.gguf` file, or an HF-layout directory.
    pub fn parse(s: &str) -> Self {
        if s == "default" || s.is_empty() {
            return BackboneSource::Default;
        }
        let p = PathBuf::from(s);
        if p.is_dir() {
            BackboneSource::HfDir(p)
        } else {
            BackboneSource::Gguf(p)
        }
    }
}

/// A backbone's config, f32 weights (HF names) and tokenizer.
pub struct Backbone {
    pub config: LlamaConfig,
    pub weights: Weights,
    pub tokenizer: Tokenizer,
}

pub fn load_backbone(src: &BackboneSource, dev: &Device) -> Result<Backbone> {
    match src {
        BackboneSource::Default => load_gguf(&fetch::default_gguf()?, dev),
        BackboneSource::Gguf(p) => load_gguf(p, dev),
        BackboneSource::HfDir(d) => {
            let m = hf::load(d, dev)?;
            Ok(Backbone {
                config: m.config,
                weights: m.weights,
                tokenizer: m.tokenizer,
            })
        }
    }
}

/// The backbone's tokenizer alone (reads no weights; fetches the default backbone if needed).
pub fn load_tokenizer(src: &BackboneSource) -> Result<Tokenizer> {
    match src {
        BackboneSource::Default => {
            tokenizer::from_gguf_vocab(&gguf::read_vocab(&fetch::default_gguf()?)?)
        }
        BackboneSource::Gguf(p) => tokenizer::from_gguf_vocab(&gguf::read_vocab(p)?),
        BackboneSource::HfDir(d) => {
            let p = d.join("tokenizer.json");
            Tokenizer::from_file(&p).map_err(|e| ModelError::format(&p, e.to_string()))
        }
    }
}

fn load_gguf(path: &Path, dev: &Device) -> Result<Backbone> {
    let m = gguf::load(path, dev)?;
    let tokenizer = tokenizer::from_gguf_vocab(&m.vocab)?;
    Ok(Backbone {
        config: m.config,
        weights: m.weights,
        tokenizer,
    })
}

/// The ECG encoder stored in `dir` (config + safetensors), or an untrained, seeded one.
pub fn load_encoder(
    dir: Option<&Path>,
    head_dim: usize,
    prefix_slots: usize,
    dev: &Device,
) -> Result<(EcgEncoder, bool)> {
    if let Some(dir) = dir {
        let cfg_path = dir.join(ENCODER_CONFIG_FILE);
        let raw = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
        let cfg: EncoderConfig =
            serde_json::from_str(&raw).map_err(|e| ModelError::format(&cfg_path, e.to_string()))?;
        if cfg.out_dim != head_dim {
            return Err(ModelError::format(
                &cfg_path,
                format!(
                    "encoder out_dim {} does not match the backbone head size {head_dim}",
                    cfg.out_dim
                ),
            ));
        }
        let w = dir.join(ENCODER_WEIGHTS_FILE);
        let tensors = candle_core::safetensors::load(&w, dev)
            .map_err(|e| ModelError::format(&w, e.to_string()))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, dev);
        return Ok((EcgEncoder::load(vb, &cfg)?, true));
    }
    // An untrained encoder: the first build creates the variables, the seeded fill sets them,
    // and the second build copies the filled BatchNorm statistics (BatchNorm keeps copies).
    let cfg = EncoderConfig::default_for(head_dim, prefix_slots);
    let vm = VarMap::new();
    EcgEncoder::load(VarBuilder::from_varmap(&vm, DType::F32, dev), &cfg)?;
    seeded_init(&vm, UNTRAINED_ENCODER_SEED)?;
    Ok((
        EcgEncoder::load(VarBuilder::from_varmap(&vm, DType::F32, dev), &cfg)?,
        false,
    ))
}

/// Precision of the decode path. Prefill (steps of more than `max_rows` tokens) always runs the
/// f32 weights; steps of at most `max_rows` tokens use a quantized copy when one is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    F32,
    Q8_0,
    Q4_0,
}

impl Precision {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Precision::F32),
            "q8_0" | "q8" => Ok(Precision::Q8_0),
            "q4_0" | "q4" => Ok(Precision::Q4_0),
            other => Err(ModelError::Input(format!(
                "precision must be f32, q8_0 or q4_0, got `{other}`"
            ))),
        }
    }

    fn ggml(self) -> Option<GgmlDType> {
        match self {
            Precision::F32 => None,
            Precision::Q8_0 => Some(GgmlDType::Q8_0),
            Precision::Q4_0 => Some(GgmlDType::Q4_0),
        }
    }
}

/// With Q4_0 (candle's matrix-vector kernels), steps of at most this many tokens use the
/// quantized weights; above it f32 GEMM is faster on these CPUs. Q8_0 runs our batched int8
/// kernel (`qmatmul`) at every step size, prefill included, and on CPUs with AMX a bf16 tile
/// kernel (`amx`) for steps of 8 rows or more.
pub const DEFAULT_QUANT_MAX_ROWS: usize = 8;

/// The adapter shipped with the repository (trained on PTB-XL by `trainer train`).
pub const SHIPPED_ADAPTER: &str = "model-cards/meit-smollm2-135m-ptbxl";

/// Resolves an adapter setting: `default` is the shipped adapter (looked up relative to the
/// working directory, then to the source tree the binary was built from), `none` or empty is no
/// adapter, anything else is a directory.
pub fn resolve_adapter(setting: &str) -> Option<PathBuf> {
    match setting.trim() {
        "" | "none" => None,
        "default" => [
            PathBuf::from(SHIPPED_ADAPTER),
            Path::new(env!("CARGO_MANIFEST_DIR")).join(SHIPPED_ADAPTER),
        ]
        .into_iter()
        .find(|p| p.join(super::lora::CONFIG_FILE).is_file()),
        dir => Some(PathBuf::from(dir)),
    }
}

/// What to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub backbone: BackboneSource,
    /// A directory with a PEFT adapter and the encoder trained with it.
    pub adapter: Option<PathBuf>,
    /// ECG prefix slots of an untrained encoder (a trained one carries its own).
    pub prefix_slots: usize,
    /// Decode precision.
    pub precision: Precision,
    /// KV cache element type; `None`: f32 with f32 weights, int8 with quantized ones (see
    /// [`default_kv_cache`]).
    pub kv_cache: Option<KvDtype>,
}

/// The KV cache a precision gets by default: f32 keeps the exact path exact; with quantized
/// weights the cache is int8 with row scales, which halves what a batched decode step reads
/// from it against f16 (the test-fold scores of the shipped adapter are level with f16's: see
/// the model card).
pub fn default_kv_cache(precision: Precision) -> KvDtype {
    match precision {
        Precision::F32 => KvDtype::F32,
        _ => KvDtype::I8,
    }
}

impl LoadOptions {
    /// The default backbone, no adapter, one prefix slot, f32.
    pub fn default_backbone() -> Self {
        LoadOptions {
            backbone: BackboneSource::Default,
            adapter: None,
            prefix_slots: 1,
            precision: Precision::F32,
            kv_cache: None,
        }
    }
}

/// The whole served model.
pub struct MeitModel {
    pub llm: Llama,
    pub encoder: EcgEncoder,
    /// The encoder on slices for inference on the CPU (see `encoder_infer`).
    fast_encoder: Option<FrozenEncoder>,
    pub tokenizer: Tokenizer,
    /// Token ids that end generation (`<|im_end|>`, `<|endoftext|>`).
    pub eos_ids: Vec<u32>,
    /// Whether a trained adapter and encoder were loaded.
    pub trained: bool,
}

impl MeitModel {
    pub fn load(opts: &LoadOptions, dev: &Device) -> Result<Self> {
        let mut bb = load_backbone(&opts.backbone, dev)?;
        if let Some(dir) = &opts.adapter {
            let adapter = Adapter::load(dir, dev)?;
            adapter.merge_into(&mut bb.weights)?;
        }
        let mut llm = Llama::load(&bb.weights, &bb.config, dev)?;
        if let Some(dtype) = opts.precision.ggml() {
            let max_rows = match opts.precision {
                Precision::Q8_0 => usize::MAX,
                _ => DEFAULT_QUANT_MAX_ROWS,
            };
            llm.quantize(dtype, max_rows)?;
        }
        llm.set_kv_dtype(opts.kv_cache.unwrap_or(default_kv_cache(opts.precision)));
        let (encoder, trained) = load_encoder(
            opts.adapter.as_deref(),
            bb.config.head_dim(),
            opts.prefix_slots,
            dev,
        )?;
        let eos_ids = ["<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"]
            .iter()
            .filter_map(|t| bb.tokenizer.token_to_id(t))
            .collect();
        let fast_encoder = if dev.is_cpu() {
            Some(FrozenEncoder::from_encoder(&encoder)?)
        } else {
            None
        };
        Ok(MeitModel {
            llm,
            encoder,
            fast_encoder,
            tokenizer: bb.tokenizer,
            eos_ids,
            trained: trained && opts.adapter.is_some(),
        })
    }

    /// ECG vectors `(P, D)` of one preprocessed record (lead-major `12 * samples`).
    pub fn encode_ecg(&self, data: &[f32], samples: usize) -> Result<Tensor> {
        match &self.fast_encoder {
            Some(f) => {
                let v = f.encode(data, samples)?;
                let (p, d) = (
                    self.encoder.config().prefix_slots,
                    self.encoder.config().out_dim,
                );
                Ok(Tensor::from_vec(v, (p, d), self.llm.device())?)
            }
            None => self.encoder.encode(data, samples, self.llm.device()),
        }
    }

    /// Greedy generation for one prompt, with an optional ECG prefix; stops at an EOS id
    /// (not included) or after `max_tokens`.
    pub fn generate_greedy(
        &self,
        prompt: &[u32],
        prefix: Option<&Tensor>,
        max_tokens: usize,
    ) -> Result<Vec<u32>> {
        let p = prefix.map(|t| t.dim(0)).transpose()?.unwrap_or(0);
        let mut cache = self.llm.new_cache(p + prompt.len() + max_tokens, false)?;
        if let Some(prefix) = prefix {
            self.llm.write_prefix(prefix, &mut cache)?;
        }
        let mut out = Vec::new();
        let mut next: Vec<u32> = prompt.to_vec();
        for _ in 0..max_tokens {
            let logits = self.llm.forward(&mut [super::SeqInput {
                tokens: &next,
                cache: &mut cache,
            }])?;
            let id = super::llama::argmax(&logits)?;
            if self.eos_ids.contains(&id) {
                break;
            }
            out.push(id);
            next = vec![id];
        }
        Ok(out)
    }
}
