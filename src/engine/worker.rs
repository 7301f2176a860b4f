//! The engine thread: receive commands -> reap cancelled -> schedule -> step -> emit.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use tokenizers::Tokenizer;
use tokio::sync::mpsc as tmpsc;

use super::backend::{Backend, BackendError};
use super::detok::{Detokenizer, StopCheck, StopMatcher};
use super::events::{Event, Finish, FinishReason, Timings, Usage};
use super::kv::BlockPool;
use super::outbox::Outbox;
use super::sampler::Sampler;
use super::scheduler::{Scheduler, SchedulerConfig, StepPlan};
use super::{Command, EngineConfig, Shared, Submission};
use crate::telemetry::Metrics;

const WARMUP_ID: u64 = u64::MAX;

pub(super) struct Context {
    pub cmds: mpsc::Receiver<Command>,
    pub shared: Arc<Shared>,
    pub tokenizer: Arc<Tokenizer>,
    pub cfg: EngineConfig,
    pub metrics: Arc<Metrics>,
}

/// Per-sequence state that is not scheduling bookkeeping.
struct Live {
    tx: tmpsc::UnboundedSender<Event>,
    ecg: Option<Vec<f32>>,
    sampler: Sampler,
    detok: Detokenizer,
    stop: StopMatcher,
    max_tokens: usize,
    prompt_tokens: usize,
    generated: usize,
    submitted: Instant,
    admitted: Option<Instant>,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    in_backend: bool,
}

struct Worker<B: Backend> {
    backend: B,
    sched: Scheduler,
    live: HashMap<u64, Live>,
    ctx: Context,
    eos: Vec<u32>,
    deadline: Option<Instant>,
    /// The last step's logits, one row per entry (kept: a batched step writes megabytes).
    logits: Vec<f32>,
    /// Events of the current step, sent in one batch at its end.
    outbox: Outbox,
}

/// Marks the engine not ready when its thread ends, by return or by panic (a panicking backend
/// takes the engine down: streams end with an error and `/ready` turns 503).
struct NotReadyOnExit(Arc<Shared>);

impl Drop for NotReadyOnExit {
    fn drop(&mut self) {
        self.0.ready.store(false, Ordering::SeqCst);
        if std::thread::panicking() {
            tracing::error!("engine thread panicked; the server is no longer ready");
        }
    }
}

pub(super) fn run<B, F>(load: F, ctx: Context)
where
    B: Backend,
    F: FnOnce() -> Result<B, BackendError>,
{
    let _guard = NotReadyOnExit(ctx.shared.clone());
    let mut backend = match load() {
        Ok(b) => b,
        Err(e) => return tracing::error!("backend failed to load: {e}"),
    };
    if let Err(e) = warm_up(&mut backend) {
        return tracing::error!("backend warm-up failed: {e}");
    }
    // Caches for a full batch, within the KV budget, before the engine reports ready.
    let running = ctx.cfg.max_running.max(1);
    let per_sequence = ctx.cfg.kv_total_blocks * ctx.cfg.kv_block_size / running;
    if let Err(e) = backend.preallocate(running, per_sequence) {
        return tracing::error!("KV cache preallocation failed: {e}");
    }
    let prefix_slots = backend.prefix_slots();
    ctx.shared
        .prefix_slots
        .store(prefix_slots, Ordering::SeqCst);
    let sched = Scheduler::new(
        SchedulerConfig {
            max_running: ctx.cfg.max_running,
            max_batch_tokens: ctx.cfg.max_batch_tokens,
            prefix_slots,
        },
        BlockPool::new(ctx.cfg.kv_total_blocks, ctx.cfg.kv_block_size),
    );
    let eos = ["<|im_end|>", "<|endoftext|>"]
        .iter()
        .filter_map(|t| ctx.tokenizer.token_to_id(t))
        .collect();
    ctx.shared.ready.store(true, Ordering::SeqCst);
    let mut w = Worker {
        backend,
        sched,
        live: HashMap::new(),
        ctx,
        eos,
        deadline: None,
        logits: Vec::new(),
        outbox: Outbox::new(),
    };
    while w.receive() {
        w.reap_cancelled();
        w.enforce_deadline();
        if !w.sched.is_idle() {
            let plan = w.sched.schedule();
            let t0 = Instant::now();
            w.start(&plan);
            let t1 = Instant::now();
            w.publish_gauges();
            let forward = w.step(&plan);
            tracing::debug!(
                admitted = plan.admitted.len(),
                sequences = plan.entries.len(),
                rows = plan.entries.iter().map(|e| e.range.len()).sum::<usize>(),
                admit_ms = (t1 - t0).as_secs_f64() * 1e3,
                forward_ms = forward.as_secs_f64() * 1e3,
                step_ms = t1.elapsed().as_secs_f64() * 1e3,
                "engine step"
            );
        }
        w.publish_gauges();
        w.outbox.flush();
    }
}

