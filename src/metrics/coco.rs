//! The COCO caption protocol (pycocoevalcap 1.2): PTB tokens, BLEU, METEOR, ROUGE-L, CIDEr-D.

use serde::Serialize;

use crate::metrics::meteor_stats::MeteorStats;
use crate::metrics::{bleu, cider, meteor_stats, ptb, rouge_l, Pair};

/// Tokenized pair as pycocoevalcap sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CocoTokens {
    pub candidate: String,
    pub references: Vec<String>,
}

/// Per-pair COCO values.
#[derive(Debug, Clone, Serialize)]
pub struct CocoPair {
    pub id: String,
    pub tokens: CocoTokens,
    pub bleu: [f64; 4],
    pub meteor: f64,
    pub rouge_l: f64,
    pub cider_d: f64,
    pub meteor_stats: MeteorStats,
}

/// Corpus and per-pair COCO values.
#[derive(Debug, Clone, Serialize)]
pub struct CocoScores {
    /// Corpus BLEU-1..4.
    pub bleu: [f64; 4],
    /// Corpus METEOR from summed statistics (what COCOEvalCap reports).
    pub meteor: f64,
    /// Mean of per-segment METEOR scores.
    pub meteor_mean_of_segments: f64,
    pub rouge_l: f64,
    pub cider_d: f64,
    /// Mean of per-pair BLEU-1..4 (diagnostic).
    pub bleu_sentence_mean: [f64; 4],
    pub pairs: Vec<CocoPair>,
}

/// Tokenizes every pair with the PTB tokenizer emulation.
pub fn tokenize_pairs(pairs: &[Pair]) -> Vec<CocoTokens> {
    pairs
        .iter()
        .map(|p| CocoTokens {
            candidate: ptb::coco_tokenize(&p.candidate),
            references: p.references.iter().map(|r| ptb::coco_tokenize(r)).collect(),
        })
        .collect()
}

/// Scores already-tokenized pairs; `meteor` supplies the per-pair Meteor statistics.
pub fn score_coco_tokens(
    ids: &[String],
    toks: &[CocoTokens],
    meteor: &[MeteorStats],
) -> CocoScores {
    let items: Vec<(String, Vec<String>)> = toks
        .iter()
        .map(|t| (t.candidate.clone(), t.references.clone()))
        .collect();
    let (b, bper) = bleu::corpus_bleu(&items);
    let (rl, rlper) = rouge_l::corpus_rouge_l(&items);
    let (cd, cdper) = cider::corpus_cider_d(&items);
    let (m, mmean, mper) = meteor_stats::corpus_meteor(meteor);
    let mut bmean = [0.0; 4];
    for k in 0..4 {
        let v: Vec<f64> = bper.iter().map(|x| x[k]).collect();
        bmean[k] = rouge_l::mean(&v);
    }
    let pairs = (0..toks.len())
        .map(|i| CocoPair {
            id: ids.get(i).cloned().unwrap_or_default(),
            tokens: toks[i].clone(),
            bleu: bper[i],
            meteor: mper.get(i).copied().unwrap_or(0.0),
            rouge_l: rlper[i],
            cider_d: cdper[i],
            meteor_stats: meteor.get(i).copied().unwrap_or_default(),
        })
        .collect();
    CocoScores {
        bleu: b,
        meteor: m,
        meteor_mean_of_segments: mmean,
        rouge_l: rl,
        cider_d: cd,
        bleu_sentence_mean: bmean,
        pairs,
    }
}

/// Full COCO protocol on raw pairs (own tokenizer and own Meteor alignment).
pub fn score_coco(pairs: &[Pair]) -> CocoScores {
    let toks = tokenize_pairs(pairs);
    let meteor: Vec<MeteorStats> = toks
        .iter()
        .map(|t| crate::metrics::meteor_align::meteor_stats(&t.candidate, &t.references))
        .collect();
    let ids: Vec<String> = pairs.iter().map(|p| p.id.clone()).collect();
    score_coco_tokens(&ids, &toks, &meteor)
}
