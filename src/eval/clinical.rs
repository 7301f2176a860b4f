//! Clinical correctness: multi-label F1 over PTB-XL statements, per statement category.
//!
//! For each record we have a predicted statement set and a reference set. Per category
//! (diagnostic, form, rhythm — the `1.0` columns of `scp_statements.csv` — and all 71):
//! - **micro F1** = `2 TP / (2 TP + FP + FN)` summed over records and the category's
//!   statements (`null` when there is nothing to find and nothing was found);
//! - **macro F1** = mean over the category's statements that occur in at least one reference
//!   set of that statement's own F1 (statements never referenced are left out, so a category
//!   with rare statements is not inflated by trivial zeros or ones);
//! - micro precision and recall alongside.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::train::data::ptbxl::ScpStatement;

/// Statement categories scored.
pub const CATEGORIES: [&str; 4] = ["diagnostic", "form", "rhythm", "all"];

/// Statement codes per category, from `scp_statements.csv`.
pub fn categories(statements: &[ScpStatement]) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut m: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for s in statements {
        let code = s.code.clone();
        if s.diagnostic {
            m.entry("diagnostic").or_default().insert(code.clone());
        }
        if s.form {
            m.entry("form").or_default().insert(code.clone());
        }
        if s.rhythm {
            m.entry("rhythm").or_default().insert(code.clone());
        }
        m.entry("all").or_default().insert(code);
    }
    m
}

/// Scores of one category.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct F1Scores {
    pub micro_f1: Option<f64>,
    pub micro_precision: Option<f64>,
    pub micro_recall: Option<f64>,
    pub macro_f1: Option<f64>,
    /// Statements with support in the references (the macro average's denominator).
    pub macro_statements: usize,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// F1 of predicted vs reference sets over one statement universe.
pub fn f1(
    pred: &[BTreeSet<String>],
    refs: &[BTreeSet<String>],
    universe: &BTreeSet<String>,
) -> F1Scores {
    let mut per: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (p, r) in pred.iter().zip(refs) {
        for code in universe {
            let (inp, inr) = (p.contains(code), r.contains(code));
            let e = per.entry(code.as_str()).or_default();
            match (inp, inr) {
                (true, true) => {
                    tp += 1;
                    e.0 += 1;
                }
                (true, false) => {
                    fp += 1;
                    e.1 += 1;
                }
                (false, true) => {
                    fn_ += 1;
                    e.2 += 1;
                }
                (false, false) => {}
            }
        }
    }
    let supported: Vec<f64> = per
        .values()
        .filter(|(t, _, f)| t + f > 0)
        .map(|&(t, p, f)| 2.0 * t as f64 / (2 * t + p + f) as f64)
        .collect();
    F1Scores {
        micro_f1: ratio(2 * tp, 2 * tp + fp + fn_),
        micro_precision: ratio(tp, tp + fp),
        micro_recall: ratio(tp, tp + fn_),
        macro_f1: (!supported.is_empty())
            .then(|| supported.iter().sum::<f64>() / supported.len() as f64),
        macro_statements: supported.len(),
        tp,
        fp,
        fn_,
    }
}

/// F1 per category.
pub fn f1_by_category(
    pred: &[BTreeSet<String>],
    refs: &[BTreeSet<String>],
    cats: &BTreeMap<&'static str, BTreeSet<String>>,
) -> BTreeMap<String, F1Scores> {
    cats.iter()
        .map(|(name, universe)| (name.to_string(), f1(pred, refs, universe)))
        .collect()
}

/// Per-statement counts and precision/recall (for the mapper's own check).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StatementScore {
    pub support: usize,
    pub predicted: usize,
    pub tp: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

/// [`StatementScore`] of every statement that is referenced or predicted.
pub fn per_statement(
    pred: &[BTreeSet<String>],
    refs: &[BTreeSet<String>],
) -> BTreeMap<String, StatementScore> {
    let mut m: BTreeMap<String, StatementScore> = BTreeMap::new();
    for (p, r) in pred.iter().zip(refs) {
        for c in r {
            m.entry(c.clone()).or_default().support += 1;
        }
        for c in p {
            let e = m.entry(c.clone()).or_default();
            e.predicted += 1;
            if r.contains(c) {
                e.tp += 1;
            }
        }
    }
    for s in m.values_mut() {
        s.precision = ratio(s.tp, s.predicted);
        s.recall = ratio(s.tp, s.support);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn micro_and_macro() {
        let u = set(&["A", "B", "C"]);
        let pred = vec![set(&["A"]), set(&["A", "B"]), set(&[])];
        let refs = vec![set(&["A"]), set(&["B"]), set(&["B"])];
        let s = f1(&pred, &refs, &u);
        // A: tp1 fp1 -> 2/3; B: tp1 fn1 -> 2/3; C: no support
        assert_eq!((s.tp, s.fp, s.fn_), (2, 1, 1));
        assert!((s.micro_f1.unwrap() - 4.0 / 6.0).abs() < 1e-12);
        assert!((s.macro_f1.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.macro_statements, 2);
    }

    #[test]
    fn empty_is_none() {
        let s = f1(&[set(&[])], &[set(&[])], &set(&["A"]));
        assert_eq!(s.micro_f1, None);
        assert_eq!(s.macro_f1, None);
    }

    #[test]
    fn perfect() {
        let u = set(&["A", "B"]);
        let s = f1(&[set(&["A"]), set(&["B"])], &[set(&["A"]), set(&["B"])], &u);
        assert_eq!(s.micro_f1, Some(1.0));
        assert_eq!(s.macro_f1, Some(1.0));
    }
}
