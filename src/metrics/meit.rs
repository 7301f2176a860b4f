//! MEIT's own evaluation protocol (`ECG_LLMs/eval_metrics.py`): no PTB tokenizer, per-batch
//! averaging, pycocoevalcap BLEU/ROUGE-L on `re.sub(' +',' ', text.replace('.', ' .'))`,
//! degenerate-df CIDEr-D, NLTK METEOR and pltrdy `rouge` 1.0.1 ROUGE-1/2. Only
//! `references[0]` is used (MEIT has one reference per ECG).

use std::collections::HashSet;

use serde::Serialize;

use crate::metrics::rouge_l::{mean, rouge_l_pair};
use crate::metrics::{bleu, cider, nltk_meteor, Pair};

/// MEIT text preprocessing: `re.sub(' +', ' ', text.replace('.', ' .'))`.
pub fn meit_text(text: &str) -> String {
    let t = text.replace('.', " .");
    let mut out = String::with_capacity(t.len());
    let mut prev_space = false;
    for c in t.chars() {
        if c == ' ' {
            if !prev_space {
                out.push(c);
            }
            prev_space = true;
        } else {
            out.push(c);
            prev_space = false;
        }
    }
    out
}

/// NLTK `wordpunct_tokenize`: `\w+|[^\w\s]+`.
pub fn wordpunct_tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut kind = 0u8; // 1 word, 2 punct
    for c in text.chars() {
        let k = if c.is_alphanumeric() || c == '_' {
            1
        } else if c.is_whitespace() {
            0
        } else {
            2
        };
        if k != kind && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if k != 0 {
            cur.push(c);
        }
        kind = k;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// pltrdy `rouge` 1.0.1 ROUGE-N F (None where it raises "Hypothesis/Reference is empty").
pub fn pltrdy_rouge_n(hyp: &str, reference: &str, n: usize) -> Option<f64> {
    let sents = |t: &str| -> Vec<String> {
        t.split('.')
            .filter(|s| !s.is_empty())
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    let h = sents(hyp);
    let r = sents(reference);
    if h.is_empty() || r.is_empty() {
        return None;
    }
    let grams = |ss: &[String]| -> HashSet<Vec<String>> {
        let words: Vec<String> = ss
            .iter()
            .flat_map(|s| s.split(' ').map(String::from).collect::<Vec<_>>())
            .collect();
        let mut set = HashSet::new();
        if words.len() >= n {
            for w in words.windows(n) {
                set.insert(w.to_vec());
            }
        }
        set
    };
    let hg = grams(&h);
    let rg = grams(&r);
    let overlap = hg.intersection(&rg).count() as f64;
    let p = if hg.is_empty() {
        0.0
    } else {
        overlap / hg.len() as f64
    };
    let rc = if rg.is_empty() {
        0.0
    } else {
        overlap / rg.len() as f64
    };
    Some(2.0 * ((p * rc) / (p + rc + 1e-8)))
}

/// Per-pair MEIT values (BLEU per pair is pycocoevalcap's per-sentence value).
#[derive(Debug, Clone, Serialize)]
pub struct MeitPair {
    pub id: String,
    pub candidate_text: String,
    pub reference_text: String,
    pub bleu: [f64; 4],
    pub rouge_l: f64,
    pub cider_d_meit: f64,
    pub meteor_nltk: f64,
    pub rouge1_pltrdy: Option<f64>,
    pub rouge2_pltrdy: Option<f64>,
}

/// MEIT metrics averaged over batches.
#[derive(Debug, Clone, Serialize)]
pub struct MeitScores {
    pub batch_size: usize,
    pub n_batches: usize,
    pub bleu: [f64; 4],
    pub rouge_l: f64,
    pub cider_d_meit: f64,
    pub meteor_nltk: f64,
    pub rouge1_pltrdy: f64,
    pub rouge2_pltrdy: f64,
    /// Ids where pltrdy `rouge` raises (empty hypothesis/reference); counted as 0.
    pub pltrdy_errors: Vec<String>,
    pub pairs: Vec<MeitPair>,
}

/// MEIT's protocol with generation batches of `batch_size` (0 = one batch).
pub fn score_meit(pairs: &[Pair], batch_size: usize) -> MeitScores {
    let bs = if batch_size == 0 {
        pairs.len().max(1)
    } else {
        batch_size
    };
    let mut out_pairs = Vec::with_capacity(pairs.len());
    let mut b_bleu = Vec::new();
    let mut b_rl = Vec::new();
    let mut b_cider = Vec::new();
    let mut b_met = Vec::new();
    let mut b_r1 = Vec::new();
    let mut b_r2 = Vec::new();
    let mut errors = Vec::new();
    for batch in pairs.chunks(bs) {
        let items: Vec<(String, Vec<String>)> = batch
            .iter()
            .map(|p| {
                let r = p.references.first().cloned().unwrap_or_default();
                (meit_text(&p.candidate), vec![meit_text(&r)])
            })
            .collect();
        let (cb, per_bleu) = bleu::corpus_bleu(&items);
        let per_rl: Vec<f64> = items.iter().map(|(c, r)| rouge_l_pair(c, r, 1.2)).collect();
        let cider_items: Vec<(String, Vec<String>)> =
            items.iter().map(|(c, r)| (c.clone(), r.clone())).collect();
        let per_cider = cider::meit_cider_batch(&cider_items);
        let mut met = Vec::new();
        let mut r1 = Vec::new();
        let mut r2 = Vec::new();
        for (k, p) in batch.iter().enumerate() {
            let r0 = p.references.first().cloned().unwrap_or_default();
            let m = nltk_meteor::meteor_text(std::slice::from_ref(&r0), &p.candidate);
            let a = pltrdy_rouge_n(&p.candidate, &r0, 1);
            let b = pltrdy_rouge_n(&p.candidate, &r0, 2);
            if a.is_none() || b.is_none() {
                errors.push(p.id.clone());
            }
            met.push(m);
            r1.push(a.unwrap_or(0.0));
            r2.push(b.unwrap_or(0.0));
            out_pairs.push(MeitPair {
                id: p.id.clone(),
                candidate_text: items[k].0.clone(),
                reference_text: items[k].1[0].clone(),
                bleu: per_bleu[k],
                rouge_l: per_rl[k],
                cider_d_meit: per_cider[k],
                meteor_nltk: m,
                rouge1_pltrdy: a,
                rouge2_pltrdy: b,
            });
        }
        b_bleu.push(cb);
        b_rl.push(mean(&per_rl));
        b_cider.push(mean(&per_cider));
        b_met.push(mean(&met));
        b_r1.push(mean(&r1));
        b_r2.push(mean(&r2));
    }
    let mut bleu_avg = [0.0; 4];
    for (k, v) in bleu_avg.iter_mut().enumerate() {
        *v = mean(&b_bleu.iter().map(|b| b[k]).collect::<Vec<_>>());
    }
    MeitScores {
        batch_size: bs,
        n_batches: b_bleu.len(),
        bleu: bleu_avg,
        rouge_l: mean(&b_rl),
        cider_d_meit: mean(&b_cider),
        meteor_nltk: mean(&b_met),
        rouge1_pltrdy: mean(&b_r1),
        rouge2_pltrdy: mean(&b_r2),
        pltrdy_errors: errors,
        pairs: out_pairs,
    }
}
