use super::*;

fn en(report: &str) -> String {
    let t = translate(report);
    assert!(t.fully_translated, "{report:?} -> {t:?}");
    t.english
}

#[test]
fn translates_frequent_german_reports() {
    for (de, want) in [
        (
            "sinusrhythmus periphere niederspannung",
            "sinus rhythm. low limb lead voltage.",
        ),
        (
            "sinusbradykardie sonst normales ekg",
            "sinus bradycardia. otherwise normal ecg.",
        ),
        (
            "sinusrhythmus lagetyp normal normales ekg 4.46                          unbestÄtigter bericht",
            "sinus rhythm. normal axis. normal ecg. unconfirmed report.",
        ),
        (
            "sinusrhythmus lagetyp normal qrs(t) abnorm    inferiorer infarkt     alter unbest. 4.46                          unbestÄtigter bericht",
            "sinus rhythm. normal axis. qrs(t) abnormal. inferior infarction, age undetermined. unconfirmed report.",
        ),
        (
            "sinusrhythmus lagetyp normal unvollstÄndiger rechtsschenkelblock sonst normales ekg",
            "sinus rhythm. normal axis. incomplete right bundle branch block. otherwise normal ecg.",
        ),
        (
            "vorhofflimmern/-flattern lagetyp normal 4.46                          unbestÄtigter bericht",
            "atrial fibrillation/flutter. normal axis. unconfirmed report.",
        ),
    ] {
        assert_eq!(en(de), want, "{de}");
    }
}

#[test]
fn translates_swedish_reports() {
    assert_eq!(en("sinusrytm normalt ekg"), "sinus rhythm. normal ecg.");
    assert_eq!(detect_language("sinusrytm normalt ekg"), Language::Sv);
    let t = en("sinusrytm vänster el-axel");
    assert_eq!(t, "sinus rhythm. left axis deviation.");
}

#[test]
fn keeps_english_reports() {
    let r = "sinus rhythm. left axis deviation. left anterior fascicular block.";
    assert_eq!(en(r), r);
    assert_eq!(detect_language(r), Language::En);
    assert_eq!(detect_language("sinusrhythmus normales ekg"), Language::De);
}

#[test]
fn flags_unknown_german_words() {
    let t = translate("sinusrhythmus quatschwort normales ekg");
    assert!(!t.fully_translated);
    assert_eq!(t.untranslated, vec!["quatschwort".to_string()]);
}

#[test]
fn ischaemia_statement_reads_well() {
    let t = en(
        "sinusrhythmus lagetyp normal st & t abnorm, wahrscheinlich    anterolaterale ischÄmie oder linksbelastung",
    );
    assert_eq!(
        t,
        "sinus rhythm. normal axis. st & t abnormal, probably anterolateral ischaemia or left ventricular strain."
    );
}

#[test]
fn coverage_counts_reports_and_words() {
    let c = coverage([
        "sinusrhythmus normales ekg",
        "sinus rhythm. normal ecg.",
        "quatschwort x quatschwort",
    ]);
    assert_eq!((c.reports, c.fully_translated), (3, 2));
    assert!((c.share - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(c.top_untranslated[0].0, "quatschwort");
}

#[test]
fn builtin_vocab_has_no_marker_words() {
    let t = Translator::builtin();
    assert!(t.table().len() > 500);
    for w in ["sinusrhythmus", "lagetyp", "ekg", "sinusrytm", "vänster"] {
        assert!(!t.is_english_word(w), "{w}");
    }
    for w in ["sinus", "rhythm", "ecg", "v1", "avl", "ischaemia"] {
        assert!(t.is_english_word(w), "{w}");
    }
}
