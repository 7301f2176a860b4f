//! Linear learning-rate schedule with warm-up, as HF `get_linear_schedule_with_warmup`:
//! the optimizer step with index `s` (from 0) uses `lr * s / w` during warm-up (`s < w`), then
//! `lr * (total - s) / (total - w)`, where `w = ceil(ratio * total)`.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearSchedule {
    pub peak: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl LinearSchedule {
    pub fn new(peak: f64, warmup_ratio: f64, total_steps: usize) -> Self {
        LinearSchedule {
            peak,
            warmup_steps: (warmup_ratio * total_steps as f64).ceil() as usize,
            total_steps,
        }
    }

    /// Learning rate of optimizer step `s` (0-based).
    pub fn lr(&self, s: usize) -> f64 {
        if s < self.warmup_steps {
            return self.peak * s as f64 / self.warmup_steps.max(1) as f64;
        }
        let rest = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        self.peak * (self.total_steps.saturating_sub(s) as f64 / rest as f64).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_zero() {
        let s = LinearSchedule::new(1e-3, 0.03, 100);
        assert_eq!(s.warmup_steps, 3);
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(1) - 1e-3 / 3.0).abs() < 1e-12);
        assert!((s.lr(3) - 1e-3).abs() < 1e-12);
        assert!((s.lr(50) - 1e-3 * 50.0 / 97.0).abs() < 1e-12);
        assert_eq!(s.lr(100), 0.0);
        for i in 3..100 {
            assert!(s.lr(i + 1) <= s.lr(i));
        }
    }
}
