//! Turns generated reports into the benchmark's numbers (JSON sections of `metrics.json`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::metrics::bertscore::BertScorer;
use crate::metrics::report::score_all_full;
use crate::metrics::{score_all_with_batch, Pair};
use crate::train::data::ptbxl::ScpStatement;

use super::clinical::{categories, f1_by_category, per_statement};
use super::conditions::{condition_for, Condition};
use super::scp_map::ScpMapper;

/// A report system scored on the test fold: the model or a baseline.
pub struct System<'a> {
    pub name: &'a str,
    pub reports: &'a [String],
}

/// Reads a number at a path of keys.
pub fn num(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for k in path {
        cur = cur.get(*k)?;
    }
    cur.as_f64()
}

fn pairs(ids: &[String], cands: &[String], refs: &[String]) -> Vec<Pair> {
    ids.iter()
        .zip(cands)
        .zip(refs)
        .map(|((id, c), r)| Pair {
            id: id.clone(),
            candidate: c.clone(),
            references: vec![r.clone()],
        })
        .collect()
}

/// Word-overlap metrics (COCO, rouge-score, NLTK, MEIT) of each system against the references,
/// plus BERTScore (MiniLM) when a scorer is given.
pub fn nlg(
    ids: &[String],
    refs: &[String],
    systems: &[System],
    meit_batch: usize,
    bert: Option<&BertScorer>,
) -> Value {
    let mut out = serde_json::Map::new();
    for s in systems {
        let p = pairs(ids, s.reports, refs);
        let scores = match score_all_full(&p, meit_batch, bert) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("BERTScore failed for {}: {e}", s.name);
                score_all_with_batch(&p, meit_batch)
            }
        };
        out.insert(s.name.to_string(), scores);
    }
    Value::Object(out)
}

/// Clinical F1 of each system: against the mapped reference reports and against the
/// ground-truth `scp_codes`; plus the mapper's own precision/recall.
pub fn clinical(
    mapper: &ScpMapper,
    statements: &[ScpStatement],
    refs: &[String],
    scp: &[BTreeSet<String>],
    systems: &[System],
    all_rows: &[(String, BTreeSet<String>)],
) -> Value {
    let cats = categories(statements);
    let mapped_refs: Vec<BTreeSet<String>> = refs.iter().map(|r| mapper.map(r)).collect();
    let mut by_system = serde_json::Map::new();
    for s in systems {
        let pred: Vec<BTreeSet<String>> = s.reports.iter().map(|r| mapper.map(r)).collect();
        by_system.insert(
            s.name.to_string(),
            json!({
                "vs_mapped_reference": f1_by_category(&pred, &mapped_refs, &cats),
                "vs_scp_codes": f1_by_category(&pred, scp, &cats),
            }),
        );
    }
    let all_mapped: Vec<BTreeSet<String>> = all_rows.iter().map(|(r, _)| mapper.map(r)).collect();
    let all_truth: Vec<BTreeSet<String>> = all_rows.iter().map(|(_, s)| s.clone()).collect();
    json!({
        "definition": "micro F1 = 2TP/(2TP+FP+FN) over records x statements of the category; \
                       macro F1 = mean per-statement F1 over statements present in the references",
        "systems": by_system,
        "mapper_quality": {
            "test_fold": f1_by_category(&mapped_refs, scp, &cats),
            "all_database_rows": f1_by_category(&all_mapped, &all_truth, &cats),
            "all_database_rows_n": all_rows.len(),
            "all_database_rows_per_statement": per_statement(&all_mapped, &all_truth),
            "note": "mapped English reference report vs PTB-XL scp_codes (keys, any likelihood)",
        },
    })
}

/// One zero-shot result row: dataset, its labels and the generated report.
pub struct ZeroShotOutcome<'a> {
    pub dataset: &'a str,
    pub labels: &'a [String],
    pub report: Option<&'a str>,
}

/// Per dataset: how often each labelled condition is stated; and how often a condition of the
/// dataset's label vocabulary is stated for a record that does not carry it.
pub fn zeroshot(mapper: &ScpMapper, rows: &[ZeroShotOutcome]) -> Value {
    #[derive(Default)]
    struct Acc {
        records: usize,
        rejected: usize,
        hits: usize,
        labels: usize,
        unmapped: BTreeSet<String>,
        per: BTreeMap<String, (usize, usize)>,
        vocab: BTreeMap<String, Condition>,
        false_mentions: usize,
        negatives: usize,
    }
    let mut acc: BTreeMap<&str, Acc> = BTreeMap::new();
    for r in rows {
        let a = acc.entry(r.dataset).or_default();
        for l in r.labels {
            if let Some(c) = condition_for(l) {
                a.vocab.insert(c.name.to_string(), c);
            }
        }
    }
    for r in rows {
        let Some(a) = acc.get_mut(r.dataset) else {
            continue;
        };
        a.records += 1;
        let Some(report) = r.report else {
            a.rejected += 1;
            continue;
        };
        let mapped = mapper.map(report);
        let mut own = BTreeSet::new();
        for l in r.labels {
            match condition_for(l) {
                Some(c) => {
                    own.insert(c.name.to_string());
                    let stated = c.stated(report, &mapped);
                    let e = a.per.entry(c.name.to_string()).or_default();
                    e.0 += 1;
                    a.labels += 1;
                    if stated {
                        e.1 += 1;
                        a.hits += 1;
                    }
                }
                None => {
                    a.unmapped.insert(l.clone());
                }
            }
        }
        for (name, c) in &a.vocab {
            if !own.contains(name) {
                a.negatives += 1;
                if c.stated(report, &mapped) {
                    a.false_mentions += 1;
                }
            }
        }
    }
    let mut out = serde_json::Map::new();
    for (ds, a) in acc {
        let per: serde_json::Map<String, Value> = a
            .per
            .iter()
            .map(|(k, (n, hit))| {
                (
                    k.clone(),
                    json!({"n": n, "stated": hit, "rate": *hit as f64 / (*n).max(1) as f64}),
                )
            })
            .collect();
        out.insert(
            ds.to_string(),
            json!({
                "records": a.records,
                "rejected": a.rejected,
                "labels_scored": a.labels,
                "stated": a.hits,
                "stated_rate": (a.labels > 0).then(|| a.hits as f64 / a.labels as f64),
                "false_mention_rate": (a.negatives > 0).then(|| a.false_mentions as f64 / a.negatives as f64),
                "unmapped_labels": a.unmapped,
                "per_condition": per,
            }),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroshot_rates() {
        let m = ScpMapper::new();
        let l1 = vec!["RBBB".to_string()];
        let l2 = vec!["SB".to_string()];
        let rows = [
            ZeroShotOutcome {
                dataset: "d",
                labels: &l1,
                report: Some("sinus rhythm. right bundle branch block."),
            },
            ZeroShotOutcome {
                dataset: "d",
                labels: &l2,
                report: Some("right bundle branch block."),
            },
            ZeroShotOutcome {
                dataset: "d",
                labels: &l2,
                report: None,
            },
        ];
        let v = zeroshot(&m, &rows);
        assert_eq!(num(&v, &["d", "stated_rate"]), Some(0.5));
        assert_eq!(v["d"]["rejected"], 1);
        // record 1 (RBBB) does not state SB; record 2 (SB) states RBBB -> 1 of 2
        assert_eq!(num(&v, &["d", "false_mention_rate"]), Some(0.5));
    }
}
