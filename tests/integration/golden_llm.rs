//! The Llama forward and the MEIT prefix fusion against HF transformers / PyTorch references.
//! Tolerances: last-position logits within 1e-3 (max abs); top-20 ids and greedy continuations
//! identical.
use candle_core::{Device, Tensor};
use meit::model::llama::argmax;
use meit::model::npy::read_f32;
use meit::model::SeqInput;

use super::common::{fixture, golden_json, ids, max_abs_diff, smollm, top_k};

const LOGIT_TOL: f32 = 1e-3;
const IM_END: u32 = 2;

/// Last-position logits after prefilling `prompt` (with an optional prefix).
fn prefill_logits(prompt: &[u32], prefix: Option<&Tensor>) -> Vec<f32> {
    let llm = &smollm().llm;
    let mut cache = llm.new_cache(prompt.len() + 8, true).expect("cache");
    if let Some(p) = prefix {
        llm.write_prefix(p, &mut cache).expect("prefix");
    }
    let logits = llm
        .forward(&mut [SeqInput {
            tokens: prompt,
            cache: &mut cache,
        }])
        .expect("forward");
    logits.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Greedy continuation with the KV cache; like the reference, `<|im_end|>` ends it and is kept.
fn greedy(prompt: &[u32], prefix: Option<&Tensor>, n: usize) -> Vec<u32> {
    let llm = &smollm().llm;
    let mut cache = llm.new_cache(64, true).expect("cache");
    if let Some(p) = prefix {
        llm.write_prefix(p, &mut cache).expect("prefix");
    }
    let mut out = Vec::new();
    let mut next = prompt.to_vec();
    while out.len() < n {
        let logits = llm
            .forward(&mut [SeqInput {
                tokens: &next,
                cache: &mut cache,
            }])
            .expect("forward");
        let id = argmax(&logits).expect("argmax");
        out.push(id);
        if id == IM_END {
            break;
        }
        next = vec![id];
    }
    out
}

fn prefix_tensor(file: &str) -> Tensor {
    let (shape, data) = read_f32(&fixture(&format!("golden/{file}"))).expect("prefix npy");
    Tensor::from_vec(data, (shape[0], shape[1]), &Device::Cpu).expect("tensor")
}

#[test]
fn prompt0_logits_match_hf_within_1e3_and_top20_identical() {
    let g = golden_json("llm_prompts.json");
    let p0 = &g["prompts"][0];
    let got = prefill_logits(&ids(&p0["ids"]), None);
    let (_, want) = read_f32(&fixture("golden/llm_prompt0_logits.npy")).expect("npy");
    let d = max_abs_diff(&got, &want);
    eprintln!("prompt 0: max abs logit diff vs HF {d:e} (tolerance {LOGIT_TOL:e})");
    assert!(d <= LOGIT_TOL, "max abs logit diff {d}");
    assert_eq!(top_k(&got, 20), ids(&p0["top20_ids"]));
}

#[test]
fn greedy_continuations_match_hf_for_all_prompts() {
    let g = golden_json("llm_prompts.json");
    for p in g["prompts"].as_array().expect("prompts") {
        let want = ids(&p["greedy48_ids"]);
        let got = greedy(&ids(&p["ids"]), None, 48);
        assert_eq!(got, want, "prompt {:?}", p["user"]);
    }
}

#[test]
fn prefix_fusion_matches_pytorch_reference() {
    let g = golden_json("prefix_fusion.json");
    for case in g["cases"].as_array().expect("cases") {
        let prefix = prefix_tensor(case["prefix_file"].as_str().expect("file"));
        assert_eq!(prefix.dim(0).unwrap() as u64, case["P"].as_u64().unwrap());
        let prompt = ids(&case["prompt_ids"]);
        let got = prefill_logits(&prompt, Some(&prefix));
        let logits_file = case["logits_file"].as_str().expect("logits");
        let (_, want) = read_f32(&fixture(&format!("golden/{logits_file}"))).expect("npy");
        let d = max_abs_diff(&got, &want);
        eprintln!(
            "prefix fusion P={}: max abs logit diff {d:e} (tolerance {LOGIT_TOL:e})",
            case["P"]
        );
        assert!(d <= LOGIT_TOL, "P={}: max abs logit diff {d}", case["P"]);
        assert_eq!(top_k(&got, 5), ids(&case["top5_ids"]));
        assert_eq!(
            greedy(&prompt, Some(&prefix), 24),
            ids(&case["greedy24_ids"])
        );
    }
}

#[test]
fn cached_decoding_equals_full_recomputation_with_prefix() {
    let llm = &smollm().llm;
    let g = golden_json("prefix_fusion.json");
    let prompt = ids(&g["cases"][1]["prompt_ids"]);
    let prefix = prefix_tensor("prefix_fusion_P4_prefix.npy");
    let continuation = greedy(&prompt, Some(&prefix), 6);
    // Cached: prefill, then one token at a time.
    let mut cache = llm.new_cache(8, true).expect("cache");
    llm.write_prefix(&prefix, &mut cache).expect("prefix");
    let mut seq = prompt.clone();
    let mut step_logits = vec![llm
        .forward(&mut [SeqInput {
            tokens: &prompt,
            cache: &mut cache,
        }])
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()];
    for &t in &continuation {
        seq.push(t);
        step_logits.push(
            llm.forward(&mut [SeqInput {
                tokens: &[t],
                cache: &mut cache,
            }])
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        );
    }
    // Full recomputation of every prefix of the sequence, prefix K/V recomputed each time
    // (what MEIT does at every decoding step).
    for (i, cached) in step_logits.iter().enumerate() {
        let full = prefill_logits(&seq[..prompt.len() + i], Some(&prefix));
        let d = max_abs_diff(cached, &full);
        assert!(d <= 1e-3, "step {i}: cached vs full differ by {d}");
    }
}

#[test]
fn ragged_batch_equals_separate_sequences() {
    let llm = &smollm().llm;
    let g = golden_json("llm_prompts.json");
    let a = ids(&g["prompts"][0]["ids"]);
    let b = ids(&g["prompts"][2]["ids"]);
    let prefix = prefix_tensor("prefix_fusion_P1_prefix.npy");
    let alone_a = prefill_logits(&a, Some(&prefix));
    let alone_b = prefill_logits(&b, None);
    let mut ca = llm.new_cache(64, true).unwrap();
    llm.write_prefix(&prefix, &mut ca).unwrap();
    let mut cb = llm.new_cache(64, true).unwrap();
    let both = llm
        .forward(&mut [
            SeqInput {
                tokens: &a,
                cache: &mut ca,
            },
            SeqInput {
                tokens: &b,
                cache: &mut cb,
            },
        ])
        .unwrap();
    let both = both.to_vec2::<f32>().unwrap();
    assert!(max_abs_diff(&both[0], &alone_a) <= 1e-4);
    assert!(max_abs_diff(&both[1], &alone_b) <= 1e-4);
    // One decode step for both together equals one step each.
    let ta = top_k(&both[0], 1)[0];
    let tb = top_k(&both[1], 1)[0];
    let step = llm
        .forward(&mut [
            SeqInput {
                tokens: &[ta],
                cache: &mut ca,
            },
            SeqInput {
                tokens: &[tb],
                cache: &mut cb,
            },
        ])
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let mut sa = a.clone();
    sa.push(ta);
    let mut sb = b.clone();
    sb.push(tb);
    assert!(max_abs_diff(&step[0], &prefill_logits(&sa, Some(&prefix))) <= 1e-3);
    assert!(max_abs_diff(&step[1], &prefill_logits(&sb, None)) <= 1e-3);
}
