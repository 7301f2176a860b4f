//! Integration tests of `train::data` on the committed fixtures (and, ignored, the real data).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use meit::train::data::ptbxl::Ptbxl;
use meit::train::data::{
    coverage, mimic, prepare_mimic, prepare_ptbxl, read_jsonl, write_jsonl, Language, Source, Split,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn ptbxl_loader_reads_all_rows_and_finds_records_on_disk() {
    let data = Ptbxl::load(&fixture("ptbxl-mini")).expect("load");
    assert_eq!(data.rows.len(), 14);
    assert!(data
        .statements
        .iter()
        .any(|s| s.code == "NORM" && s.diagnostic));
    let first = &data.rows[0];
    assert_eq!(
        (first.ecg_id, first.patient_id, first.strat_fold),
        (1, Some(15709), 3)
    );
    assert_eq!(first.scp_codes[0], ("NORM".to_string(), 100.0));
    assert_eq!(first.filename_hr, "records500/00000/00001_hr");
    let on_disk: Vec<u32> = data.on_disk().iter().map(|r| r.ecg_id).collect();
    assert_eq!(on_disk, vec![9, 24, 195]);
}

#[test]
fn prepare_ptbxl_builds_translated_examples_and_stats() {
    let (examples, stats) = prepare_ptbxl(&fixture("ptbxl-mini"), 7).expect("prepare");
    assert_eq!(examples.len(), 3);
    let by_id: HashMap<u64, _> = examples.iter().map(|e| (e.id, e)).collect();
    assert_eq!(by_id[&24].split, Split::Train);
    assert_eq!(by_id[&195].split, Split::Validation);
    assert_eq!(by_id[&9].split, Split::Test);
    let e = by_id[&195];
    assert_eq!(e.record, "records500/00000/00195_hr");
    assert_eq!(
        e.report,
        "sinus rhythm. left axis deviation. right bundle branch block."
    );
    assert_eq!(e.language, Language::De);
    assert!(e.fully_translated && e.source == Source::Ptbxl);
    assert_eq!(stats.rows_total, 14);
    assert_eq!(stats.per_split[&Split::Train], 1);
    assert_eq!(stats.coverage_all.reports, 14);
    assert_eq!(stats.coverage_train.reports, 1);
    assert!(stats.max_report_words >= 5 && stats.mean_report_words > 3.0);
    let (again, _) = prepare_ptbxl(&fixture("ptbxl-mini"), 7).expect("prepare");
    assert_eq!(examples, again, "seeded");
}

#[test]
fn jsonl_round_trip() {
    let (examples, _) = prepare_ptbxl(&fixture("ptbxl-mini"), 1).expect("prepare");
    let path = std::env::temp_dir().join(format!("trainprep-{}.jsonl", std::process::id()));
    write_jsonl(&path, &examples).expect("write");
    let back = read_jsonl(&path).expect("read");
    std::fs::remove_file(&path).ok();
    assert_eq!(back, examples);
}

#[test]
fn ptbxl_errors_name_file_row_and_field() {
    let dir = std::env::temp_dir().join(format!("trainprep-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let src = std::fs::read_to_string(fixture("ptbxl-mini/ptbxl_database.csv")).expect("read");
    let bad = src.replacen(
        "{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}",
        "{'NORM' 100.0}",
        1,
    );
    std::fs::write(dir.join("ptbxl_database.csv"), bad).expect("write");
    let err = meit::train::data::ptbxl::load_database(&dir.join("ptbxl_database.csv"))
        .expect_err("bad scp_codes");
    std::fs::remove_dir_all(&dir).ok();
    let msg = err.to_string();
    assert!(
        msg.contains("ptbxl_database.csv") && msg.contains("row 2") && msg.contains("scp_codes"),
        "{msg}"
    );
}

#[test]
fn mimic_fixture_joins_cleans_and_splits_by_subject() {
    let (records, skipped) = mimic::load(&fixture("mimic")).expect("load");
    assert_eq!((records.len(), skipped), (11, 2));
    let by_study: HashMap<u64, &mimic::MimicRecord> =
        records.iter().map(|r| (r.study_id, r)).collect();
    assert_eq!(by_study[&90000001].report, "sinus rhythm. normal ecg");
    assert_eq!(
        by_study[&90000003].report,
        "atrial fibrillation with rapid ventricular response. left axis deviation. abnormal ecg"
    );
    assert_eq!(
        by_study[&90000004].report,
        "poor data quality, interpretation may be adversely affected. sinus rhythm. normal ecg"
    );
    assert_eq!(
        by_study[&90000006].report,
        "sinus rhythm. prolonged qt interval. qtc 492 ms. abnormal ecg"
    );
    assert_eq!(
        by_study[&90000007].report,
        "sinus rhythm with pacs. right bundle branch block. abnormal ecg"
    );
    for r in &records {
        assert!(!r.report.contains("***") && !r.report.contains('=') && !r.report.contains("ekg"));
        assert_eq!(r.report, r.report.to_lowercase());
    }

    let (examples, stats) = prepare_mimic(&fixture("mimic"), 3).expect("prepare");
    assert_eq!(examples.len(), 11);
    assert_eq!(stats.skipped, 2);
    let mut split_of: HashMap<u64, HashSet<Split>> = HashMap::new();
    for e in &examples {
        assert_eq!(e.source, Source::Mimic);
        assert_eq!(e.language, Language::En);
        split_of
            .entry(e.subject.expect("subject"))
            .or_default()
            .insert(e.split);
    }
    assert_eq!(split_of.len(), 5);
    assert!(
        split_of.values().all(|s| s.len() == 1),
        "a subject in two splits: {split_of:?}"
    );
    for seed in 0..20 {
        let (ex, _) = prepare_mimic(&fixture("mimic"), seed).expect("prepare");
        let mut seen: HashMap<u64, Split> = HashMap::new();
        for e in ex {
            let s = e.subject.expect("subject");
            assert_eq!(*seen.entry(s).or_insert(e.split), e.split, "seed {seed}");
        }
    }
}

/// Coverage over the real PTB-XL copy; prints the figures.
/// `cargo test --release -- --ignored --nocapture real_ptbxl`
#[test]
#[ignore = "needs ../shared/data/ptbxl"]
fn real_ptbxl_translation_coverage() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ptbxl");
    let data = Ptbxl::load(&root).expect("load");
    assert_eq!(data.rows.len(), 21_837);
    let all = coverage(data.rows.iter().map(|r| r.report.as_str()));
    let on_disk = data.on_disk();
    let train = coverage(
        on_disk
            .iter()
            .filter(|r| r.split() == Split::Train)
            .map(|r| r.report.as_str()),
    );
    println!(
        "all rows: {:.4} of {} ({:?})",
        all.share, all.reports, all.languages
    );
    println!(
        "on-disk train folds: {:.4} of {}",
        train.share, train.reports
    );
    println!("top untranslated: {:?}", all.top_untranslated);
    assert!(all.share >= 0.95 && train.share >= 0.95);
    let (examples, stats) = prepare_ptbxl(&root, 0).expect("prepare");
    assert_eq!(examples.len(), on_disk.len());
    println!("{}", serde_json::to_string_pretty(&stats).expect("json"));
}