/// One tiny ECG sequence through the backend, so the first request pays no lazy init.
fn warm_up<B: Backend>(backend: &mut B) -> Result<(), BackendError> {
    let ecg = vec![0.0f32; 12 * 5000];
    backend.add_sequence(WARMUP_ID, Some(&ecg), 2)?;
    let out = backend.forward(&[(WARMUP_ID, &[0u32][..])], &mut Vec::new());
    backend.remove_sequence(WARMUP_ID);
    out.map(|_| ())
}

impl<B: Backend> Worker<B> {
    /// Take all pending commands; block when idle. False when the engine should exit.
    fn receive(&mut self) -> bool {
        loop {
            let cmd = if self.sched.is_idle() {
                match self.ctx.cmds.recv() {
                    Ok(c) => c,
                    Err(_) => return false,
                }
            } else {
                match self.ctx.cmds.try_recv() {
                    Ok(c) => c,
                    Err(_) => return true,
                }
            };
            match cmd {
                Command::Submit(sub) => self.enqueue(*sub),
                Command::Shutdown { deadline } => self.deadline = Some(deadline),
            }
            if self.sched.is_idle() && self.deadline.is_some() {
                return true;
            }
        }
    }

    fn enqueue(&mut self, sub: Submission) {
        let Submission {
            id,
            req,
            tx,
            submitted,
        } = sub;
        let prompt_tokens = req.prompt.len();
        if let Err(e) = self.sched.enqueue(id, req.prompt, req.max_tokens) {
            self.ctx.shared.queued.fetch_sub(1, Ordering::SeqCst);
            self.outbox.push(&tx, Event::Failed(e.to_string()));
            return;
        }
        let live = Live {
            tx,
            ecg: req.ecg,
            sampler: Sampler::new(req.sampling),
            detok: Detokenizer::new(self.ctx.tokenizer.clone()),
            stop: StopMatcher::new(req.stop),
            max_tokens: req.max_tokens,
            prompt_tokens,
            generated: 0,
            submitted,
            admitted: None,
            first_token: None,
            last_token: None,
            in_backend: false,
        };
        self.live.insert(id, live);
    }

    /// Sequences whose receiver is gone are removed and their KV freed before the next step.
    fn reap_cancelled(&mut self) {
        let gone: Vec<u64> = self
            .live
            .iter()
            .filter(|(_, l)| l.tx.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            tracing::debug!(id, "sequence cancelled by client");
            self.remove(id);
        }
    }

