//! `score_all`: every implemented metric as one JSON report shaped like the `corpus`
//! block of `public_expected.json`. BERTScore needs a model, so it is only computed by
//! [`score_all_full`] when given a [`BertScorer`]; otherwise `bertscore_minilm` is null.

use serde_json::{json, Value};

use crate::metrics::bertscore::{self, BertScorer};
use crate::metrics::coco::score_coco;
use crate::metrics::meit::score_meit;
use crate::metrics::nltk_meteor::score_nltk_meteor;
use crate::metrics::rouge_score::{score_rouge_score, Prf};
use crate::metrics::{nltk_bleu, MetricsError, Pair};

fn prf(p: &Prf) -> Value {
    json!({"p": p.p, "r": p.r, "f": p.f})
}

/// Corpus values of every model-free metric (MEIT block as one batch over all pairs).
pub fn score_all(pairs: &[Pair]) -> Value {
    score_all_with_batch(pairs, 0)
}

/// Like [`score_all`], with MEIT's generation batch size (0 = one batch).
pub fn score_all_with_batch(pairs: &[Pair], meit_batch_size: usize) -> Value {
    model_free(pairs, meit_batch_size)
}

/// Like [`score_all_with_batch`], plus BERTScore (the `bertscore_minilm` block, as in
/// `public_expected.json`) when `bert` is given. Only BERTScore can fail.
pub fn score_all_full(
    pairs: &[Pair],
    meit_batch_size: usize,
    bert: Option<&BertScorer>,
) -> Result<Value, MetricsError> {
    let mut out = model_free(pairs, meit_batch_size);
    if let Some(scorer) = bert {
        let c = scorer.score(pairs)?.corpus;
        out["bertscore_minilm"] = json!({
            "P": c.p,
            "R": c.r,
            "F1": c.f,
            "setting": bertscore::DESCRIPTION,
        });
    }
    Ok(out)
}

fn model_free(pairs: &[Pair], meit_batch_size: usize) -> Value {
    let coco = score_coco(pairs);
    let rs = score_rouge_score(pairs);
    let nm = score_nltk_meteor(pairs);
    let items: Vec<(String, Vec<String>)> = coco
        .pairs
        .iter()
        .map(|p| (p.tokens.candidate.clone(), p.tokens.references.clone()))
        .collect();
    let nb = nltk_bleu::corpus_bleu(&items);
    let meit = score_meit(pairs, meit_batch_size);
    json!({
        "n_pairs": pairs.len(),
        "coco": {
            "BLEU-1": coco.bleu[0],
            "BLEU-2": coco.bleu[1],
            "BLEU-3": coco.bleu[2],
            "BLEU-4": coco.bleu[3],
            "METEOR": coco.meteor,
            "METEOR_mean_of_segments": coco.meteor_mean_of_segments,
            "METEOR_note": "approximate Meteor 1.5 alignment (exact+stem; no synonym/paraphrase)",
            "ROUGE-L": coco.rouge_l,
            "CIDEr-D": coco.cider_d,
            "BLEU_sentence_mean": {
                "BLEU-1": coco.bleu_sentence_mean[0],
                "BLEU-2": coco.bleu_sentence_mean[1],
                "BLEU-3": coco.bleu_sentence_mean[2],
                "BLEU-4": coco.bleu_sentence_mean[3],
            },
        },
        "rouge_score": {
            "rouge1": prf(&rs.corpus.rouge1),
            "rouge2": prf(&rs.corpus.rouge2),
            "rougeL": prf(&rs.corpus.rouge_l),
            "stemmed_f": {
                "rouge1": rs.stemmed_f[0],
                "rouge2": rs.stemmed_f[1],
                "rougeL": rs.stemmed_f[2],
            },
        },
        "nltk": {
            "corpus_bleu_1": nb[0],
            "corpus_bleu_2": nb[1],
            "corpus_bleu_3": nb[2],
            "corpus_bleu_4": nb[3],
            "meteor_mean": nm.meteor_mean,
        },
        "meit": {
            "batch_size": meit.batch_size,
            "BLEU-1": meit.bleu[0],
            "BLEU-2": meit.bleu[1],
            "BLEU-3": meit.bleu[2],
            "BLEU-4": meit.bleu[3],
            "ROUGE-L": meit.rouge_l,
            "CIDEr-D_meit": meit.cider_d_meit,
            "METEOR_nltk": meit.meteor_nltk,
            "ROUGE-1_pltrdy": meit.rouge1_pltrdy,
            "ROUGE-2_pltrdy": meit.rouge2_pltrdy,
            "pltrdy_errors": meit.pltrdy_errors,
            // MEIT's BERTScore is roberta-large, layer 17, baseline-rescaled: not reproducible
            // offline (SPEC §2.6), so it stays null; see `bertscore_minilm` instead.
            "BERTScore": Value::Null,
            "BERTScore_note": "roberta-large L17 rescaled in MEIT: not reproducible offline; see bertscore_minilm",
        },
        "bertscore_minilm": Value::Null,
    })
}
