//! pycocoevalcap 1.2 BLEU (`bleu_scorer.py`, option `closest`).

use std::collections::HashMap;

/// Maximum n-gram order used by pycocoevalcap `Bleu(4)`.
pub const BLEU_N: usize = 4;
const TINY: f64 = 1e-15;
const SMALL: f64 = 1e-9;

/// Sufficient statistics of one candidate against its references.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuStats {
    pub testlen: usize,
    pub reflen: usize,
    pub guess: [usize; BLEU_N],
    pub correct: [usize; BLEU_N],
}

/// Counts all n-grams of order 1..=n of a token list.
pub fn ngram_counts<'a>(words: &[&'a str], n: usize) -> HashMap<Vec<&'a str>, usize> {
    let mut counts: HashMap<Vec<&'a str>, usize> = HashMap::new();
    for k in 1..=n {
        if words.len() < k {
            break;
        }
        for w in words.windows(k) {
            *counts.entry(w.to_vec()).or_insert(0) += 1;
        }
    }
    counts
}

/// Computes the BLEU statistics of whitespace-split candidate and references.
pub fn bleu_stats(candidate: &str, references: &[String]) -> BleuStats {
    let test: Vec<&str> = candidate.split_whitespace().collect();
    let testlen = test.len();
    let mut maxcounts: HashMap<Vec<&str>, usize> = HashMap::new();
    let mut reflens = Vec::with_capacity(references.len());
    for r in references {
        let words: Vec<&str> = r.split_whitespace().collect();
        reflens.push(words.len());
        for (g, c) in ngram_counts(&words, BLEU_N) {
            let e = maxcounts.entry(g).or_insert(0);
            if c > *e {
                *e = c;
            }
        }
    }
    // 'closest': min over (|l - testlen|, l)
    let reflen = reflens
        .iter()
        .map(|&l| (l.abs_diff(testlen), l))
        .min()
        .map(|x| x.1)
        .unwrap_or(0);
    let mut guess = [0usize; BLEU_N];
    let mut correct = [0usize; BLEU_N];
    for (k, g) in guess.iter_mut().enumerate() {
        *g = (testlen + 1).saturating_sub(k + 1);
    }
    for (g, c) in ngram_counts(&test, BLEU_N) {
        let m = maxcounts.get(&g).copied().unwrap_or(0);
        correct[g.len() - 1] += c.min(m);
    }
    BleuStats {
        testlen,
        reflen,
        guess,
        correct,
    }
}

/// BLEU-1..4 from (possibly summed) statistics, with pycocoevalcap's epsilons.
pub fn bleu_from_stats(s: &BleuStats) -> [f64; BLEU_N] {
    let mut out = [0.0; BLEU_N];
    let mut bleu = 1.0f64;
    for (k, o) in out.iter_mut().enumerate() {
        bleu *= (s.correct[k] as f64 + TINY) / (s.guess[k] as f64 + SMALL);
        *o = bleu.powf(1.0 / (k as f64 + 1.0));
    }
    let ratio = (s.testlen as f64 + TINY) / (s.reflen as f64 + SMALL);
    if ratio < 1.0 {
        let bp = (1.0 - 1.0 / ratio).exp();
        for v in out.iter_mut() {
            *v *= bp;
        }
    }
    out
}

/// Sums statistics over a corpus.
pub fn sum_stats(stats: &[BleuStats]) -> BleuStats {
    let mut t = BleuStats {
        testlen: 0,
        reflen: 0,
        guess: [0; BLEU_N],
        correct: [0; BLEU_N],
    };
    for s in stats {
        t.testlen += s.testlen;
        t.reflen += s.reflen;
        for k in 0..BLEU_N {
            t.guess[k] += s.guess[k];
            t.correct[k] += s.correct[k];
        }
    }
    t
}

/// Corpus BLEU and per-pair BLEU for (candidate, references) token strings.
pub fn corpus_bleu(items: &[(String, Vec<String>)]) -> ([f64; BLEU_N], Vec<[f64; BLEU_N]>) {
    let stats: Vec<BleuStats> = items.iter().map(|(c, r)| bleu_stats(c, r)).collect();
    let per: Vec<[f64; BLEU_N]> = stats.iter().map(bleu_from_stats).collect();
    (bleu_from_stats(&sum_stats(&stats)), per)
}
