//! The inference engine: ONE std::thread owns the [`Backend`]; async handlers talk to it through
//! an [`EngineHandle`] (commands in, model-level [`Event`]s out on a per-sequence channel).
//!
//! `submit` answers at once: it refuses when not ready, shutting down, when the sequence can
//! never fit the KV pool, or when the bounded waiting queue is full. Dropping the
//! [`EventStream`] cancels the sequence; the engine frees its KV blocks before its next step.

pub mod backend;
pub mod candle_backend;
pub mod detok;
pub mod events;
pub mod kv;
pub mod mock;
mod outbox;
pub mod sampler;
pub mod scheduler;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokenizers::Tokenizer;
use tokio::sync::mpsc as tmpsc;

pub use backend::{Backend, BackendError};
pub use events::{Event, Finish, FinishReason, Timings, Usage};
pub use sampler::SamplingParams;

use crate::telemetry::Metrics;

/// Engine knobs (built from `settings::EngineSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    pub max_running: usize,
    pub max_waiting: usize,
    pub max_batch_tokens: usize,
    pub kv_block_size: usize,
    pub kv_total_blocks: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_running: 16,
            max_waiting: 64,
            max_batch_tokens: 512,
            kv_block_size: 16,
            kv_total_blocks: 2048,
        }
    }
}

/// A validated generation request (built by `api`).
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub prompt: Vec<u32>,
    /// Preprocessed 12x5000 lead-major ECG, or None for text-only chat.
    pub ecg: Option<Vec<f32>>,
    pub sampling: SamplingParams,
    pub max_tokens: usize,
    pub stop: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the model is not loaded yet")]
    NotReady,
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("too many requests: the waiting queue is full ({max_waiting} waiting)")]
    QueueFull { max_waiting: usize },
    #[error("prompt_tokens + max_tokens + ECG prefix need {needed} KV slots, the server holds at most {capacity}, got prompt_tokens={prompt_tokens}, max_tokens={max_tokens}")]
    NeverFits {
        needed: usize,
        capacity: usize,
        prompt_tokens: usize,
        max_tokens: usize,
    },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the engine has stopped")]
    EngineGone,
}

impl SubmitError {
    /// Stable label (JSON `code` and metrics `reason`).
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::NotReady => "not_ready",
            SubmitError::ShuttingDown => "shutting_down",
            SubmitError::QueueFull { .. } => "queue_full",
            SubmitError::NeverFits { .. } => "context_length_exceeded",
            SubmitError::EmptyPrompt => "empty_prompt",
            SubmitError::EngineGone => "engine_gone",
        }
    }
}

/// State shared between handles and the engine thread.
#[derive(Default)]
struct Shared {
    ready: AtomicBool,
    shutting_down: AtomicBool,
    /// Submitted but not yet admitted (queued in the channel or the scheduler).
    queued: AtomicUsize,
    prefix_slots: AtomicUsize,
    next_id: AtomicU64,
}

enum Command {
    Submit(Box<Submission>),
    Shutdown { deadline: Instant },
}

struct Submission {
    id: u64,
    req: GenerateRequest,
    tx: tmpsc::UnboundedSender<Event>,
    submitted: Instant,
}

/// Receiver of one sequence's events. Dropping it cancels the sequence.
pub struct EventStream {
    pub id: u64,
    rx: tmpsc::UnboundedReceiver<Event>,
}

impl EventStream {
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    pub fn into_stream(self) -> tokio_stream::wrappers::UnboundedReceiverStream<Event> {
        tokio_stream::wrappers::UnboundedReceiverStream::new(self.rx)
    }
}

#[derive(Clone)]
pub struct EngineHandle {
    cmds: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    tokenizer: Arc<Tokenizer>,
    cfg: EngineConfig,
}

/// Start the engine thread with an already loaded backend (warmed up before ready).
pub fn spawn<B: Backend>(
    backend: B,
    tokenizer: Arc<Tokenizer>,
    cfg: EngineConfig,
    metrics: Arc<Metrics>,
) -> EngineHandle {
    spawn_with(move || Ok(backend), tokenizer, cfg, metrics)
}

/// Start the engine thread; `load` runs on it (so `/ready` stays 503 while the model loads).
pub fn spawn_with<B, F>(
    load: F,
    tokenizer: Arc<Tokenizer>,
    cfg: EngineConfig,
    metrics: Arc<Metrics>,
) -> EngineHandle
where
    B: Backend,
    F: FnOnce() -> Result<B, BackendError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(Shared::default());
    shared.next_id.store(1, Ordering::Relaxed);
    let ctx = worker::Context {
        cmds: rx,
        shared: shared.clone(),
        tokenizer: tokenizer.clone(),
        cfg,
        metrics,
    };
    let spawned = std::thread::Builder::new()
        .name("meit-engine".into())
        .spawn(move || worker::run(load, ctx));
    if let Err(e) = spawned {
        tracing::error!("cannot start the engine thread: {e}");
    }
    EngineHandle {
        cmds: tx,
        shared,
        tokenizer,
        cfg,
    }
}

impl EngineHandle {
    /// Queue a request; answers at once (never waits for capacity).
    pub fn submit(&self, req: GenerateRequest) -> Result<EventStream, SubmitError> {
        if self.shared.shutting_down.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        if !self.is_ready() {
            return Err(SubmitError::NotReady);
        }
        if req.prompt.is_empty() {
            return Err(SubmitError::EmptyPrompt);
        }
        let capacity = self.kv_capacity_tokens();
        let needed =
            self.shared.prefix_slots.load(Ordering::SeqCst) + req.prompt.len() + req.max_tokens;
        if needed.div_ceil(self.cfg.kv_block_size.max(1)) > self.cfg.kv_total_blocks {
            return Err(SubmitError::NeverFits {
                needed,
                capacity,
                prompt_tokens: req.prompt.len(),
                max_tokens: req.max_tokens,
            });
        }
        let max_waiting = self.cfg.max_waiting;
        self.shared
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                (q < max_waiting).then_some(q + 1)
            })
            .map_err(|_| SubmitError::QueueFull { max_waiting })?;
        let (tx, rx) = tmpsc::unbounded_channel();
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let sub = Submission {
            id,
            req,
            tx,
            submitted: Instant::now(),
        };
        if self.cmds.send(Command::Submit(Box::new(sub))).is_err() {
            self.shared.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(SubmitError::EngineGone);
        }
        Ok(EventStream { id, rx })
    }

    /// True once the backend is loaded and warmed up (and until shutdown begins).
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::SeqCst)
            && !self.shared.shutting_down.load(Ordering::SeqCst)
    }

    /// Stop admitting requests; running and queued sequences continue until `grace` has passed,
    /// then end with [`FinishReason::Shutdown`].
    pub fn begin_shutdown(&self, grace: Duration) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        let _ = self.cmds.send(Command::Shutdown {
            deadline: Instant::now() + grace,
        });
    }

    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.tokenizer
    }

    pub fn config(&self) -> EngineConfig {
        self.cfg
    }

    /// Token slots of the whole KV pool.
    pub fn kv_capacity_tokens(&self) -> usize {
        self.cfg.kv_total_blocks * self.cfg.kv_block_size
    }
}
