//! The LoRA instruction-tuning loop: the frozen backbone with trainable LoRA factors and a jointly
//! trained ECG encoder, AdamW with a linear warm-up schedule, gradient accumulation and
//! global-norm clipping, validation loss, checkpoints that resume exactly.
//!
//! Determinism: the data order of epoch `e` is a shuffle drawn from `(seed, e)`; dropout masks
//! come from one generator whose state is checkpointed; the LoRA and encoder initialisations are
//! seeded. A resumed run therefore replays the same steps.
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use crate::model::bundle::{ENCODER_CONFIG_FILE, ENCODER_WEIGHTS_FILE};
use crate::model::encoder::{seeded_init, EcgEncoder, EncoderConfig};
use crate::model::train_forward::{forward_train, lm_logits, TrainInput};
use crate::model::{tokenizer, Llama};

use super::batch::{collate, Batch, Encoded};
use super::checkpoint::{TrainerState, OPTIMIZER_FILE};
use super::ecg::{EcgStore, LEADS, SAMPLES};
use super::error::{Result, TrainError};
use super::eval_hook::{Generation, ReportScorer, ValidationItem};
use super::generate::greedy_report;
use super::log::{EvalRecord, JsonlLog, Progress, StepRecord};
use super::lora::{LoraSet, LoraSettings};
use super::optim::{clip_global_norm, AdamW, AdamWConfig};
use super::rng::SplitMix64;
use super::schedule::LinearSchedule;

/// One training example: its record and tokens.
#[derive(Debug, Clone)]
pub struct Sample {
    pub record: String,
    pub enc: Encoded,
}

/// Hyperparameters of a run.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    pub lora: LoraSettings,
    pub lr: f64,
    /// The encoder's learning rate as a multiple of `lr` (it starts from random weights).
    pub encoder_lr_scale: f64,
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub epochs: usize,
    pub batch: usize,
    pub accum: usize,
    /// Stop (and size the schedule) at this many optimizer steps instead of `epochs`.
    pub max_steps: Option<usize>,
    pub save_every: usize,
    pub eval_every: usize,
    /// Validation examples per evaluation (0: all).
    pub eval_limit: usize,
    pub seed: u64,
    pub progress: bool,
}

impl TrainSettings {
    fn validate(&self) -> Result<()> {
        if self.batch == 0 || self.accum == 0 || self.epochs == 0 {
            return Err(TrainError::Config(
                "batch, accum and epochs must be positive".into(),
            ));
        }
        if !(self.encoder_lr_scale > 0.0 && self.encoder_lr_scale.is_finite()) {
            return Err(TrainError::Config(format!(
                "encoder learning-rate scale must be positive: {}",
                self.encoder_lr_scale
            )));
        }
        if self.lr.is_nan() || self.lr <= 0.0 || !(0.0..1.0).contains(&self.warmup_ratio) {
            return Err(TrainError::Config(format!(
                "lr must be positive and warm-up ratio in [0, 1): lr={}, warmup={}",
                self.lr, self.warmup_ratio
            )));
        }
        Ok(())
    }
}

/// Figures of one optimizer step.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    pub loss: f32,
    pub lr: f64,
    pub grad_norm: f64,
    pub samples: usize,
    pub seconds: f64,
    /// Of `seconds`: forward passes, backward passes.
    pub forward_s: f64,
    pub backward_s: f64,
}

pub struct Trainer<'a> {
    llm: &'a Llama,
    settings: TrainSettings,
    lora: LoraSet,
    enc_vm: VarMap,
    encoder: EcgEncoder,
    enc_cfg: EncoderConfig,
    opt: AdamW,
    schedule: LinearSchedule,
    train: Vec<Sample>,
    val: Vec<Sample>,
    ecgs: EcgStore,
    state: TrainerState,
    scorer: Option<ScorerHook>,
}

/// A generation metric on the first `samples` validation examples.
struct ScorerHook {
    scorer: Box<dyn ReportScorer>,
    generation: Generation,
    tokenizer: tokenizers::Tokenizer,
    samples: usize,
    max_new: usize,
}

