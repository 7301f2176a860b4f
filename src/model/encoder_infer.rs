//! The ECG encoder for inference, on slices: the same function as [`EcgEncoder::forward_t`] in
//! eval mode, without candle's per-op allocations or its rayon-parallel im2col.
//!
//! Signals are kept time-major (`T x C`) with `kernel / 2` zero rows above and below, so the
//! im2col matrix of a conv layer is the buffer itself read with a row stride of `C` (row `t` is
//! the `kernel * C` values from row `t`): each layer is one f32 GEMM (the `gemm` crate, one
//! thread per chunk of output rows on candle's worker pool) followed by one pass that applies
//! BatchNorm's running statistics, ReLU and the average pooling and writes the next layer's
//! padded input. Then the mean over time, the projector and the L2 normalisation.
use super::encoder::EcgEncoder;
use super::error::{ModelError, Result};
use super::par::{run_split, OutPtr};

/// One conv block with BatchNorm (eval mode) folded into a per-channel scale and shift.
struct ConvLayer {
    c_in: usize,
    c_out: usize,
    pool: usize,
    /// `(kernel * c_in, c_out)` row-major: row `j * c_in + c` holds `w[:, c, j]`.
    w: Vec<f32>,
    scale: Vec<f32>,
    shift: Vec<f32>,
}

/// A dense layer, `(out, in)` row-major as stored.
struct Dense {
    w: Vec<f32>,
    b: Vec<f32>,
    n_in: usize,
}

impl Dense {
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        self.w
            .chunks_exact(self.n_in)
            .zip(&self.b)
            .map(|(row, b)| super::vecops::dot(row, x) + b)
            .collect()
    }
}

/// The inference encoder (CPU).
pub struct FrozenEncoder {
    in_leads: usize,
    kernel: usize,
    layers: Vec<ConvLayer>,
    fc1: Dense,
    fc2: Dense,
    prefix_slots: usize,
    out_dim: usize,
}

