//! NLTK 3.10 `meteor_score` (alpha 0.9, beta 3, gamma 0.5; exact, Porter stem and
//! WordNet synonym stages; max over references).

use std::collections::HashMap;

use serde::Serialize;

use crate::metrics::nltk_tokenize::word_tokenize;
use crate::metrics::porter::PorterStemmer;
use crate::metrics::rouge_l::mean;
use crate::metrics::wordnet::WordNet;
use crate::metrics::Pair;

type Enum = Vec<(usize, String)>;

fn match_enums(h: &Enum, r: &Enum) -> (Vec<(usize, usize)>, Enum, Enum) {
    let mut pos: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, (_, w)) in r.iter().enumerate() {
        pos.entry(w.as_str()).or_default().push(j);
    }
    let mut mh = vec![false; h.len()];
    let mut mr = vec![false; r.len()];
    let mut out = Vec::new();
    for i in (0..h.len()).rev() {
        if let Some(j) = pos.get_mut(h[i].1.as_str()).and_then(|v| v.pop()) {
            mh[i] = true;
            mr[j] = true;
            out.push((h[i].0, r[j].0));
        }
    }
    let hl = h
        .iter()
        .zip(&mh)
        .filter(|x| !x.1)
        .map(|x| x.0.clone())
        .collect();
    let rl = r
        .iter()
        .zip(&mr)
        .filter(|x| !x.1)
        .map(|x| x.0.clone())
        .collect();
    (out, hl, rl)
}

fn syn_match(h: &Enum, r: &Enum, wn: &WordNet) -> Vec<(usize, usize)> {
    let mut pos: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, (_, w)) in r.iter().enumerate() {
        pos.entry(w.as_str()).or_default().push(j);
    }
    let mut out = Vec::new();
    for i in (0..h.len()).rev() {
        let syns = wn.synonyms(&h[i].1);
        let mut best: Option<(usize, &str)> = None;
        for s in &syns {
            if let Some((key, v)) = pos.get_key_value(s.as_str()) {
                if let Some(&j) = v.last() {
                    if best.is_none_or(|b| j > b.0) {
                        best = Some((j, key));
                    }
                }
            }
        }
        if let Some((j, key)) = best {
            if let Some(v) = pos.get_mut(key) {
                v.pop();
            }
            out.push((h[i].0, r[j].0));
        }
    }
    out
}

fn count_chunks(m: &[(usize, usize)]) -> usize {
    let mut chunks = 1;
    for w in m.windows(2) {
        if !(w[1].0 == w[0].0 + 1 && w[1].1 == w[0].1 + 1) {
            chunks += 1;
        }
    }
    chunks
}

/// `single_meteor_score(reference, hypothesis)` on token lists.
pub fn single_meteor(reference: &[String], hypothesis: &[String]) -> f64 {
    let (alpha, beta, gamma) = (0.9f64, 3.0f64, 0.5f64);
    let h: Enum = hypothesis
        .iter()
        .map(|w| w.to_lowercase())
        .enumerate()
        .collect();
    let r: Enum = reference
        .iter()
        .map(|w| w.to_lowercase())
        .enumerate()
        .collect();
    let (tl, rl) = (h.len(), r.len());
    let stemmer = PorterStemmer::new();
    let (mut m, h2, r2) = match_enums(&h, &r);
    let hs: Enum = h2.iter().map(|(i, w)| (*i, stemmer.stem(w))).collect();
    let rs: Enum = r2.iter().map(|(i, w)| (*i, stemmer.stem(w))).collect();
    let (m2, h3, r3) = match_enums(&hs, &rs);
    // the synonym stage sees the stemmed words (NLTK passes the stemmed leftovers)
    let m3 = syn_match(&h3, &r3, WordNet::get());
    m.extend(m2);
    m.extend(m3);
    m.sort_by_key(|x| x.0);
    let mc = m.len() as f64;
    if tl == 0 || rl == 0 || m.is_empty() {
        return 0.0;
    }
    let p = mc / tl as f64;
    let rc = mc / rl as f64;
    let fmean = (p * rc) / (alpha * p + (1.0 - alpha) * rc);
    let frag = count_chunks(&m) as f64 / mc;
    let penalty = gamma * frag.powf(beta);
    (1.0 - penalty) * fmean
}

/// `meteor_score(references, hypothesis)`: max over references.
pub fn meteor_tokens(references: &[Vec<String>], hypothesis: &[String]) -> f64 {
    references
        .iter()
        .map(|r| single_meteor(r, hypothesis))
        .fold(0.0, f64::max)
}

/// NLTK METEOR on raw texts (word_tokenize approximation).
pub fn meteor_text(references: &[String], hypothesis: &str) -> f64 {
    let refs: Vec<Vec<String>> = references.iter().map(|r| word_tokenize(r)).collect();
    meteor_tokens(&refs, &word_tokenize(hypothesis))
}

/// Corpus mean and per-pair NLTK METEOR over all references.
#[derive(Debug, Clone, Serialize)]
pub struct NltkMeteorScores {
    pub meteor_mean: f64,
    pub pairs: Vec<f64>,
}

/// NLTK METEOR for every pair (all references), and its mean.
pub fn score_nltk_meteor(pairs: &[Pair]) -> NltkMeteorScores {
    let per: Vec<f64> = pairs
        .iter()
        .map(|p| meteor_text(&p.references, &p.candidate))
        .collect();
    NltkMeteorScores {
        meteor_mean: mean(&per),
        pairs: per,
    }
}
