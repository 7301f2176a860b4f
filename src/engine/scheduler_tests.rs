//! Seeded randomised invariant test of the scheduler and KV pool, plus small cases.

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn sched(max_running: usize, budget: usize, blocks: usize) -> Scheduler {
    let cfg = SchedulerConfig {
        max_running,
        max_batch_tokens: budget,
        prefix_slots: 1,
    };
    Scheduler::new(cfg, BlockPool::new(blocks, 4))
}

#[test]
fn chunked_prefill_then_decode() {
    let mut s = sched(2, 4, 16);
    s.enqueue(1, vec![1; 6], 3).expect("enqueue");
    let p = s.schedule();
    assert_eq!(p.admitted, vec![1]);
    assert_eq!(
        p.entries,
        vec![PlanEntry {
            id: 1,
            range: 0..4,
            sample: false
        }]
    );
    let p = s.schedule();
    assert_eq!(
        p.entries,
        vec![PlanEntry {
            id: 1,
            range: 4..6,
            sample: true
        }]
    );
    assert_eq!(s.append(1, 9), 1);
    let p = s.schedule();
    assert_eq!(
        p.entries,
        vec![PlanEntry {
            id: 1,
            range: 6..7,
            sample: true
        }]
    );
    assert_eq!(s.pool().used_blocks(), 3); // 1 + 6 + 3 = 10 slots -> 3 blocks of 4
    assert_eq!(s.remove(1), Some(false));
    assert_eq!(s.pool().used_blocks(), 0);
}

#[test]
fn never_fitting_sequence_is_refused_and_short_pool_makes_head_wait() {
    let mut s = sched(4, 64, 4);
    assert_eq!(
        s.enqueue(1, vec![1; 14], 4),
        Err(SchedError::NeverFits {
            needed: 19,
            capacity: 16
        })
    );
    s.enqueue(2, vec![1; 6], 4).expect("fits"); // 11 slots -> 3 blocks
    s.enqueue(3, vec![1; 2], 4).expect("fits"); // 7 slots -> 2 blocks: must wait
    assert_eq!(s.schedule().admitted, vec![2]);
    assert_eq!(s.waiting_len(), 1);
    s.remove(2);
    assert_eq!(s.schedule().admitted, vec![3]);
}

#[test]
fn randomised_scheduler_and_kv_invariants() {
    for seed in 0..300u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let max_running = rng.random_range(1..6);
        let budget = rng.random_range(max_running..max_running + 24);
        let blocks = rng.random_range(4..40);
        let mut s = sched(max_running, budget, blocks);
        let mut next_id = 0u64;
        let mut live = std::collections::HashSet::new();
        let mut steps = 0;
        let total = rng.random_range(1..40);
        while next_id < total || !s.is_idle() {
            steps += 1;
            assert!(steps < 10_000, "seed {seed}: no progress");
            // Random arrivals.
            if next_id < total && rng.random_bool(0.4) {
                next_id += 1;
                let prompt = vec![7u32; rng.random_range(1..30)];
                match s.enqueue(next_id, prompt, rng.random_range(1..20)) {
                    Ok(()) => {
                        live.insert(next_id);
                    }
                    Err(SchedError::NeverFits { needed, capacity }) => assert!(needed > capacity),
                    Err(e) => panic!("seed {seed}: {e}"),
                }
            }
            // Random cancellations (waiting or running).
            if !live.is_empty() && rng.random_bool(0.05) {
                let ids: Vec<u64> = live.iter().copied().collect();
                let id = ids[rng.random_range(0..ids.len())];
                assert!(s.remove(id).is_some());
                live.remove(&id);
            }
            let plan = s.schedule();
            let fed: usize = plan.entries.iter().map(|e| e.range.len()).sum();
            assert!(fed <= budget, "seed {seed}: budget exceeded");
            assert!(s.running_len() <= max_running);
            assert!(
                s.running_len() == 0 || !plan.entries.is_empty(),
                "seed {seed}: stall"
            );
            s.pool()
                .check_invariants()
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let reserved: usize = s
                .running
                .iter()
                .map(|id| {
                    let st = &s.seqs[id];
                    s.pool().blocks_for(1 + st.prompt_len + st.max_tokens)
                })
                .sum();
            assert_eq!(reserved, s.pool().used_blocks(), "seed {seed}");
            for e in plan.entries.iter().filter(|e| e.sample) {
                let max = s.seqs[&e.id].max_tokens;
                let n = s.append(e.id, 3);
                if n >= max || rng.random_bool(0.1) {
                    s.remove(e.id);
                    live.remove(&e.id);
                }
            }
        }
        assert!(live.is_empty(), "seed {seed}: unfinished sequences");
        assert_eq!(s.pool().free_blocks(), blocks, "seed {seed}: pool not free");
        s.pool().check_invariants().expect("final invariants");
    }
}
