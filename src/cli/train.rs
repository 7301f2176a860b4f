//! `trainer train` (LoRA instruction tuning on a prepared JSONL) and `trainer bench-train`
//! (training throughput at a chosen batch and sequence length on the real backbone).
use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;

use crate::eval::validation::{CocoMeteor, EngineGenerator};
use crate::model::bundle::{load_backbone, BackboneSource, Precision};
use crate::model::encoder::EncoderConfig;
use crate::model::frozen::{use_bf16_tiles, use_f32_panels};
use crate::model::Llama;
use crate::train::batch::{encode_example, Encoded};
use crate::train::data::{read_jsonl, Split};
use crate::train::ecg::{EcgStore, LEADS, SAMPLES};
use crate::train::eval_hook::Generation;
use crate::train::lora::LoraSettings;
use crate::train::rng::SplitMix64;
use crate::train::{Sample, TrainError, TrainSettings, Trainer};

/// Hyperparameters shared by `train` and `bench-train`.
#[derive(Debug, Clone, clap::Args)]
pub struct HyperArgs {
    /// `default` (SmolLM2-135M-Instruct, fetched on first use), a GGUF file or an HF directory.
    #[arg(long, default_value = "default")]
    pub model: String,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// LoRA alpha (scale = alpha / rank).
    #[arg(long, default_value_t = 16.0)]
    pub alpha: f64,
    /// Dropout on the LoRA input.
    #[arg(long, default_value_t = 0.1)]
    pub lora_dropout: f32,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// The encoder's learning rate as a multiple of --lr (the encoder starts from random weights
    /// while LoRA starts from a working backbone).
    #[arg(long, default_value_t = 1.0)]
    pub encoder_lr_scale: f64,
    /// Examples per micro-batch.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Run the frozen backbone's matmuls in bf16 on AMX tiles with f32 accumulation (mixed
    /// precision; needs a CPU with AMX, otherwise f32). LoRA, the encoder and the optimizer stay f32.
    #[arg(long)]
    pub bf16_matmul: bool,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    pub accum: usize,
    /// ECG prefix slots (MEIT: 1).
    #[arg(long, default_value_t = 1)]
    pub prefix_slots: usize,
    /// Seed of the LoRA/encoder initialisation, data order and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Prepared JSONL (`trainer prepare`).
    #[arg(long)]
    pub data: PathBuf,
    /// Root the JSONL's record paths are relative to.
    #[arg(long)]
    pub root: PathBuf,
    /// Output directory (log, checkpoints, `final/`, `best/`).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub hyper: HyperArgs,
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Maximum tokens per example (prompt + report + `<|im_end|>`); reports are cut to fit.
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    #[arg(long, default_value_t = 0.03)]
    pub warmup_ratio: f64,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Checkpoint every N optimizer steps (0: only at the end).
    #[arg(long, default_value_t = 50)]
    pub save_every: usize,
    /// Validation loss every N optimizer steps (0: never).
    #[arg(long, default_value_t = 100)]
    pub eval_every: usize,
    /// Validation examples per evaluation (0: all).
    #[arg(long, default_value_t = 0)]
    pub eval_limit: usize,
    /// Stop after N optimizer steps (the schedule is sized to N).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Continue from a checkpoint directory of the same run.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Validation examples whose greedy reports are scored with METEOR at every evaluation
    /// (selects `best/`; 0: select on validation loss alone).
    #[arg(long, default_value_t = 64)]
    pub val_meteor: usize,
    /// Token limit of those reports.
    #[arg(long, default_value_t = 64)]
    pub val_max_tokens: usize,
    /// Weight precision of the engine that writes them (`f32`, `q8_0`, `q4_0`).
    #[arg(long, default_value = "q8_0")]
    pub val_precision: String,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn load_llm(h: &HyperArgs) -> Result<(Llama, tokenizers::Tokenizer), TrainError> {
    let bb = load_backbone(&BackboneSource::parse(&h.model), &Device::Cpu)?;
    let llm = Llama::load(&bb.weights, &bb.config, &Device::Cpu)?;
    let mut ws: Vec<&candle_core::Tensor> = vec![llm.lm_head().weight()];
    for b in llm.blocks() {
        ws.extend([&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down].map(|l| l.weight()));
    }
    let bf16 = h.bf16_matmul && use_bf16_tiles(&ws)?;
    if bf16 {
        eprintln!("frozen backbone matmuls: bf16 on AMX tiles, f32 accumulation");
    } else if h.bf16_matmul {
        eprintln!("--bf16-matmul: this CPU has no usable AMX; the backbone matmuls stay f32");
    }
    if !bf16 && use_f32_panels(&ws)? {
        eprintln!("frozen backbone matmuls: f32 on the AVX-512 panel kernel");
    }
    Ok((llm, bb.tokenizer))
}

fn lora(h: &HyperArgs) -> LoraSettings {
    LoraSettings {
        r: h.rank,
        alpha: h.alpha,
        dropout: h.lora_dropout,
    }
}

/// Runs `trainer train`; returns the directory of the final adapter.
pub fn run(args: &TrainArgs) -> Result<PathBuf, TrainError> {
    let (llm, tok) = load_llm(&args.hyper)?;
    let examples = read_jsonl(&args.data)?;
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for ex in &examples {
        let enc = encode_example(&tok, &ex.instruction, &ex.report, args.max_len)?;
        let s = Sample {
            record: ex.record.clone(),
            enc,
        };
        match ex.split {
            Split::Train => train.push(s),
            Split::Validation => val.push(s),
            Split::Test => {}
        }
    }
    let cut = train
        .iter()
        .filter(|s| s.enc.ids.len() == args.max_len)
        .count();
    eprintln!(
        "{} training / {} validation examples; {cut} training examples reach --max-len {}",
        train.len(),
        val.len(),
        args.max_len
    );
    let settings = TrainSettings {
        lora: lora(&args.hyper),
        lr: args.hyper.lr,
        encoder_lr_scale: args.hyper.encoder_lr_scale,
        warmup_ratio: args.warmup_ratio,
        weight_decay: args.weight_decay,
        max_grad_norm: args.max_grad_norm,
        epochs: args.epochs,
        batch: args.hyper.batch,
        accum: args.hyper.accum,
        max_steps: args.max_steps,
        save_every: args.save_every,
        eval_every: args.eval_every,
        eval_limit: args.eval_limit,
        seed: args.hyper.seed,
        progress: !args.quiet,
    };
    let enc_cfg = EncoderConfig::default_for(llm.config().head_dim(), args.hyper.prefix_slots);
    let mut trainer = Trainer::new(
        &llm,
        enc_cfg,
        train,
        val,
        EcgStore::new(&args.root),
        settings,
    )?;
    if args.val_meteor > 0 {
        let generator = EngineGenerator {
            backbone: args.hyper.model.clone(),
            precision: Precision::parse(&args.val_precision)
                .map_err(|e| TrainError::Config(format!("--val-precision: {e}")))?,
            max_running: 32,
        };
        trainer.set_scorer(
            Box::new(CocoMeteor),
            Generation::Saved(Box::new(generator)),
            tok,
            args.val_meteor,
            args.val_max_tokens,
        );
    }
    if let Some(dir) = &args.resume {
        trainer.resume(dir)?;
        eprintln!(
            "resumed at step {} of {}",
            trainer.state().step,
            trainer.total_steps()
        );
    }
    trainer.run(&args.out, None)
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub hyper: HyperArgs,
    /// Tokens per example (every example padded to exactly this length).
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Prompt tokens per example (the rest carries loss).
    #[arg(long, default_value_t = 48)]
    pub prompt: usize,
    /// Timed optimizer steps (after one untimed warm-up step).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
}

/// Seconds per optimizer step of each timed step, on synthetic data of the given shape.
pub fn bench(args: &BenchArgs) -> Result<Vec<f64>, TrainError> {
    let (llm, _) = load_llm(&args.hyper)?;
    let h = &args.hyper;
    let mut rng = SplitMix64::new(h.seed);
    let mut store = EcgStore::new("/nonexistent");
    let mut samples = Vec::new();
    let vocab = llm.config().vocab_size;
    for i in 0..h.batch * h.accum {
        let rec = format!("synthetic{i}");
        let sig: Vec<f32> = (0..LEADS * SAMPLES)
            .map(|_| rng.next_f32() * 2.0 - 1.0)
            .collect();
        store.insert(&rec, sig)?;
        let ids = (0..args.seq).map(|_| rng.below(vocab) as u32).collect();
        samples.push(Sample {
            record: rec,
            enc: Encoded {
                ids,
                prompt_len: args.prompt.min(args.seq - 1),
            },
        });
    }
    let settings = TrainSettings {
        lora: lora(h),
        lr: h.lr,
        encoder_lr_scale: h.encoder_lr_scale,
        warmup_ratio: 0.0,
        weight_decay: 0.0,
        max_grad_norm: 1.0,
        epochs: 1,
        batch: h.batch,
        accum: h.accum,
        max_steps: Some(args.steps + 1),
        save_every: 0,
        eval_every: 0,
        eval_limit: 0,
        seed: h.seed,
        progress: false,
    };
    let enc_cfg = EncoderConfig::default_for(llm.config().head_dim(), h.prefix_slots);
    let mut trainer = Trainer::new(&llm, enc_cfg, samples, vec![], store, settings)?;
    trainer.step()?;
    let mut times = Vec::new();
    for _ in 0..args.steps {
        let t0 = Instant::now();
        let s = trainer.step()?;
        let total = t0.elapsed().as_secs_f64();
        eprintln!(
            "step {total:.3} s: forward {:.3} s, backward {:.3} s, rest {:.3} s",
            s.forward_s,
            s.backward_s,
            total - s.forward_s - s.backward_s
        );
        times.push(total);
    }
    Ok(times)
}
