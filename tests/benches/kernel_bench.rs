//! Microbenchmarks of the CPU kernels a batched decode step and a prefill spend their time in,
//! on the backbone's shapes (SmolLM2-135M: 30 layers, hidden 576, MLP 1536, 3 of 9 heads for
//! keys/values, vocabulary 49152), with synthetic weights:
//! - `int8_vnni`: the int8 VNNI matmuls of one step (30 layers of q/k/v, o, gate/up, down and the
//!   LM head) at 1 row and at `--rows` rows, the path of every step on CPUs without AMX;
//! - `int8_vnni_layers`: the 30 layers' matmuls alone, at the same row counts, once with 30
//!   layers' weights (`"weights": "memory"`, 114 MB) and once with one layer's 3.8 MB used 30
//!   times (`"cached"`, in L3 after the warm-up): where the two take the same time, reading the
//!   weights from memory costs that row count nothing the arithmetic does not hide;
//! - `int8_tiles`: the same set on int8 AMX tiles at `--rows` rows;
//! - `attention`: one step's decode attention (480 calls: 16 sequences x 30 layers) over
//!   `--keys` cached f16 keys per head, one thread, separate caches so they come from memory;
//! - `bf16_tiles`: the layer matmuls at 512 rows on bf16 AMX tiles (prefill).
//!
//! `cargo bench --bench kernels -- [--rows 16] [--keys 115] [--rounds 40]`
//!
//! Prints one JSON line per kernel (min, p25 and median over the rounds). Compare builds by
//! running both in the same minute: this machine's speed drifts by up to a third.
use std::time::Instant;

use half::f16;
use meit::model::amx::{self, Bf16Matrix};
use meit::model::amx_int8::I8TileMatrix;
use meit::model::attention::{attend_cached, CacheSlices, Heads};
use meit::model::kv::{key_at_i8, keys_to_blocks, rows_to_layout, value_at_i8};
use meit::model::qmatmul::{quantize_block, Q8Matrix};
use serde_json::json;

const LAYER_SHAPES: [(usize, usize); 4] = [(960, 576), (576, 576), (3072, 576), (576, 1536)];

struct Args {
    rows: usize,
    keys: usize,
    rounds: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        rows: 16,
        keys: 115,
        rounds: 40,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse().ok());
        match flag.as_str() {
            "--rows" => a.rows = value().unwrap_or(a.rows),
            "--keys" => a.keys = value().unwrap_or(a.keys),
            "--rounds" => a.rounds = value().unwrap_or(a.rounds),
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    a
}

/// Deterministic values in [-0.5, 0.5).
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i.wrapping_mul(7919) + seed * 104_729) % 1000) as f32 * 1e-3 - 0.5)
        .collect()
}

/// Times `f` `rounds` times; prints min, p25 and median in milliseconds with `extra` fields.
fn report(name: &str, rounds: usize, mut f: impl FnMut(), extra: serde_json::Value) {
    f(); // warm-up
    let mut t: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    let mut line = json!({"kernel": name, "min_ms": t[0], "p25_ms": t[t.len() / 4],
        "median_ms": t[t.len() / 2]});
    if let (Some(l), Some(e)) = (line.as_object_mut(), extra.as_object()) {
        l.extend(e.clone());
    }
    println!("{line}");
}

/// Times one step's matmuls (30 layers of `LAYER_SHAPES`, then the LM head if given) at `m`
/// rows.
fn step_matmuls<W>(
    name: &str,
    a: &Args,
    layers: &[&[W]],
    lm: Option<&W>,
    m: usize,
    extra: serde_json::Value,
    matmul: impl Fn(&W, &[f32], usize, &mut [f32]),
) {
    let x = values(m * 1536, 7);
    let mut out = vec![0f32; m * 49152];
    report(
        name,
        a.rounds,
        || {
            for l in layers {
                for (w, &(n, k)) in l.iter().zip(&LAYER_SHAPES) {
                    matmul(w, &x[..m * k], m, &mut out[..m * n]);
                }
            }
            if let Some(lm) = lm {
                matmul(lm, &x[..m * 576], m, &mut out);
            }
        },
        extra,
    );
}

fn int8_tiles(a: &Args) {
    let mk = |(n, k): (usize, usize), seed: usize| {
        I8TileMatrix::from_f32(&values(n * k, seed), n, k).expect("tile layout")
    };
    let layers: Vec<Vec<I8TileMatrix>> = (0..30)
        .map(|l| LAYER_SHAPES.iter().map(|&s| mk(s, l)).collect())
        .collect();
    let lm = mk((49152, 576), 99);
    let bytes: usize = 30 * LAYER_SHAPES.iter().map(|(n, k)| n * k).sum::<usize>() + 49152 * 576;
    let extra = json!({"rows": a.rows, "weight_mb": bytes as f64 / 1e6});
    let layers: Vec<&[I8TileMatrix]> = layers.iter().map(Vec::as_slice).collect();
    step_matmuls(
        "int8_tiles",
        a,
        &layers,
        Some(&lm),
        a.rows,
        extra,
        |w, x, m, out| w.matmul(x, m, out),
    );
}

