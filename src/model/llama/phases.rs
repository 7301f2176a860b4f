//! Where a forward pass spends its time, phase by phase, for the `debug` log of
//! `meit::model::llama::phases` (`RUST_LOG=meit::model::llama::phases=debug`). When that level
//! is off, the clock reads no time at all.
use std::time::Instant;

/// The phases of a forward pass, in the order of the fields it logs.
#[derive(Clone, Copy)]
pub(super) enum Phase {
    /// The residual add and norm before attention, and the fused q/k/v projection (written
    /// to q, k and v apart).
    Qkv,
    /// RoPE, writing the new keys and values into the caches, attention.
    Attention,
    /// The output projection.
    Out,
    /// The residual add and norm before the MLP, and the fused gate/up projection.
    GateUp,
    /// SiLU(gate) * up and the down projection.
    Down,
    /// Final norm and LM head on each sequence's last row.
    LmHead,
    /// Everything else: embeddings, the last residual add.
    Other,
}

/// Accumulates milliseconds per [`Phase`] between laps; inert unless debug logging is on for
/// this module.
pub(super) struct PhaseClock {
    last: Option<Instant>,
    ms: [f64; 7],
}

impl PhaseClock {
    pub(super) fn start() -> Self {
        let on = tracing::enabled!(tracing::Level::DEBUG);
        PhaseClock {
            last: on.then(Instant::now),
            ms: [0.0; 7],
        }
    }

    /// Charges the time since the previous lap to `phase`.
    pub(super) fn lap(&mut self, phase: Phase) {
        if let Some(last) = self.last.as_mut() {
            let now = Instant::now();
            self.ms[phase as usize] += (now - *last).as_secs_f64() * 1e3;
            *last = now;
        }
    }

    /// Logs the totals for a pass over `rows` rows of `sequences` sequences.
    pub(super) fn log(&self, rows: usize, sequences: usize) {
        if self.last.is_none() {
            return;
        }
        let [qkv, attention, out, gate_up, down, lm_head, other] = self.ms;
        tracing::debug!(
            rows,
            sequences,
            qkv_ms = qkv,
            attention_ms = attention,
            out_ms = out,
            gate_up_ms = gate_up,
            down_ms = down,
            lm_head_ms = lm_head,
            other_ms = other,
            "forward phases"
        );
    }
}