fn values(t: &candle_core::Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

impl FrozenEncoder {
    /// Copies the weights of `enc` (BatchNorm running statistics folded in).
    pub fn from_encoder(enc: &EcgEncoder) -> Result<Self> {
        let cfg = enc.config();
        let k = cfg.kernel;
        let mut layers = Vec::with_capacity(cfg.channels.len());
        let mut c_in = cfg.in_leads;
        for (conv, bn, pool) in enc.blocks() {
            let w = values(conv.weight())?;
            let c_out = w.len() / (c_in * k);
            if c_out * c_in * k != w.len() {
                return Err(ModelError::Input(format!(
                    "encoder conv: {} weights for {c_in} inputs x kernel {k}",
                    w.len()
                )));
            }
            let mut wt = vec![0f32; w.len()];
            for o in 0..c_out {
                for c in 0..c_in {
                    for j in 0..k {
                        wt[(j * c_in + c) * c_out + o] = w[(o * c_in + c) * k + j];
                    }
                }
            }
            let mean = values(bn.running_mean())?;
            let var = values(bn.running_var())?;
            let (gamma, beta) = match bn.weight_and_bias() {
                Some((g, b)) => (values(g)?, values(b)?),
                None => (vec![1.0; c_out], vec![0.0; c_out]),
            };
            let eps = bn.eps() as f32;
            // BatchNorm eval: (x - mean) / sqrt(var + eps) * gamma + beta.
            let scale: Vec<f32> = (0..c_out)
                .map(|o| gamma[o] / (var[o] + eps).sqrt())
                .collect();
            let shift = (0..c_out).map(|o| beta[o] - mean[o] * scale[o]).collect();
            layers.push(ConvLayer {
                c_in,
                c_out,
                pool,
                w: wt,
                scale,
                shift,
            });
            c_in = c_out;
        }
        let dense = |l: &candle_nn::Linear| -> Result<Dense> {
            let (_, n_in) = l.weight().dims2()?;
            let b = match l.bias() {
                Some(b) => values(b)?,
                None => vec![0.0; l.weight().dim(0)?],
            };
            Ok(Dense {
                w: values(l.weight())?,
                b,
                n_in,
            })
        };
        let (fc1, fc2) = enc.projector();
        Ok(FrozenEncoder {
            in_leads: cfg.in_leads,
            kernel: k,
            layers,
            fc1: dense(fc1)?,
            fc2: dense(fc2)?,
            prefix_slots: cfg.prefix_slots,
            out_dim: cfg.out_dim,
        })
    }

    /// `(P * D)` L2-normalised ECG vectors of one preprocessed record (lead-major
    /// `12 * samples`).
    pub fn encode(&self, data: &[f32], samples: usize) -> Result<Vec<f32>> {
        if data.len() != self.in_leads * samples || samples == 0 {
            return Err(ModelError::Input(format!(
                "encoder expects {} leads x {samples} samples, got {} values",
                self.in_leads,
                data.len()
            )));
        }
        let pad = self.kernel / 2;
        // Time-major, padded input of the first layer.
        let mut x = vec![0f32; (samples + 2 * pad) * self.in_leads];
        for (lead, row) in data.chunks_exact(samples).enumerate() {
            for (t, &v) in row.iter().enumerate() {
                x[(t + pad) * self.in_leads + lead] = v;
            }
        }
        let mut t = samples;
        for layer in &self.layers {
            let (next, t2) = self.conv_layer(layer, &x, t);
            (x, t) = (next, t2);
        }
        // Mean over time of the last layer's output.
        let c = self.layers.last().map_or(self.in_leads, |l| l.c_out);
        let mut pooled = vec![0f32; c];
        for row in x[pad * c..(pad + t) * c].chunks_exact(c) {
            for (p, v) in pooled.iter_mut().zip(row) {
                *p += v;
            }
        }
        pooled.iter_mut().for_each(|p| *p /= t.max(1) as f32);
        let h: Vec<f32> = self.fc1.forward(&pooled).into_iter().map(gelu).collect();
        let mut z = self.fc2.forward(&h);
        for slot in z.chunks_exact_mut(self.out_dim).take(self.prefix_slots) {
            let norm = slot.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            slot.iter_mut().for_each(|v| *v /= norm);
        }
        Ok(z)
    }

    /// One conv block over `t` rows of the padded input `x`: returns the next padded input and
    /// its row count (`t / pool`, a shorter tail dropped as in average pooling).
    fn conv_layer(&self, l: &ConvLayer, x: &[f32], t: usize) -> (Vec<f32>, usize) {
        let pad = self.kernel / 2;
        let t2 = t / l.pool;
        let mut next = vec![0f32; (t2 + 2 * pad) * l.c_out];
        let out = OutPtr(next.as_mut_ptr());
        let kk = self.kernel * l.c_in;
        let run = |rows: std::ops::Range<usize>| {
            if rows.is_empty() {
                return;
            }
            let conv_rows = rows.len() * l.pool;
            let mut y = vec![0f32; conv_rows * l.c_out];
            // SAFETY: `x` holds `(t + 2 * pad) * c_in` values and row `r < t` reads `kk` values
            // from `r * c_in`, within it; `y` holds `conv_rows * c_out`; `w` is `(kk, c_out)`.
            unsafe {
                gemm::gemm(
                    conv_rows,
                    l.c_out,
                    kk,
                    y.as_mut_ptr(),
                    1,
                    l.c_out as isize,
                    false,
                    x.as_ptr().add(rows.start * l.pool * l.c_in),
                    1,
                    l.c_in as isize,
                    l.w.as_ptr(),
                    1,
                    l.c_out as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            // SAFETY: rows `pad + rows` of `next` belong to this chunk alone.
            let dst = unsafe { out.slice((pad + rows.start) * l.c_out, rows.len() * l.c_out) };
            let inv = 1.0 / l.pool as f32;
            for (d, win) in dst
                .chunks_exact_mut(l.c_out)
                .zip(y.chunks_exact(l.pool * l.c_out))
            {
                for (p, conv) in win.chunks_exact(l.c_out).enumerate() {
                    for o in 0..l.c_out {
                        let v = (conv[o] * l.scale[o] + l.shift[o]).max(0.0);
                        d[o] = if p == 0 { v } else { d[o] + v };
                    }
                }
                if l.pool > 1 {
                    d.iter_mut().for_each(|v| *v *= inv);
                }
            }
        };
        run_split(t2, t2 * l.pool * kk * l.c_out, run);
        (next, t2)
    }
}

/// The tanh approximation, as candle's `gelu`.
fn gelu(v: f32) -> f32 {
    const SQRT_TWO_OVER_PI: f32 = 0.797_884_6;
    0.5 * v * (1.0 + (SQRT_TWO_OVER_PI * v * (1.0 + 0.044715 * v * v)).tanh())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::encoder::{seeded_init, EncoderConfig};
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};

    #[test]
    fn equals_the_candle_encoder_in_eval_mode() -> Result<()> {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let enc = EcgEncoder::load(vb, &EncoderConfig::default_for(64, 2))?;
        seeded_init(&vm, 11)?;
        // Non-trivial BatchNorm statistics and affine parameters.
        {
            let data = vm
                .data()
                .lock()
                .map_err(|_| ModelError::Input("lock".into()))?;
            for (name, var) in data.iter().filter(|(n, _)| n.contains(".bn.")) {
                let n = var.as_tensor().elem_count();
                let r = Tensor::rand(0f32, 1f32, n, &Device::Cpu)?;
                let v = if name.ends_with("running_var") || name.ends_with("weight") {
                    (r + 0.5)?
                } else {
                    (r - 0.5)?
                };
                var.set(&v)?;
            }
        }
        let fast = FrozenEncoder::from_encoder(&enc)?;
        for samples in [5000, 1000, 300] {
            let x = (Tensor::randn(0f32, 1f32, (1, 12, samples), &Device::Cpu)? * 2.0)?;
            let want = enc.forward_t(&x, false)?.flatten_all()?.to_vec1::<f32>()?;
            let got = fast.encode(&x.flatten_all()?.to_vec1::<f32>()?, samples)?;
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "T={samples}: {a} vs {b}");
            }
        }
        assert!(fast.encode(&[0.0; 12 * 10], 11).is_err());
        Ok(())
    }
}
