//! Labelled conditions of the zero-shot sets -> "is it stated in the report?".
//!
//! A condition is stated when the [`ScpMapper`] finds one of its PTB-XL statements in the
//! report, or one of its extra phrases occurs (for conditions PTB-XL has no statement for,
//! e.g. poor R-wave progression or escape beats). Labels are the CinC 2021 `dx_names`, the
//! CPSC 2018 classes and the CODE-15% columns; matching of label names is case-insensitive.

use std::collections::BTreeSet;

use super::scp_map::ScpMapper;

/// How a labelled condition is recognised in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    /// Canonical name used in the tables.
    pub name: &'static str,
    /// Any of these statements found by the mapper counts.
    pub codes: &'static [&'static str],
    /// Any of these phrases (mapper syntax) counts too.
    pub phrases: &'static [&'static str],
}

const fn c(
    name: &'static str,
    codes: &'static [&'static str],
    phrases: &'static [&'static str],
) -> Condition {
    Condition {
        name,
        codes,
        phrases,
    }
}

const RBBB: Condition = c("right bundle branch block", &["CRBBB", "IRBBB"], &[]);
const LBBB: Condition = c("left bundle branch block", &["CLBBB", "ILBBB"], &[]);
const AVB1: Condition = c("first degree av block", &["1AVB", "LPR"], &[]);
const SB: Condition = c("sinus bradycardia", &["SBRAD"], &[]);
const ST: Condition = c("sinus tachycardia", &["STACH"], &[]);
const AF: Condition = c("atrial fibrillation", &["AFIB", "AFLT"], &[]);
const NORMAL: Condition = c("normal ecg", &["NORM"], &[]);
const LAE: Condition = c("left atrial enlargement", &["LAO/LAE"], &[]);
const PAC: Condition = c("premature atrial contraction", &["PAC", "PRC(S)"], &[]);
const PVC: Condition = c("premature ventricular contraction", &["PVC", "PRC(S)"], &[]);
const STT: Condition = c("st-t changes", &["NST_", "STD_", "STE_", "NDT"], &[]);
const TABN: Condition = c(
    "t wave abnormal",
    &["TAB_", "NDT", "NT_", "INVT", "LOWT"],
    &[],
);
const LVH: Condition = c("left ventricular hypertrophy", &["LVH", "VCLVH"], &[]);
const LVHV: Condition = c(
    "left ventricular high voltage",
    &["VCLVH", "HVOLT", "LVH"],
    &[],
);

/// The condition for a label (CinC `dx_names`, CPSC class, CODE-15% column), if known.
pub fn condition_for(label: &str) -> Option<Condition> {
    let l = label.trim().to_lowercase();
    Some(match l.as_str() {
        "right bundle branch block" | "rbbb" | "complete right bundle branch block" => RBBB,
        "left bundle branch block" | "lbbb" | "complete left bundle branch block" => LBBB,
        "1 degree atrioventricular block"
        | "1davb"
        | "1st degree av block"
        | "first degree av block" => AVB1,
        "sinus bradycardia" | "sb" => SB,
        "sinus tachycardia" | "st" => ST,
        "atrial fibrillation" | "af" => AF,
        "normal" | "normal_ecg" | "sinus rhythm normal" => NORMAL,
        "sinus rhythm" => c("sinus rhythm", &["SR"], &[]),
        "left atrial enlargement" | "left atrial abnormality" => LAE,
        "premature atrial contraction" | "blocked premature atrial contraction" => PAC,
        "premature ventricular contractions" | "premature ventricular contraction" => PVC,
        "prolonged qt interval" => c("prolonged qt", &["LNGQT"], &[]),
        "left ventricular hypertrophy" => LVH,
        "left ventricular high voltage" => LVHV,
        "right ventricular hypertrophy" => c("right ventricular hypertrophy", &["RVH"], &[]),
        "nonspecific st t abnormality" | "s t changes" | "st interval abnormal" => STT,
        "st-segment depression" | "st depression" => {
            c("st depression", &["STD_"], &["st * depress"])
        }
        "st-segment elevation" | "st elevation" => c("st elevation", &["STE_"], &[]),
        "t wave abnormal" => TABN,
        "t wave inversion" => c("t wave inversion", &["INVT"], &[]),
        "anterior ischemia" => c(
            "anterior ischaemia",
            &["ISCAN", "ISCAS", "ISCAL", "INJAS", "INJAL"],
            &[],
        ),
        "nonspecific intraventricular conduction disorder" => {
            c("intraventricular conduction disorder", &["IVCD"], &[])
        }
        "sinus arrhythmia" => c("sinus arrhythmia", &["SARRH"], &[]),
        "atrial tachycardia" => c("atrial tachycardia", &["SVTAC", "PSVT"], &[]),
        "atrial escape beat" => c("atrial escape beat", &[], &["escape"]),
        "poor r wave progression" => c(
            "poor r wave progression",
            &[],
            &[
                "poor r wave progression",
                "delayed r wave progression",
                "r progression",
            ],
        ),
        "atrial flutter" => c("atrial flutter", &["AFLT"], &[]),
        _ => return None,
    })
}

impl Condition {
    /// Whether the condition is stated, given the report and its mapped statements.
    pub fn stated(&self, report: &str, mapped: &BTreeSet<String>) -> bool {
        self.codes.iter().any(|c| mapped.contains(*c))
            || (!self.phrases.is_empty() && ScpMapper::mentions(report, self.phrases))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_in_the_shared_sets_is_known() {
        for l in [
            "left atrial enlargement",
            "sinus bradycardia",
            "prolonged qt interval",
            "nonspecific st t abnormality",
            "anterior ischemia",
            "premature atrial contraction",
            "poor R wave Progression",
            "st-segment depression",
            "1 degree atrioventricular block",
            "normal",
            "1dAVb",
            "RBBB",
            "LBBB",
            "SB",
            "ST",
            "AF",
            "normal_ecg",
            "atrial escape beat",
            "s t changes",
        ] {
            assert!(condition_for(l).is_some(), "{l}");
        }
        assert!(condition_for("is_male").is_none());
    }

    #[test]
    fn stated_in_reports() {
        let m = ScpMapper::new();
        let r = "sinus rhythm. complete right bundle branch block.";
        let rbbb = condition_for("RBBB").unwrap();
        assert!(rbbb.stated(r, &m.map(r)));
        let r2 = "sinus rhythm. normal ecg.";
        assert!(!rbbb.stated(r2, &m.map(r2)));
        let prwp = condition_for("poor r wave progression").unwrap();
        let r3 = "sinus rhythm. poor r wave progression";
        assert!(prwp.stated(r3, &m.map(r3)));
        let sb = condition_for("sinus bradycardia").unwrap();
        let r4 = "sinus bradycardia. otherwise normal ecg.";
        assert!(sb.stated(r4, &m.map(r4)));
    }
}
