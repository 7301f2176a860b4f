//! A PEFT-layout adapter merged at load (`W + alpha/r * B A`) gives the same logits as the
//! adapter applied on the fly. Tolerance 1e-4 max abs.
use std::collections::HashMap;

use candle_core::{Device, Tensor};
use meit::model::linear::{Linear, LoraDelta};
use meit::model::lora::{self, Adapter, AdapterConfig};
use meit::model::weights::layer_linear_names;
use meit::model::{Llama, SeqInput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::common::{golden_json, ids, max_abs_diff, smollm};

/// Uniform values in [-0.05, 0.05), seeded.
fn seeded(rng: &mut StdRng, shape: (usize, usize), dev: &Device) -> Tensor {
    let v: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| rng.random_range(-0.05f32..0.05))
        .collect();
    Tensor::from_vec(v, shape, dev).unwrap()
}

#[test]
fn merged_adapter_equals_unmerged() {
    let m = smollm();
    let cfg = &m.backbone.config;
    let dev = Device::Cpu;
    let r = 4;
    let mut rng = StdRng::seed_from_u64(42);
    let mut deltas = HashMap::new();
    for l in 0..cfg.num_hidden_layers {
        for name in layer_linear_names(l) {
            let w = m.backbone.weights.get_any(&name).expect("weight");
            let (out, inp) = w.dims2().unwrap();
            let a = seeded(&mut rng, (r, inp), &dev);
            let b = seeded(&mut rng, (out, r), &dev);
            deltas.insert(name, LoraDelta { a, b, scale: 2.0 });
        }
    }
    let config = AdapterConfig {
        r,
        lora_alpha: 8.0,
        target_modules: vec![
            "q_proj".into(),
            "k_proj".into(),
            "v_proj".into(),
            "o_proj".into(),
            "gate_proj".into(),
            "up_proj".into(),
            "down_proj".into(),
        ],
        lora_dropout: 0.0,
        peft_type: "LORA".into(),
        base_model_name_or_path: None,
        use_rslora: false,
    };
    let dir = std::env::temp_dir().join(format!("meit-lora-test-{}", std::process::id()));
    lora::save(&dir, &config, &deltas).expect("save adapter");
    let adapter = Adapter::load(&dir, &dev).expect("load adapter");
    assert_eq!(adapter.deltas.len(), cfg.num_hidden_layers * 7);

    let mut merged_w = m.backbone.weights.clone();
    adapter.merge_into(&mut merged_w).expect("merge");
    let merged = Llama::load(&merged_w, cfg, &dev).expect("merged");
    let unmerged = Llama::load_with(&m.backbone.weights, cfg, &dev, |name, w| {
        Ok(match adapter.deltas.get(name) {
            Some(d) => Linear::with_lora(w, d.clone()),
            None => Linear::new(w),
        })
    })
    .expect("unmerged");

    let prompt = ids(&golden_json("llm_prompts.json")["prompts"][0]["ids"]);
    let run = |llm: &Llama| {
        let mut c = llm.new_cache(64, true).unwrap();
        llm.forward(&mut [SeqInput {
            tokens: &prompt,
            cache: &mut c,
        }])
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
    };
    let a = run(&merged);
    let b = run(&unmerged);
    let base = run(&m.llm);
    let d = max_abs_diff(&a, &b);
    eprintln!("LoRA merged vs unmerged: max abs logit diff {d:e} (tolerance 1e-4)");
    assert!(d <= 1e-4, "merged vs unmerged differ by {d}");
    assert!(
        max_abs_diff(&a, &base) > 1e-2,
        "the adapter must change the logits"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
