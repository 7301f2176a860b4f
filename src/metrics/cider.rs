//! pycocoevalcap 1.2 CIDEr-D (`cider_scorer.py`) and MEIT's degenerate-df variant.

use std::collections::HashMap;

const N: usize = 4;
const SIGMA: f64 = 6.0;

type Counts = HashMap<Vec<String>, f64>;

fn precook(s: &str) -> Counts {
    let words: Vec<&str> = s.split_whitespace().collect();
    let mut counts: Counts = HashMap::new();
    for k in 1..=N {
        if words.len() < k {
            break;
        }
        for w in words.windows(k) {
            let g: Vec<String> = w.iter().map(|x| x.to_string()).collect();
            *counts.entry(g).or_insert(0.0) += 1.0;
        }
    }
    counts
}

struct Vec4 {
    vec: [HashMap<Vec<String>, f64>; N],
    norm: [f64; N],
    length: f64,
}

fn counts2vec(cnts: &Counts, df: &dyn Fn(&[String]) -> f64, ref_len: f64) -> Vec4 {
    let mut vec: [HashMap<Vec<String>, f64>; N] = Default::default();
    let mut norm = [0.0f64; N];
    let mut length = 0.0;
    for (g, &tf) in cnts {
        let dfv = df(g).max(1.0).ln();
        let n = g.len() - 1;
        let v = tf * (ref_len - dfv);
        vec[n].insert(g.clone(), v);
        norm[n] += v * v;
        if n == 1 {
            length += tf;
        }
    }
    for x in norm.iter_mut() {
        *x = x.sqrt();
    }
    Vec4 { vec, norm, length }
}

fn sim(h: &Vec4, r: &Vec4) -> [f64; N] {
    let delta = h.length - r.length;
    let mut val = [0.0f64; N];
    for (n, v) in val.iter_mut().enumerate() {
        for (g, &vh) in &h.vec[n] {
            let vr = r.vec[n].get(g).copied().unwrap_or(0.0);
            *v += vh.min(vr) * vr;
        }
        if h.norm[n] != 0.0 && r.norm[n] != 0.0 {
            *v /= h.norm[n] * r.norm[n];
        }
        *v *= std::f64::consts::E.powf(-(delta * delta) / (2.0 * SIGMA * SIGMA));
    }
    val
}

fn score_with_df(
    items: &[(String, Vec<String>)],
    df: &dyn Fn(&[String]) -> f64,
    ref_len: f64,
) -> Vec<f64> {
    items
        .iter()
        .map(|(c, refs)| {
            if refs.is_empty() {
                return 0.0;
            }
            let h = counts2vec(&precook(c), df, ref_len);
            let mut score = [0.0f64; N];
            for r in refs {
                let rv = counts2vec(&precook(r), df, ref_len);
                let s = sim(&h, &rv);
                for n in 0..N {
                    score[n] += s[n];
                }
            }
            let mut avg = score.iter().sum::<f64>() / N as f64;
            avg /= refs.len() as f64;
            avg * 10.0
        })
        .collect()
}

/// CIDEr-D (corpus mean, per pair), df over the reference sets of `items`.
pub fn corpus_cider_d(items: &[(String, Vec<String>)]) -> (f64, Vec<f64>) {
    let mut df: HashMap<Vec<String>, f64> = HashMap::new();
    for (_, refs) in items {
        let mut seen: std::collections::HashSet<Vec<String>> = Default::default();
        for r in refs {
            for g in precook(r).into_keys() {
                seen.insert(g);
            }
        }
        for g in seen {
            *df.entry(g).or_insert(0.0) += 1.0;
        }
    }
    let ref_len = (items.len() as f64).ln();
    let f = |g: &[String]| df.get(g).copied().unwrap_or(0.0);
    let per = score_with_df(items, &f, ref_len);
    (crate::metrics::rouge_l::mean(&per), per)
}

/// MEIT's `CustomCiderScorer`: df = 1 for every n-gram, ref_len = log(batch size).
pub fn meit_cider_batch(items: &[(String, Vec<String>)]) -> Vec<f64> {
    let ref_len = (items.len() as f64).ln();
    let f = |_: &[String]| 1.0;
    score_with_df(items, &f, ref_len)
}