/// The int8 VNNI kernel (`Q8Matrix`, blocks of 64) on one step's matrix set, at 1 row and at
/// `--rows`: the path every step takes on CPUs without AMX.
fn int8_vnni(a: &Args) {
    let mk = |(n, k): (usize, usize), seed: usize| {
        let mut w = Q8Matrix::quantize(&values(n * k, seed), n, k).expect("int8 layout");
        w.drop_tile_copies();
        w
    };
    let layers: Vec<Vec<Q8Matrix>> = (0..30)
        .map(|l| LAYER_SHAPES.iter().map(|&s| mk(s, l)).collect())
        .collect();
    let lm = mk((49152, 576), 99);
    let all: Vec<&[Q8Matrix]> = layers.iter().map(Vec::as_slice).collect();
    let one = vec![layers[0].as_slice(); 30];
    let matmul = |w: &Q8Matrix, x: &[f32], m, out: &mut [f32]| w.matmul(x, m, out);
    for m in [1, a.rows] {
        step_matmuls(
            "int8_vnni",
            a,
            &all,
            Some(&lm),
            m,
            json!({"rows": m}),
            matmul,
        );
        for (set, weights) in [(&all, "memory"), (&one, "cached")] {
            let extra = json!({"rows": m, "weights": weights});
            step_matmuls("int8_vnni_layers", a, set, None, m, extra, matmul);
        }
    }
}

fn attention(a: &Args) {
    let (cap, keys) = ((a.keys.max(1) + 8).next_multiple_of(16), a.keys.max(1));
    let heads = Heads {
        h: 9,
        hkv: 3,
        d: 64,
    };
    let q = values(9 * 64, 3);
    let mut out = vec![0f32; 9 * 64];
    // 480 calls: 16 sequences x 30 layers, each with its own cache (any values serve for
    // timing; keys in the cache's block layout).
    let cache = |seed: usize| values(3 * cap * 64, seed);
    let f16s: Vec<(Vec<f16>, Vec<f16>)> = (0..480)
        .map(|c| {
            let half = |x: Vec<f32>| x.into_iter().map(f16::from_f32).collect::<Vec<_>>();
            (
                keys_to_blocks(&half(cache(2 * c)), 3, cap, 64),
                half(cache(2 * c + 1)),
            )
        })
        .collect();
    report(
        "attention",
        a.rounds,
        || {
            for (k, v) in &f16s {
                let c = CacheSlices {
                    k,
                    v,
                    scales: None,
                    cap,
                };
                attend_cached(&q, 1, &c, keys - 1, keys, heads, 0.125, &mut out);
            }
        },
        json!({"calls": 480, "keys": keys, "threads": 1, "cache": "f16"}),
    );
    drop(f16s);
    // The same with int8 rows and their scales, in the int8 layouts.
    let int8 = |x: Vec<f32>| {
        let mut q = vec![0i8; x.len()];
        let s: Vec<f32> = x
            .chunks_exact(64)
            .zip(q.chunks_exact_mut(64))
            .map(|(r, o)| quantize_block(r, o))
            .collect();
        (q, s)
    };
    let i8s: Vec<_> = (0..480)
        .map(|c| {
            let ((k, ks), (v, vs)) = (int8(cache(2 * c)), int8(cache(2 * c + 1)));
            let k = rows_to_layout(&k, 3, cap, 64, key_at_i8);
            (k, rows_to_layout(&v, 3, cap, 64, value_at_i8), ks, vs)
        })
        .collect();
    report(
        "attention",
        a.rounds,
        || {
            for (k, v, ks, vs) in &i8s {
                let c = CacheSlices {
                    k,
                    v,
                    scales: Some((ks, vs)),
                    cap,
                };
                attend_cached(&q, 1, &c, keys - 1, keys, heads, 0.125, &mut out);
            }
        },
        json!({"calls": 480, "keys": keys, "threads": 1, "cache": "int8"}),
    );
}

fn bf16_tiles(a: &Args) {
    let m = 512;
    let mats: Vec<Bf16Matrix> = LAYER_SHAPES
        .iter()
        .map(|&(n, k)| Bf16Matrix::from_f32(&values(n * k, n + k), n, k).expect("tile layout"))
        .collect();
    let x = values(m * 1536, 5);
    let mut out = vec![0f32; m * 3072];
    let flop: usize = 2 * m * LAYER_SHAPES.iter().map(|(n, k)| n * k).sum::<usize>();
    report(
        "bf16_tiles",
        a.rounds,
        || {
            for (w, &(n, k)) in mats.iter().zip(&LAYER_SHAPES) {
                w.matmul(&x[..m * k], m, &mut out[..m * n]);
            }
        },
        json!({"rows": m, "gflop_per_layer": flop as f64 / 1e9}),
    );
}

fn main() {
    meit::cli::alloc::keep_freed_memory();
    let a = parse_args();
    attention(&a);
    int8_vnni(&a);
    if !amx::int8_available() {
        println!(
            "{}",
            json!({"kernel": "int8_tiles", "skipped": "no AMX-INT8 here"})
        );
    } else {
        int8_tiles(&a);
    }
    if !amx::available() {
        println!(
            "{}",
            json!({"kernel": "bf16_tiles", "skipped": "no AMX-BF16 here"})
        );
    } else {
        bf16_tiles(&a);
    }
}