fn encoder_params(vm: &VarMap) -> Vec<(String, Var)> {
    let mut v: Vec<(String, Var)> = vm
        .data()
        .lock()
        .map(|d| {
            d.iter()
                .filter(|(n, _)| !n.contains("running_"))
                .map(|(n, v)| (format!("encoder.{n}"), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

impl<'a> Trainer<'a> {
    /// A fresh run: LoRA and encoder initialised from the seed.
    pub fn new(
        llm: &'a Llama,
        enc_cfg: EncoderConfig,
        train: Vec<Sample>,
        val: Vec<Sample>,
        ecgs: EcgStore,
        settings: TrainSettings,
    ) -> Result<Self> {
        settings.validate()?;
        if train.is_empty() {
            return Err(TrainError::Config("no training examples".into()));
        }
        let dev = llm.device().clone();
        let lora = LoraSet::new(llm, settings.lora, settings.seed)?;
        let enc_vm = VarMap::new();
        let enc = EcgEncoder::load(VarBuilder::from_varmap(&enc_vm, DType::F32, &dev), &enc_cfg)?;
        seeded_init(&enc_vm, settings.seed.wrapping_add(1))?;
        drop(enc);
        // BatchNorm copies its running statistics at build time: build after the init.
        let encoder =
            EcgEncoder::load(VarBuilder::from_varmap(&enc_vm, DType::F32, &dev), &enc_cfg)?;
        let mut params = lora.params();
        params.extend(encoder_params(&enc_vm));
        let mut opt = AdamW::new(
            params,
            AdamWConfig {
                weight_decay: settings.weight_decay,
                ..Default::default()
            },
        )?;
        opt.scale_lr("encoder.", settings.encoder_lr_scale);
        let micro = train.len().div_ceil(settings.batch);
        let per_epoch = micro.div_ceil(settings.accum);
        let total = settings.max_steps.unwrap_or(per_epoch * settings.epochs);
        let schedule = LinearSchedule::new(settings.lr, settings.warmup_ratio, total);
        let state = TrainerState {
            step: 0,
            epoch: 0,
            pos: 0,
            rng: SplitMix64::derived(settings.seed, u64::MAX),
            samples: 0,
            best_val: None,
            best_meteor: None,
            seed: settings.seed,
            rank: settings.lora.r,
            batch: settings.batch,
            accum: settings.accum,
            total_steps: total,
        };
        Ok(Trainer {
            llm,
            settings,
            lora,
            enc_vm,
            encoder,
            enc_cfg,
            opt,
            schedule,
            train,
            val,
            ecgs,
            state,
            scorer: None,
        })
    }

    pub fn state(&self) -> &TrainerState {
        &self.state
    }

    pub fn total_steps(&self) -> usize {
        self.schedule.total_steps
    }

    pub fn lora(&self) -> &LoraSet {
        &self.lora
    }

    pub fn encoder(&self) -> &EcgEncoder {
        &self.encoder
    }

    /// Plugs in a generation metric (METEOR) computed at every evaluation on greedy reports of
    /// the first `samples` validation examples, at most `max_new` tokens each.
    pub fn set_scorer(
        &mut self,
        scorer: Box<dyn ReportScorer>,
        generation: Generation,
        tokenizer: tokenizers::Tokenizer,
        samples: usize,
        max_new: usize,
    ) {
        self.scorer = Some(ScorerHook {
            scorer,
            generation,
            tokenizer,
            samples,
            max_new,
        });
    }

    /// Generates reports for the first validation examples and scores them against the
    /// references; `None` without a scorer or validation data.
    fn generation_score(&mut self, out: &Path) -> Result<Option<f64>> {
        let Some(mut hook) = self.scorer.take() else {
            return Ok(None);
        };
        let result = self.score_with(&mut hook, out);
        self.scorer = Some(hook);
        result
    }

    fn score_with(&mut self, hook: &mut ScorerHook, out: &Path) -> Result<Option<f64>> {
        let n = hook.samples.min(self.val.len());
        if n == 0 {
            return Ok(None);
        }
        let val: Vec<Sample> = self.val[..n].to_vec();
        let mut refs = Vec::with_capacity(n);
        for s in &val {
            refs.push(tokenizer::decode(&hook.tokenizer, s.enc.targets())?);
        }
        let hyps = match &mut hook.generation {
            Generation::InProcess => {
                let stop: Vec<u32> = ["<|im_end|>", "<|endoftext|>"]
                    .iter()
                    .filter_map(|t| hook.tokenizer.token_to_id(t))
                    .collect();
                let mut hyps = Vec::with_capacity(n);
                for s in &val {
                    let ecg = self.ecg_batch(&[s])?;
                    let prefix = self.encoder.forward_t(&ecg, false)?;
                    let prompt = &s.enc.ids[..s.enc.prompt_len];
                    let ids =
                        greedy_report(self.llm, &self.lora, &prefix, prompt, &stop, hook.max_new)?;
                    hyps.push(tokenizer::decode(&hook.tokenizer, &ids)?);
                }
                hyps
            }
            Generation::Saved(gen) => {
                let dir = out.join("validation-adapter");
                std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
                self.save_adapter(&dir)?;
                let mut items = Vec::with_capacity(n);
                for s in &val {
                    items.push(ValidationItem {
                        record: s.record.clone(),
                        prompt: s.enc.ids[..s.enc.prompt_len].to_vec(),
                        ecg: self.ecgs.get(&s.record)?,
                    });
                }
                gen.generate(&dir, &items, hook.max_new)?
            }
        };
        Ok(Some(hook.scorer.score(&hyps, &refs)))
    }

    /// Micro-batches (indices into the training set) of epoch `e`, in order.
    fn epoch_batches(&self, e: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.train.len()).collect();
        SplitMix64::derived(self.settings.seed, e as u64).shuffle(&mut order);
        order
            .chunks(self.settings.batch)
            .map(|c| c.to_vec())
            .collect()
    }

    /// ECG tensor `(B, 12, 5000)` of the given samples.
    fn ecg_batch(&mut self, samples: &[&Sample]) -> Result<Tensor> {
        let mut data = Vec::with_capacity(samples.len() * LEADS * SAMPLES);
        for s in samples {
            data.extend_from_slice(&self.ecgs.get(&s.record)?);
        }
        Ok(Tensor::from_vec(
            data,
            (samples.len(), LEADS, SAMPLES),
            self.llm.device(),
        )?)
    }

    /// Mean cross-entropy over the target tokens of `samples`; training mode draws dropout
    /// masks and uses BatchNorm batch statistics.
    fn batch_loss(&mut self, idx: &[usize], train: bool) -> Result<(Tensor, usize)> {
        let set = if train { &self.train } else { &self.val };
        let samples: Vec<Sample> = idx.iter().map(|&i| set[i].clone()).collect();
        let refs: Vec<&Sample> = samples.iter().collect();
        let ecg = self.ecg_batch(&refs)?;
        let encs: Vec<&Encoded> = samples.iter().map(|s| &s.enc).collect();
        let batch = collate(&encs, self.llm.device())?;
        let prefix = self.encoder.forward_t(&ecg, train)?;
        let rng = if train {
            Some(&mut self.state.rng)
        } else {
            None
        };
        let mut adapter = self.lora.adapter(rng);
        let loss = masked_loss(self.llm, &batch, Some(&prefix), &mut adapter)?;
        Ok((loss, batch.n_targets))
    }

    /// One optimizer step over up to `accum` micro-batches.
    pub fn step(&mut self) -> Result<StepStats> {
        let t0 = Instant::now();
        let mut grads: Vec<Option<Tensor>> = vec![None; self.opt.params().len()];
        let mut batches = self.epoch_batches(self.state.epoch);
        let mut taken = Vec::new();
        while taken.len() < self.settings.accum {
            if self.state.pos >= batches.len() {
                if !taken.is_empty() {
                    break;
                }
                self.state.epoch += 1;
                self.state.pos = 0;
                batches = self.epoch_batches(self.state.epoch);
            }
            taken.push(batches[self.state.pos].clone());
            self.state.pos += 1;
        }
        let n_micro = taken.len();
        let mut loss_sum = 0f32;
        let mut samples = 0;
        let (mut forward_s, mut backward_s) = (0.0, 0.0);
        for idx in &taken {
            let tf = Instant::now();
            let (loss, _) = self.batch_loss(idx, true)?;
            loss_sum += loss.to_scalar::<f32>()?;
            samples += idx.len();
            let tb = Instant::now();
            forward_s += (tb - tf).as_secs_f64();
            let g = (loss / n_micro as f64)?.backward()?;
            backward_s += tb.elapsed().as_secs_f64();
            for (slot, (_, p)) in grads.iter_mut().zip(self.opt.params()) {
                if let Some(gp) = g.get(p.as_tensor()) {
                    // Detached: a gradient built by backward still references the step's graph
                    // (every activation); keeping it attached in the accumulator or the optimizer
                    // moments would keep each step's activations alive.
                    let gp = gp.detach();
                    *slot = Some(match slot.take() {
                        Some(acc) => (acc + gp)?,
                        None => gp,
                    });
                }
            }
        }
        let loss = loss_sum / n_micro as f32;
        if !loss.is_finite() {
            return Err(TrainError::NonFinite {
                step: self.state.step,
                loss,
            });
        }
        let grad_norm = clip_global_norm(&mut grads, self.settings.max_grad_norm)?;
        let lr = self.schedule.lr(self.state.step);
        self.opt.step(&grads, lr)?;
        self.state.step += 1;
        self.state.samples += samples;
        if self.state.pos >= batches.len() {
            self.state.epoch += 1;
            self.state.pos = 0;
        }
        Ok(StepStats {
            loss,
            lr,
            grad_norm,
            samples,
            seconds: t0.elapsed().as_secs_f64(),
            forward_s,
            backward_s,
        })
    }

    /// Token-weighted mean loss over the validation split (at most `eval_limit` examples), in
    /// evaluation mode. `None` when there is no validation data.
    pub fn evaluate(&mut self) -> Result<Option<(f32, usize)>> {
        let n = match self.settings.eval_limit {
            0 => self.val.len(),
            k => k.min(self.val.len()),
        };
        if n == 0 {
            return Ok(None);
        }
        let idx: Vec<usize> = (0..n).collect();
        let (mut sum, mut tokens) = (0f64, 0usize);
        for chunk in idx.chunks(self.settings.batch) {
            let (loss, k) = self.batch_loss(chunk, false)?;
            sum += loss.to_scalar::<f32>()? as f64 * k as f64;
            tokens += k;
        }
        Ok(Some(((sum / tokens.max(1) as f64) as f32, tokens)))
    }

    /// Writes the adapter (PEFT layout) and the encoder into `dir`: what the server loads.
    pub fn save_adapter(&mut self, dir: &Path) -> Result<()> {
        self.lora.save(dir)?;
        self.encoder.sync_running_stats(&mut self.enc_vm, "")?;
        let cfg_path = dir.join(ENCODER_CONFIG_FILE);
        let json = serde_json::to_string_pretty(&self.enc_cfg)
            .map_err(|e| TrainError::checkpoint(&cfg_path, e.to_string()))?;
        std::fs::write(&cfg_path, json).map_err(|e| TrainError::io(&cfg_path, e))?;
        let w = dir.join(ENCODER_WEIGHTS_FILE);
        self.enc_vm
            .save(&w)
            .map_err(|e| TrainError::checkpoint(&w, e.to_string()))
    }

    /// A full checkpoint (adapter, encoder, optimizer moments, trainer state) in `dir`.
    pub fn save_checkpoint(&mut self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        self.save_adapter(dir)?;
        let p = dir.join(OPTIMIZER_FILE);
        candle_core::safetensors::save(&self.opt.state_tensors(), &p)
            .map_err(|e| TrainError::checkpoint(&p, e.to_string()))?;
        self.state.save(dir)
    }

    /// Continues from a checkpoint written by [`Trainer::save_checkpoint`] of a run with the
    /// same settings.
    pub fn resume(&mut self, dir: &Path) -> Result<()> {
        let st = TrainerState::load(dir)?;
        let s = &self.settings;
        if (st.seed, st.rank, st.batch, st.accum) != (s.seed, s.lora.r, s.batch, s.accum) {
            return Err(TrainError::checkpoint(
                dir,
                format!(
                    "saved with seed {} rank {} batch {} accum {}, resumed with {} {} {} {}",
                    st.seed, st.rank, st.batch, st.accum, s.seed, s.lora.r, s.batch, s.accum
                ),
            ));
        }
        let dev = self.llm.device().clone();
        self.lora.load_values(dir, &dev)?;
        let w = dir.join(ENCODER_WEIGHTS_FILE);
        self.enc_vm
            .load(&w)
            .map_err(|e| TrainError::checkpoint(&w, e.to_string()))?;
        self.encoder = EcgEncoder::load(
            VarBuilder::from_varmap(&self.enc_vm, DType::F32, &dev),
            &self.enc_cfg,
        )?;
        let p = dir.join(OPTIMIZER_FILE);
        let moments = candle_core::safetensors::load(&p, &dev)
            .map_err(|e| TrainError::checkpoint(&p, e.to_string()))?;
        self.opt.load_state(moments, st.step)?;
        self.state = st;
        Ok(())
    }

    /// Trains until `until` optimizer steps are done (at most the schedule's total), logging to
    /// `out/train_log.jsonl`, checkpointing to `out/checkpoint-{step}` every `save_every` steps,
    /// evaluating every `eval_every` steps (best adapter to `out/best`), and writing the final
    /// adapter to `out/final`.
    pub fn run(&mut self, out: &Path, until: Option<usize>) -> Result<PathBuf> {
        std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
        let mut log = JsonlLog::open(&out.join("train_log.jsonl"))?;
        let end = until
            .unwrap_or(self.schedule.total_steps)
            .min(self.schedule.total_steps);
        let bar = Progress::new(end, self.state.step, self.settings.progress);
        let t0 = Instant::now();
        while self.state.step < end {
            let s = self.step()?;
            let rec = StepRecord {
                step: self.state.step,
                epoch: self.state.epoch,
                loss: s.loss,
                lr: s.lr,
                grad_norm: s.grad_norm,
                samples_per_s: s.samples as f64 / s.seconds.max(1e-9),
                elapsed_s: t0.elapsed().as_secs_f64(),
            };
            log.write(&rec)?;
            bar.step(&rec);
            let step = self.state.step;
            if self.settings.eval_every > 0 && step.is_multiple_of(self.settings.eval_every) {
                self.eval_and_log(out, &mut log, &bar)?;
            }
            if self.settings.save_every > 0 && step.is_multiple_of(self.settings.save_every) {
                self.save_checkpoint(&out.join(format!("checkpoint-{step:06}")))?;
            }
        }
        bar.finish();
        let final_dir = out.join("final");
        self.save_checkpoint(&final_dir)?;
        Ok(final_dir)
    }

    fn eval_and_log(&mut self, out: &Path, log: &mut JsonlLog, bar: &Progress) -> Result<()> {
        let Some((val_loss, val_tokens)) = self.evaluate()? else {
            return Ok(());
        };
        // METEOR when a scorer is plugged in (the metrics module provides it).
        let val_meteor = self.generation_score(out)?;
        log.write(&EvalRecord {
            step: self.state.step,
            val_loss,
            val_tokens,
            val_meteor,
        })?;
        let meteor_note = val_meteor
            .map(|m| format!(", METEOR {m:.4}"))
            .unwrap_or_default();
        bar.println(&format!(
            "step {}: validation loss {val_loss:.4} over {val_tokens} tokens{meteor_note}",
            self.state.step
        ));
        // Selection: on METEOR when it is measured, else on validation loss.
        let better = match val_meteor {
            Some(m) => self.state.best_meteor.is_none_or(|b| m > b),
            None => self.state.best_val.is_none_or(|b| val_loss < b),
        };
        if self.state.best_val.is_none_or(|b| val_loss < b) {
            self.state.best_val = Some(val_loss);
        }
        if let Some(m) = val_meteor {
            self.state.best_meteor = Some(self.state.best_meteor.map_or(m, |b| b.max(m)));
        }
        if better {
            let best = out.join("best");
            std::fs::create_dir_all(&best).map_err(|e| TrainError::io(&best, e))?;
            self.save_adapter(&best)?;
        }
        Ok(())
    }
}

/// Mean cross-entropy over the batch's target tokens only.
pub fn masked_loss(
    llm: &Llama,
    batch: &Batch,
    prefix: Option<&Tensor>,
    adapter: &mut dyn crate::model::train_forward::LinearAdapter,
) -> Result<Tensor> {
    let hidden = forward_train(
        llm,
        &TrainInput {
            ids: &batch.ids,
            lens: &batch.lens,
            prefix,
        },
        adapter,
    )?;
    // (B*T, E) -> (K, E) -> (K, V)
    let h = hidden.index_select(&batch.label_rows, 0)?;
    let logits = lm_logits(llm, &h)?;
    super::xent::cross_entropy(&logits, &batch.targets)
}
