//! KV block pool: the KV capacity is `total_blocks` blocks of `block_size` token slots. A sequence
//! owns the blocks for its worst case (ECG prefix + prompt + max_tokens) from admission to finish,
//! so running sequences never need preemption. A block is owned by at most one sequence.

use std::collections::HashMap;

pub type BlockId = u32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("sequence {0} already owns blocks")]
    AlreadyAllocated(u64),
    #[error("{needed} blocks needed, {free} free")]
    OutOfBlocks { needed: usize, free: usize },
}

#[derive(Debug)]
pub struct BlockPool {
    block_size: usize,
    total: usize,
    free: Vec<BlockId>,
    owned: HashMap<u64, Vec<BlockId>>,
}

impl BlockPool {
    pub fn new(total_blocks: usize, block_size: usize) -> Self {
        let free = (0..total_blocks as BlockId).rev().collect();
        Self {
            block_size: block_size.max(1),
            total: total_blocks,
            free,
            owned: HashMap::new(),
        }
    }

    /// Blocks needed to hold `tokens` token slots.
    pub fn blocks_for(&self, tokens: usize) -> usize {
        tokens.div_ceil(self.block_size)
    }

    /// Token slots of the whole pool.
    pub fn capacity_tokens(&self) -> usize {
        self.total * self.block_size
    }

    pub fn total_blocks(&self) -> usize {
        self.total
    }

    pub fn free_blocks(&self) -> usize {
        self.free.len()
    }

    pub fn used_blocks(&self) -> usize {
        self.total - self.free.len()
    }

    pub fn usage_ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.used_blocks() as f64 / self.total as f64
        }
    }

    pub fn can_allocate(&self, tokens: usize) -> bool {
        self.blocks_for(tokens) <= self.free.len()
    }

    /// Give sequence `seq` enough blocks for `tokens` slots.
    pub fn allocate(&mut self, seq: u64, tokens: usize) -> Result<&[BlockId], KvError> {
        if self.owned.contains_key(&seq) {
            return Err(KvError::AlreadyAllocated(seq));
        }
        let needed = self.blocks_for(tokens);
        if needed > self.free.len() {
            return Err(KvError::OutOfBlocks {
                needed,
                free: self.free.len(),
            });
        }
        let at = self.free.len() - needed;
        let blocks = self.free.split_off(at);
        Ok(self.owned.entry(seq).or_insert(blocks))
    }

    /// Return all blocks of `seq` to the pool (no-op if it owns none). Returns how many.
    pub fn free(&mut self, seq: u64) -> usize {
        match self.owned.remove(&seq) {
            Some(blocks) => {
                let n = blocks.len();
                self.free.extend(blocks);
                n
            }
            None => 0,
        }
    }

    pub fn blocks_of(&self, seq: u64) -> Option<&[BlockId]> {
        self.owned.get(&seq).map(Vec::as_slice)
    }

    /// Check the pool's invariants: every block is either free or owned by exactly one sequence.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = vec![false; self.total];
        let all = self.free.iter().map(|b| (None, b)).chain(
            self.owned
                .iter()
                .flat_map(|(s, v)| v.iter().map(move |b| (Some(s), b))),
        );
        for (owner, &b) in all {
            let slot = seen
                .get_mut(b as usize)
                .ok_or_else(|| format!("block {b} out of range"))?;
            if *slot {
                return Err(format!("block {b} owned twice (last owner {owner:?})"));
            }
            *slot = true;
        }
        if seen.iter().any(|s| !s) {
            return Err("a block is neither free nor owned".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_and_free() {
        let mut p = BlockPool::new(10, 16);
        assert_eq!(p.blocks_for(17), 2);
        assert_eq!(p.allocate(1, 33).map(|b| b.len()), Ok(3));
        assert_eq!(p.allocate(1, 1), Err(KvError::AlreadyAllocated(1)));
        assert_eq!(
            p.allocate(2, 16 * 8),
            Err(KvError::OutOfBlocks { needed: 8, free: 7 })
        );
        assert_eq!(p.used_blocks(), 3);
        p.check_invariants().expect("invariants");
        assert_eq!(p.free(1), 3);
        assert_eq!(p.free(1), 0);
        assert_eq!(p.free_blocks(), 10);
        p.check_invariants().expect("invariants");
    }
}