    fn enforce_deadline(&mut self) {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            let ids: Vec<u64> = self.live.keys().copied().collect();
            for id in ids {
                self.finish(id, FinishReason::Shutdown);
            }
        }
    }

    /// Create backend caches (ECG prefix) for newly admitted sequences.
    fn start(&mut self, plan: &StepPlan) {
        let now = Instant::now();
        for &id in &plan.admitted {
            self.ctx.shared.queued.fetch_sub(1, Ordering::SeqCst);
            let Some(l) = self.live.get_mut(&id) else {
                continue;
            };
            l.admitted = Some(now);
            let m = &self.ctx.metrics;
            m.queue_time_seconds
                .observe((now - l.submitted).as_secs_f64());
            m.prompt_tokens_total.inc_by(l.prompt_tokens as u64);
            let t0 = Instant::now();
            let slots = self.backend.prefix_slots() + l.prompt_tokens + l.max_tokens;
            let res = self.backend.add_sequence(id, l.ecg.as_deref(), slots);
            if l.ecg.take().is_some() {
                m.ecg_encode_seconds.observe(t0.elapsed().as_secs_f64());
            }
            match res {
                Ok(()) => l.in_backend = true,
                Err(e) => self.fail(id, &e),
            }
        }
    }

    /// Runs the model on the plan's rows and emits the sampled tokens; returns the time the
    /// backend's forward took (the rest of a step is sampling and emitting).
    fn step(&mut self, plan: &StepPlan) -> std::time::Duration {
        let entries: Vec<_> = plan
            .entries
            .iter()
            .filter(|e| self.live.get(&e.id).is_some_and(|l| l.in_backend))
            .collect();
        if entries.is_empty() {
            return std::time::Duration::ZERO;
        }
        let batch: Vec<(u64, &[u32])> = entries
            .iter()
            .map(|e| (e.id, &self.sched.tokens(e.id)[e.range.clone()]))
            .collect();
        self.ctx
            .metrics
            .batch_size_sequences
            .observe(batch.len() as f64);
        let mut logits = std::mem::take(&mut self.logits);
        let t0 = Instant::now();
        let result = self.backend.forward(&batch, &mut logits);
        let forward = t0.elapsed();
        drop(batch);
        let vocab = self.backend.vocab_size();
        match result {
            Ok(()) if logits.len() == entries.len() * vocab => {
                for (entry, row) in entries.into_iter().zip(logits.chunks_exact_mut(vocab)) {
                    if entry.sample {
                        self.emit(entry.id, row);
                    }
                }
            }
            Ok(()) => {
                let e = BackendError::Model(format!(
                    "{} logits for {} entries of {vocab}",
                    logits.len(),
                    entries.len()
                ));
                entries.iter().for_each(|en| self.fail(en.id, &e));
            }
            Err(e) => entries.iter().for_each(|en| self.fail(en.id, &e)),
        }
        self.logits = logits;
        forward
    }

    /// Sample the next token of `id`, send it, and finish the sequence when it is done.
    fn emit(&mut self, id: u64, logits: &mut [f32]) {
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        let token = l.sampler.sample(logits, self.sched.tokens(id));
        let now = Instant::now();
        let m = &self.ctx.metrics;
        m.generated_tokens_total.inc();
        match l.last_token {
            Some(prev) => m
                .inter_token_latency_seconds
                .observe((now - prev).as_secs_f64()),
            None => {
                l.first_token = Some(now);
                m.time_to_first_token_seconds
                    .observe((now - l.submitted).as_secs_f64());
            }
        }
        l.last_token = Some(now);
        l.generated = self.sched.append(id, token);
        if self.eos.contains(&token) {
            return self.finish(id, FinishReason::Stop);
        }
        let delta = l.detok.push(token);
        let (text, stopped) = match l.stop.push(&delta) {
            StopCheck::Continue(t) => (t, false),
            StopCheck::Stopped(t) => (t, true),
        };
        self.outbox.push(&l.tx, Event::Token { id: token, text });
        if stopped {
            self.finish(id, FinishReason::Stop);
        } else if l.generated >= l.max_tokens {
            self.finish(id, FinishReason::Length);
        }
    }

    /// Send the final event and release everything the sequence holds.
    fn finish(&mut self, id: u64, mut reason: FinishReason) {
        let Some(mut l) = self.remove(id) else { return };
        let flushed = l.detok.flush();
        let tail = match l.stop.push(&flushed) {
            StopCheck::Stopped(t) => {
                reason = FinishReason::Stop;
                t
            }
            StopCheck::Continue(t) => t + &l.stop.flush(),
        };
        let now = Instant::now();
        let total = now - l.submitted;
        self.ctx
            .metrics
            .e2e_latency_seconds
            .observe(total.as_secs_f64());
        let timings = Timings {
            queue: l.admitted.unwrap_or(now) - l.submitted,
            ttft: l.first_token.map(|t| t - l.submitted),
            total,
        };
        let usage = Usage {
            prompt_tokens: l.prompt_tokens,
            completion_tokens: l.generated,
        };
        self.outbox.push(
            &l.tx,
            Event::Finished(Finish {
                reason,
                tail,
                usage,
                timings,
            }),
        );
    }

    fn fail(&mut self, id: u64, err: &BackendError) {
        tracing::warn!(id, "sequence failed: {err}");
        if let Some(l) = self.remove(id) {
            self.outbox.push(&l.tx, Event::Failed(err.to_string()));
        }
    }

    /// Forget a sequence everywhere (scheduler, KV pool, backend).
    fn remove(&mut self, id: u64) -> Option<Live> {
        if self.sched.remove(id) == Some(true) {
            self.ctx.shared.queued.fetch_sub(1, Ordering::SeqCst);
        }
        let l = self.live.remove(&id)?;
        if l.in_backend {
            self.backend.remove_sequence(id);
        }
        // Before the final event goes out, so observers never see a stale count.
        self.publish_gauges();
        Some(l)
    }

    fn publish_gauges(&self) {
        let m = &self.ctx.metrics;
        m.running_sequences.set(self.sched.running_len() as i64);
        m.waiting_sequences.set(self.sched.waiting_len() as i64);
        m.kv_used_blocks.set(self.sched.pool().used_blocks() as i64);
        m.kv_usage_ratio.set(self.sched.pool().usage_ratio());
    }
}
