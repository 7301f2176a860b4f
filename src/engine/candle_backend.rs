//! The real backend: the candle MEIT model, with one KV cache per sequence. Lives on the engine
//! thread only.
use std::collections::HashMap;

use crate::model::bundle::MeitModel;
use crate::model::{SeqCache, SeqInput};
use crate::signal::TARGET_LEN;

use super::backend::{Backend, BackendError};

/// Most cache slots a sequence starts with; caches double when they fill (the scheduler's block
/// pool bounds the total). Fewer when the request cannot fill them (a 49-token prompt with 64
/// new tokens needs 114 slots, half the bytes to zero and to hold).
const INITIAL_CACHE_SLOTS: usize = 256;

/// Finished sequences' caches kept for new ones, at least this many (and as many as were
/// preallocated): a new cache's buffers are fresh pages the kernel zeroes on first touch (about
/// 3 MB per sequence), which made admitting a wave of 16 requests cost tens of milliseconds.
const SPARE_CACHES: usize = 32;

pub struct CandleBackend {
    model: MeitModel,
    caches: HashMap<u64, SeqCache>,
    /// Emptied caches of finished sequences (and preallocated ones), reused before allocating.
    spare: Vec<SeqCache>,
    /// Most spare caches kept.
    spare_max: usize,
}

impl CandleBackend {
    pub fn new(model: MeitModel) -> Self {
        CandleBackend {
            model,
            caches: HashMap::new(),
            spare: Vec::new(),
            spare_max: SPARE_CACHES,
        }
    }

    /// A cache with room for `slots`: the smallest spare one that fits, else a new one.
    fn cache_for(&mut self, slots: usize) -> Result<SeqCache, BackendError> {
        let fits = self
            .spare
            .iter()
            .enumerate()
            .filter(|(_, c)| c.capacity() >= slots)
            .min_by_key(|(_, c)| c.capacity())
            .map(|(i, _)| i);
        match fits {
            Some(i) => Ok(self.spare.swap_remove(i)),
            None => self.model.llm.new_cache(slots, true).map_err(model_err),
        }
    }

    pub fn model(&self) -> &MeitModel {
        &self.model
    }
}

fn model_err(e: impl std::fmt::Display) -> BackendError {
    BackendError::Model(e.to_string())
}

impl Backend for CandleBackend {
    fn vocab_size(&self) -> usize {
        self.model.llm.config().vocab_size
    }

    fn prefix_slots(&self) -> usize {
        self.model.encoder.config().prefix_slots
    }

    fn add_sequence(
        &mut self,
        id: u64,
        ecg: Option<&[f32]>,
        slots: usize,
    ) -> Result<(), BackendError> {
        let mut cache = self.cache_for(slots.clamp(1, INITIAL_CACHE_SLOTS))?;
        if let Some(data) = ecg {
            if data.len() != 12 * TARGET_LEN {
                return Err(BackendError::InvalidInput(format!(
                    "ECG must have 12 x {TARGET_LEN} samples, got {}",
                    data.len()
                )));
            }
            let prefix = self.model.encode_ecg(data, TARGET_LEN).map_err(model_err)?;
            self.model
                .llm
                .write_prefix(&prefix, &mut cache)
                .map_err(model_err)?;
        }
        self.caches.insert(id, cache);
        Ok(())
    }

    fn forward(
        &mut self,
        batch: &[(u64, &[u32])],
        logits: &mut Vec<f32>,
    ) -> Result<(), BackendError> {
        // Take the caches out for the step (each sequence appears at most once per step).
        let mut taken = Vec::with_capacity(batch.len());
        for (id, _) in batch {
            match self.caches.remove(id) {
                Some(c) => taken.push((*id, c)),
                None => {
                    for (id, c) in taken {
                        self.caches.insert(id, c);
                    }
                    return Err(BackendError::UnknownSequence(*id));
                }
            }
        }
        let result = {
            let mut inputs: Vec<SeqInput> = taken
                .iter_mut()
                .zip(batch)
                .map(|((_, cache), (_, tokens))| SeqInput { tokens, cache })
                .collect();
            self.model.llm.forward_into(&mut inputs, logits)
        };
        for (id, c) in taken {
            self.caches.insert(id, c);
        }
        result.map_err(model_err)
    }

    fn remove_sequence(&mut self, id: u64) {
        if let Some(mut cache) = self.caches.remove(&id) {
            if self.spare.len() < self.spare_max {
                cache.reset();
                self.spare.push(cache);
            }
        }
    }

    /// Caches of `slots` (at most the first allocation's size) for `sequences` sequences, every
    /// page written now: fresh pages cost 10-25 ms per sequence when a burst of 16 requests was
    /// admitted at once (page faults and zeroing, huge pages included), on the engine thread.
    fn preallocate(&mut self, sequences: usize, slots: usize) -> Result<(), BackendError> {
        let slots = slots.clamp(1, INITIAL_CACHE_SLOTS);
        self.spare_max = self.spare_max.max(sequences);
        while self.spare.len() < sequences {
            let mut cache = self.model.llm.new_cache(slots, true).map_err(model_err)?;
            cache.prefault();
            self.spare.push(cache);
        }
        Ok(())
    }
}
