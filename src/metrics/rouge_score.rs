//! Google `rouge-score` 0.1.2: ROUGE-1/2/L with `score_multi` (best F over references).

use std::collections::HashMap;

use serde::Serialize;

use crate::metrics::porter::PorterStemmer;
use crate::metrics::rouge_l::{lcs, mean};
use crate::metrics::Pair;

/// Precision, recall and F1.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Prf {
    pub p: f64,
    pub r: f64,
    pub f: f64,
}

/// ROUGE-1, ROUGE-2 and ROUGE-L for one pair (or corpus means).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct RougeTriple {
    pub rouge1: Prf,
    pub rouge2: Prf,
    pub rouge_l: Prf,
}

/// Corpus means and per-pair values, without and with the Porter stemmer.
#[derive(Debug, Clone, Serialize)]
pub struct RougeScoreScores {
    pub corpus: RougeTriple,
    /// Corpus F with `use_stemmer=True` (rouge1, rouge2, rougeL).
    pub stemmed_f: [f64; 3],
    pub pairs: Vec<RougeTriple>,
    pub pairs_stemmed: Vec<RougeTriple>,
}

/// rouge-score's default tokenizer.
pub fn tokenize(text: &str, stemmer: Option<&PorterStemmer>) -> Vec<String> {
    let lower = text.to_lowercase();
    let cleaned: String = lower
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                ' '
            }
        })
        .collect();
    cleaned
        .split_whitespace()
        .map(|t| match stemmer {
            Some(s) if t.chars().count() > 3 => s.stem(t),
            _ => t.to_string(),
        })
        .filter(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        .collect()
}

fn fmeasure(p: f64, r: f64) -> f64 {
    if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    }
}

fn ngrams(t: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut m = HashMap::new();
    if t.len() >= n {
        for w in t.windows(n) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

fn score_n(target: &[String], pred: &[String], n: usize) -> Prf {
    let tg = ngrams(target, n);
    let pg = ngrams(pred, n);
    let inter: usize = tg
        .iter()
        .map(|(g, c)| (*c).min(pg.get(g).copied().unwrap_or(0)))
        .sum();
    let tc: usize = tg.values().sum();
    let pc: usize = pg.values().sum();
    let p = inter as f64 / pc.max(1) as f64;
    let r = inter as f64 / tc.max(1) as f64;
    Prf {
        p,
        r,
        f: fmeasure(p, r),
    }
}

fn score_lcs(target: &[String], pred: &[String]) -> Prf {
    if target.is_empty() || pred.is_empty() {
        return Prf::default();
    }
    let l = lcs(target, pred) as f64;
    let p = l / pred.len() as f64;
    let r = l / target.len() as f64;
    Prf {
        p,
        r,
        f: fmeasure(p, r),
    }
}

/// `RougeScorer.score_multi` for one candidate.
pub fn score_multi(references: &[String], candidate: &str, stem: bool) -> RougeTriple {
    let st = PorterStemmer::new();
    let s = if stem { Some(&st) } else { None };
    let pred = tokenize(candidate, s);
    let scores: Vec<[Prf; 3]> = references
        .iter()
        .map(|r| {
            let t = tokenize(r, s);
            [
                score_n(&t, &pred, 1),
                score_n(&t, &pred, 2),
                score_lcs(&t, &pred),
            ]
        })
        .collect();
    let mut best = [Prf::default(); 3];
    for (k, b) in best.iter_mut().enumerate() {
        // np.argmax: first maximum
        let mut bi: Option<usize> = None;
        for (i, sc) in scores.iter().enumerate() {
            if bi.is_none_or(|j| sc[k].f > scores[j][k].f) {
                bi = Some(i);
            }
        }
        if let Some(i) = bi {
            *b = scores[i][k];
        }
    }
    RougeTriple {
        rouge1: best[0],
        rouge2: best[1],
        rouge_l: best[2],
    }
}

fn mean_prf(v: &[Prf]) -> Prf {
    Prf {
        p: mean(&v.iter().map(|x| x.p).collect::<Vec<_>>()),
        r: mean(&v.iter().map(|x| x.r).collect::<Vec<_>>()),
        f: mean(&v.iter().map(|x| x.f).collect::<Vec<_>>()),
    }
}

fn mean_triple(v: &[RougeTriple]) -> RougeTriple {
    RougeTriple {
        rouge1: mean_prf(&v.iter().map(|x| x.rouge1).collect::<Vec<_>>()),
        rouge2: mean_prf(&v.iter().map(|x| x.rouge2).collect::<Vec<_>>()),
        rouge_l: mean_prf(&v.iter().map(|x| x.rouge_l).collect::<Vec<_>>()),
    }
}

/// rouge-score over all pairs (all references, best F per type).
pub fn score_rouge_score(pairs: &[Pair]) -> RougeScoreScores {
    let per: Vec<RougeTriple> = pairs
        .iter()
        .map(|p| score_multi(&p.references, &p.candidate, false))
        .collect();
    let per_s: Vec<RougeTriple> = pairs
        .iter()
        .map(|p| score_multi(&p.references, &p.candidate, true))
        .collect();
    let ms = mean_triple(&per_s);
    RougeScoreScores {
        corpus: mean_triple(&per),
        stemmed_f: [ms.rouge1.f, ms.rouge2.f, ms.rouge_l.f],
        pairs: per,
        pairs_stemmed: per_s,
    }
}
