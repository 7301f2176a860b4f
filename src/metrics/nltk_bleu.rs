//! NLTK 3.10 `corpus_bleu` (uniform weights 1/n, no smoothing) on whitespace tokens.

use crate::metrics::bleu::ngram_counts;
use std::collections::HashMap;

/// Corpus BLEU-n for n = 1..=4 (`corpus_bleu(refs, hyps, weights=(1/n,)*n)`).
pub fn corpus_bleu(items: &[(String, Vec<String>)]) -> [f64; 4] {
    let mut num = [0usize; 4];
    let mut den = [0usize; 4];
    let mut hyp_len = 0usize;
    let mut ref_len = 0usize;
    for (c, refs) in items {
        let hyp: Vec<&str> = c.split_whitespace().collect();
        let rtoks: Vec<Vec<&str>> = refs
            .iter()
            .map(|r| r.split_whitespace().collect())
            .collect();
        let hc = ngram_counts(&hyp, 4);
        let mut maxc: HashMap<Vec<&str>, usize> = HashMap::new();
        for r in &rtoks {
            for (g, k) in ngram_counts(r, 4) {
                let e = maxc.entry(g).or_insert(0);
                *e = (*e).max(k);
            }
        }
        for n in 1..=4 {
            let mut total = 0;
            let mut clipped = 0;
            for (g, k) in hc.iter().filter(|(g, _)| g.len() == n) {
                total += k;
                clipped += (*k).min(maxc.get(g).copied().unwrap_or(0));
            }
            num[n - 1] += clipped;
            den[n - 1] += total.max(1);
        }
        hyp_len += hyp.len();
        ref_len += rtoks
            .iter()
            .map(|r| r.len())
            .min_by_key(|&l| (l.abs_diff(hyp.len()), l))
            .unwrap_or(0);
    }
    let bp = if hyp_len > ref_len {
        1.0
    } else if hyp_len == 0 {
        0.0
    } else {
        (1.0 - ref_len as f64 / hyp_len as f64).exp()
    };
    let mut out = [0.0; 4];
    for (n, o) in out.iter_mut().enumerate() {
        if num[0] == 0 {
            continue;
        }
        let w = 1.0 / (n as f64 + 1.0);
        let s: f64 = (0..=n)
            .map(|k| {
                let p = if num[k] == 0 {
                    f64::MIN_POSITIVE
                } else {
                    num[k] as f64 / den[k] as f64
                };
                w * p.ln()
            })
            .sum();
        *o = bp * s.exp();
    }
    out
}
