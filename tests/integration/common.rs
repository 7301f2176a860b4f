//! Shared fixtures: the default backbone (fetched once into the cache) and golden file paths.
use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::Device;
use meit::model::bundle::{load_backbone, Backbone, BackboneSource};
use meit::model::Llama;

pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn golden_json(name: &str) -> serde_json::Value {
    let p = fixture(&format!("golden/{name}"));
    let raw = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&raw).expect("golden json")
}

pub struct Loaded {
    pub backbone: Backbone,
    pub llm: Llama,
}

/// The default backbone (SmolLM2-135M-Instruct), loaded once per test binary.
pub fn smollm() -> &'static Loaded {
    static M: OnceLock<Loaded> = OnceLock::new();
    M.get_or_init(|| {
        let dev = Device::Cpu;
        let backbone = load_backbone(&BackboneSource::Default, &dev).expect("default backbone");
        let llm = Llama::load(&backbone.weights, &backbone.config, &dev).expect("llama");
        Loaded { backbone, llm }
    })
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn top_k(v: &[f32], k: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..v.len() as u32).collect();
    idx.sort_by(|&a, &b| v[b as usize].total_cmp(&v[a as usize]));
    idx.truncate(k);
    idx
}
