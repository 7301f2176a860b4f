//! Continuous-batching scheduler (pure bookkeeping, no model, no threads).
//!
//! Each step: admit waiting sequences in FIFO order while the running cap and the KV pool allow
//! (a sequence reserves blocks for ECG prefix + prompt + max_tokens at admission; when blocks are
//! short the queue head waits), then fill the per-step token budget with one decode token per
//! decoding sequence first, then prompt chunks (chunked prefill) of prefilling sequences.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use super::kv::BlockPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Most sequences admitted (holding KV) at once.
    pub max_running: usize,
    /// Most tokens fed to the model in one step (decode tokens + prefill chunks).
    pub max_batch_tokens: usize,
    /// ECG prefix slots each sequence occupies in the KV cache.
    pub prefix_slots: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    #[error("sequence needs {needed} KV token slots, the pool holds {capacity}")]
    NeverFits { needed: usize, capacity: usize },
    #[error("sequence {0} already exists")]
    Duplicate(u64),
    #[error("empty prompt")]
    EmptyPrompt,
}

/// One entry of a step: feed `tokens(id)[range]`; `sample` when its last token is the sequence's
/// newest token (the logits then give the next token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEntry {
    pub id: u64,
    pub range: Range<usize>,
    pub sample: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StepPlan {
    /// Sequences admitted this step (their backend cache must be created before the forward).
    pub admitted: Vec<u64>,
    pub entries: Vec<PlanEntry>,
}

#[derive(Debug)]
struct SeqState {
    tokens: Vec<u32>,
    prompt_len: usize,
    max_tokens: usize,
    fed: usize,
    running: bool,
}

#[derive(Debug)]
pub struct Scheduler {
    cfg: SchedulerConfig,
    pool: BlockPool,
    waiting: VecDeque<u64>,
    running: Vec<u64>,
    seqs: HashMap<u64, SeqState>,
}

impl Scheduler {
    pub fn new(cfg: SchedulerConfig, pool: BlockPool) -> Self {
        Self {
            cfg,
            pool,
            waiting: VecDeque::new(),
            running: Vec::new(),
            seqs: HashMap::new(),
        }
    }

    /// KV token slots a sequence reserves.
    pub fn kv_tokens(&self, prompt_len: usize, max_tokens: usize) -> usize {
        self.cfg.prefix_slots + prompt_len + max_tokens
    }

    pub fn enqueue(
        &mut self,
        id: u64,
        prompt: Vec<u32>,
        max_tokens: usize,
    ) -> Result<(), SchedError> {
        if prompt.is_empty() {
            return Err(SchedError::EmptyPrompt);
        }
        if self.seqs.contains_key(&id) {
            return Err(SchedError::Duplicate(id));
        }
        let needed = self.kv_tokens(prompt.len(), max_tokens);
        if self.pool.blocks_for(needed) > self.pool.total_blocks() {
            return Err(SchedError::NeverFits {
                needed,
                capacity: self.pool.capacity_tokens(),
            });
        }
        let prompt_len = prompt.len();
        self.seqs.insert(
            id,
            SeqState {
                tokens: prompt,
                prompt_len,
                max_tokens,
                fed: 0,
                running: false,
            },
        );
        self.waiting.push_back(id);
        Ok(())
    }

    pub fn schedule(&mut self) -> StepPlan {
        let mut plan = StepPlan::default();
        while self.running.len() < self.cfg.max_running {
            let Some(&id) = self.waiting.front() else {
                break;
            };
            let Some(s) = self.seqs.get_mut(&id) else {
                self.waiting.pop_front();
                continue;
            };
            let needed = self.cfg.prefix_slots + s.prompt_len + s.max_tokens;
            if self.pool.allocate(id, needed).is_err() {
                break;
            }
            s.running = true;
            self.waiting.pop_front();
            self.running.push(id);
            plan.admitted.push(id);
        }
        let mut budget = self.cfg.max_batch_tokens;
        for decoding in [true, false] {
            for id in &self.running {
                if budget == 0 {
                    break;
                }
                let Some(s) = self.seqs.get_mut(id) else {
                    continue;
                };
                let pending = s.tokens.len() - s.fed;
                if pending == 0 || (s.fed >= s.prompt_len) != decoding {
                    continue;
                }
                let take = pending.min(budget);
                budget -= take;
                let range = s.fed..s.fed + take;
                s.fed += take;
                plan.entries.push(PlanEntry {
                    id: *id,
                    range,
                    sample: s.fed == s.tokens.len(),
                });
            }
        }
        plan
    }

    /// All tokens of a sequence (prompt then generated).
    pub fn tokens(&self, id: u64) -> &[u32] {
        self.seqs
            .get(&id)
            .map(|s| s.tokens.as_slice())
            .unwrap_or(&[])
    }

    /// Record a sampled token; returns the number of generated tokens so far.
    pub fn append(&mut self, id: u64, token: u32) -> usize {
        match self.seqs.get_mut(&id) {
            Some(s) => {
                s.tokens.push(token);
                s.tokens.len() - s.prompt_len
            }
            None => 0,
        }
    }

    /// Remove a sequence (finished or cancelled) and free its blocks. Returns whether it was
    /// still waiting (never admitted), or None if unknown.
    pub fn remove(&mut self, id: u64) -> Option<bool> {
        let s = self.seqs.remove(&id)?;
        if s.running {
            self.running.retain(|r| *r != id);
            self.pool.free(id);
        } else {
            self.waiting.retain(|w| *w != id);
        }
        Some(!s.running)
    }

    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.seqs.keys().copied()
    }

    pub fn running_len(&self) -> usize {
        self.running.len()
    }

    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_idle(&self) -> bool {
        self.seqs.is_empty()
    }

    pub fn pool(&self) -> &BlockPool {
        &self.pool
    }

    pub fn config(&self) -> SchedulerConfig {
        self.cfg
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
