//! Model benchmark: prefill tok/s, decode tok/s at batch 1 and 8, ECG encoder ms per record,
//! peak RSS. Prints one JSON object per figure. Compare with `tests/benches/hf_bench.py` (HF
//! transformers, f32, same GGUF, same threads) run in the same sitting.
//!
//! `cargo run --release --bin meit-bench -- [--prompt-tokens 64] [--gen-tokens 128] [--rounds 3]`
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use clap::Parser;
use meit::model::bundle::{BackboneSource, LoadOptions, MeitModel, Precision};
use meit::model::kv::KvDtype;
use meit::model::llama::argmax;
use meit::model::{SeqCache, SeqInput};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 64)]
    prompt_tokens: usize,
    #[arg(long, default_value_t = 128)]
    gen_tokens: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, default_value = "8")]
    batch: usize,
    /// A WFDB record for the encoder timing.
    #[arg(
        long,
        default_value = "tests/fixtures/ptbxl-raw/records500/06000/06005_hr"
    )]
    ecg: std::path::PathBuf,
    #[arg(long, default_value = "default")]
    model: String,
    /// f32, q8_0 or q4_0 (decode path).
    #[arg(long, default_value = "f32")]
    precision: String,
    /// KV cache: auto (f32 with f32 weights, int8 with quantized ones), f32, f16 or int8.
    #[arg(long, default_value = "auto")]
    kv_cache: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Prefill then greedy decode of `gen` tokens for `b` copies of `prompt`; returns
/// (prefill seconds, decode seconds).
fn run(m: &MeitModel, prompt: &[u32], prefix: &Tensor, b: usize, gen: usize) -> Result<(f64, f64)> {
    let mut caches: Vec<SeqCache> = (0..b)
        .map(|_| {
            m.llm
                .new_cache(prefix.dim(0)? + prompt.len() + gen + 1, false)
        })
        .collect::<std::result::Result<_, _>>()?;
    for c in caches.iter_mut() {
        m.llm.write_prefix(prefix, c)?;
    }
    let t0 = Instant::now();
    // All prompts in one step, as the engine prefills a wave of new requests.
    let mut inputs: Vec<SeqInput> = caches
        .iter_mut()
        .map(|c| SeqInput {
            tokens: prompt,
            cache: c,
        })
        .collect();
    let logits = m.llm.forward(&mut inputs)?;
    let mut next = (0..b)
        .map(|i| argmax(&logits.get(i)?))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let prefill = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for _ in 0..gen {
        let toks: Vec<[u32; 1]> = next.iter().map(|&t| [t]).collect();
        let mut inputs: Vec<SeqInput> = caches
            .iter_mut()
            .zip(&toks)
            .map(|(c, t)| SeqInput {
                tokens: t,
                cache: c,
            })
            .collect();
        let logits = m.llm.forward(&mut inputs)?;
        for (i, n) in next.iter_mut().enumerate() {
            *n = argmax(&logits.get(i)?)?;
        }
    }
    Ok((prefill, t1.elapsed().as_secs_f64()))
}

fn main() -> Result<()> {
    // As the server does: freed buffers stay mapped (no page faults on every step).
    meit::cli::alloc::keep_freed_memory();
    let a = Args::parse();
    let dev = Device::Cpu;
    let t = Instant::now();
    let m = MeitModel::load(
        &LoadOptions {
            backbone: BackboneSource::parse(&a.model),
            adapter: None,
            prefix_slots: 1,
            precision: Precision::parse(&a.precision)?,
            kv_cache: KvDtype::parse_choice(&a.kv_cache)
                .map_err(|e| anyhow::anyhow!("--kv-cache {e}"))?,
        },
        &dev,
    )
    .context("load model")?;
    println!(
        "{{\"figure\":\"load_seconds\",\"value\":{:.3},\"precision\":\"{}\",\"kv_cache\":\"{}\"}}",
        t.elapsed().as_secs_f64(),
        a.precision,
        m.llm.kv_dtype().as_str()
    );
    let raw = meit::cli::report::read_ecg(&a.ecg)?;
    let ecg = meit::signal::preprocess(&raw)?;
    let mut enc_ms = Vec::new();
    for _ in 0..(10 * a.rounds) {
        let t = Instant::now();
        let p = m.encode_ecg(&ecg.data, meit::signal::TARGET_LEN)?;
        let _ = p.sum_all()?.to_scalar::<f32>()?;
        enc_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let prefix = m.encode_ecg(&ecg.data, meit::signal::TARGET_LEN)?;
    // A prompt of exactly `prompt_tokens` ids: a real report text repeated and cut.
    let text = meit::model::chat::user_prompt(
        "sinus rhythm. left axis deviation. possible anterior infarct - age undetermined. abnormal ecg. ".repeat(8).as_str(),
    );
    let mut prompt = meit::model::tokenizer::encode(&m.tokenizer, &text)?;
    prompt.truncate(a.prompt_tokens);
    let (mut pre, mut preb, mut d1, mut db) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.rounds {
        let (p, d) = run(&m, &prompt, &prefix, 1, a.gen_tokens)?;
        pre.push(prompt.len() as f64 / p);
        d1.push(a.gen_tokens as f64 / d);
        let (p, d) = run(&m, &prompt, &prefix, a.batch, a.gen_tokens)?;
        preb.push((a.batch * prompt.len()) as f64 / p);
        db.push((a.batch * a.gen_tokens) as f64 / d);
    }
    println!(
        "{{\"figure\":\"prefill_tok_s\",\"value\":{:.1},\"prompt_tokens\":{}}}",
        median(pre),
        prompt.len()
    );
    println!(
        "{{\"figure\":\"prefill_b{}_tok_s\",\"value\":{:.1}}}",
        a.batch,
        median(preb)
    );
    println!(
        "{{\"figure\":\"decode_b1_tok_s\",\"value\":{:.1},\"gen_tokens\":{}}}",
        median(d1),
        a.gen_tokens
    );
    println!(
        "{{\"figure\":\"decode_b{}_tok_s\",\"value\":{:.1}}}",
        a.batch,
        median(db)
    );
    println!(
        "{{\"figure\":\"encoder_ms_per_record\",\"value\":{:.2}}}",
        median(enc_ms)
    );
    println!(
        "{{\"figure\":\"peak_rss_mib\",\"value\":{:.0}}}",
        peak_rss_mib()
    );
    Ok(())
}
