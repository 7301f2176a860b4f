//! The Q8_0 paths against the f32 path: int8 copies for steps of at most 8 tokens (decode), and
//! the serving configuration, int8 for every step (prefill too) with q/k/v and gate/up stacked.
//! Their own tolerance: decode-step logits within 2.0 (max abs over the vocabulary; logits are O(30); weights and activations are both quantized to 8 bits),
//! and the same greedy choice at >= 14 of 16 teacher-forced steps of a reference prompt (near-ties
//! may flip).
use candle_core::quantized::GgmlDType;
use candle_core::Device;
use meit::model::llama::argmax;
use meit::model::{Llama, SeqInput};

use super::common::{golden_json, ids, max_abs_diff, smollm};

const Q8_LOGIT_TOL: f32 = 2.0;

/// Greedy decoding; with `forced`, the given tokens are fed instead (teacher forcing), so two
/// models can be compared step by step on the same context.
fn decode_logits(
    llm: &Llama,
    prompt: &[u32],
    steps: usize,
    forced: Option<&[u32]>,
) -> (Vec<u32>, Vec<Vec<f32>>) {
    let mut cache = llm.new_cache(prompt.len() + steps + 1, false).unwrap();
    let mut next = prompt.to_vec();
    let (mut toks, mut logits) = (Vec::new(), Vec::new());
    for step in 0..steps {
        let l = llm
            .forward(&mut [SeqInput {
                tokens: &next,
                cache: &mut cache,
            }])
            .unwrap();
        let id = argmax(&l).unwrap();
        logits.push(l.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        toks.push(id);
        next = vec![forced.map_or(id, |f| f[step])];
    }
    (toks, logits)
}

fn check_q8(max_rows: usize, what: &str) {
    let m = smollm();
    let mut q8 = Llama::load(&m.backbone.weights, &m.backbone.config, &Device::Cpu).unwrap();
    q8.quantize(GgmlDType::Q8_0, max_rows).unwrap();
    let prompt = ids(&golden_json("llm_prompts.json")["prompts"][0]["ids"]);
    let (t32, l32) = decode_logits(&m.llm, &prompt, 16, None);
    let (tq, lq) = decode_logits(&q8, &prompt, 16, Some(&t32));
    assert!(max_abs_diff(&l32[0], &lq[0]) > 0.0);
    let worst = l32
        .iter()
        .zip(&lq)
        .map(|(a, b)| max_abs_diff(a, b))
        .fold(0.0, f32::max);
    eprintln!(
        "Q8_0 {what}: max abs logit diff vs f32 over 16 teacher-forced steps {worst} (tolerance {Q8_LOGIT_TOL})"
    );
    assert!(worst <= Q8_LOGIT_TOL, "Q8_0 {what} drifts {worst}");
    let agree = t32.iter().zip(&tq).filter(|(a, b)| a == b).count();
    eprintln!("Q8_0 {what}: greedy choice agrees with f32 at {agree}/16 steps");
    assert!(
        agree >= 14,
        "{what}: greedy choices agree at only {agree}/16 steps: {t32:?} vs {tq:?}"
    );
}

#[test]
fn q8_0_decode_stays_within_its_tolerance_of_f32() {
    // The prompt (34 tokens) is prefilled by the f32 layers; decode steps run in int8.
    check_q8(8, "decode");
}

#[test]
fn q8_0_every_step_stays_within_its_tolerance_of_f32() {
    // The serving configuration: prefill in int8 too, stacked q/k/v and gate/up.
    check_q8(usize::MAX, "every step");
}
