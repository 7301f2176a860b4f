//! `trainer eval` end to end on fixture records (PTB-XL test record 00009, training record
//! 00024, CinC Georgia E07500) with the untrained default model and 2 tokens per report: the
//! point is that the plumbing writes every file with finite numbers. Plus the real-data
//! checks of the mapper and the MATLAB 5 reader (ignored: they need ../shared/data).

use std::path::{Path, PathBuf};

use meit::eval::scp_map::ScpMapper;
use meit::eval::{EvalOptions, Tasks};
use meit::model::bundle::Precision;

use super::common::fixture;

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
}

/// A PTB-XL root (database excerpt + two records) and a CinC root in a fresh temp dir.
fn fixture_roots() -> (PathBuf, PathBuf, PathBuf) {
    let base = std::env::temp_dir().join(format!("meit-eval-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let ptbxl = base.join("ptbxl");
    for f in ["ptbxl_database.csv", "scp_statements.csv"] {
        copy(&fixture("ptbxl-mini").join(f), &ptbxl.join(f));
    }
    for r in ["00009_hr", "00024_hr"] {
        for ext in ["hea", "dat"] {
            let rel = format!("records500/00000/{r}.{ext}");
            copy(&fixture("ptbxl").join(&rel), &ptbxl.join(&rel));
        }
    }
    let other = base.join("other");
    for ext in ["hea", "mat"] {
        let rel = format!("georgia/E07500.{ext}");
        copy(
            &fixture("cinc2021").join(&rel),
            &other.join("cinc2021").join(&rel),
        );
    }
    std::fs::write(
        other.join("cinc2021/pairs_labels.csv"),
        "record,source,fs,n_samples,n_leads,age,sex,dx_snomed,dx_names\n\
         georgia/E07500,georgia,500,5000,12,78,Male,67741000119109;426177001,left atrial enlargement; sinus bradycardia\n",
    )
    .expect("write labels");
    (base, ptbxl, other)
}

fn finite_numbers(v: &serde_json::Value, path: &str, bad: &mut Vec<String>) {
    match v {
        serde_json::Value::Number(n) if !n.as_f64().is_some_and(f64::is_finite) => {
            bad.push(path.to_string());
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                finite_numbers(x, &format!("{path}[{i}]"), bad);
            }
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                finite_numbers(x, &format!("{path}.{k}"), bad);
            }
        }
        _ => {}
    }
}

#[test]
fn eval_pipeline_writes_all_outputs() {
    let (base, ptbxl, other) = fixture_roots();
    let out = base.join("run");
    let opts = EvalOptions {
        ptbxl,
        out: out.clone(),
        model: "default".into(),
        adapter: None,
        precision: Precision::F32,
        kv_cache: None,
        instruction: meit::train::data::DEFAULT_INSTRUCTION.into(),
        limit: Some(2),
        max_tokens: 2,
        tasks: Tasks::parse("quality,zeroshot,noise").expect("tasks"),
        other: Some(other),
        noise_limit: None,
        train_limit: None,
        zeroshot_limit: None,
        seed: 0,
        meit_batch: 0,
        max_running: 16,
    };
    let summary = meit::eval::run(&opts).expect("eval run");
    for f in [
        "outputs.jsonl",
        "metrics.json",
        "results.md",
        "robustness.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // one test record: 1 quality + 9 noise levels + 1 zero-shot line
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("outputs.jsonl"))
        .expect("outputs")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 11);
    assert!(lines.iter().all(|l| l["generated"].is_string()));
    assert_eq!(lines[0]["record"], "records500/00000/00009_hr");
    assert_eq!(lines[10]["task"], "zeroshot");
    let m = &summary.metrics;
    let mut bad = Vec::new();
    finite_numbers(m, "metrics", &mut bad);
    assert!(bad.is_empty(), "non-finite: {bad:?}");
    assert!(m["quality"]["model"]["coco"]["BLEU-1"].is_number());
    assert!(m["quality"]["baseline_retrieval"]["coco"]["BLEU-1"].is_number());
    assert!(m["quality"]["model"]["meit"]["BERTScore"].is_null());
    assert_eq!(m["noise"]["levels"].as_array().map(Vec::len), Some(10));
    assert_eq!(m["zeroshot"]["datasets"]["georgia"]["records"], 1);
    // the retrieval baseline copies the only training record's report
    assert_eq!(
        m["baselines"]["retrieval_records"][0],
        "records500/00000/00024_hr"
    );
    let md = std::fs::read_to_string(out.join("results.md")).expect("md");
    for h in [
        "## Report quality",
        "## Clinical correctness",
        "## Noise robustness",
        "## Zero-shot",
    ] {
        assert!(md.contains(h), "{h}");
    }
    let svg = std::fs::read_to_string(out.join("robustness.svg")).expect("svg");
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<g ").count(), svg.matches("</g>").count());
    assert_eq!(svg.matches("<g ").count(), 12);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn tasks_parse() {
    assert!(Tasks::parse("quality").is_ok());
    assert!(Tasks::parse("").is_err());
    assert!(Tasks::parse("quality,bogus").is_err());
}

/// The mapper on real translated references of the test fold (needs ../shared/data).
#[test]
#[ignore]
fn mapper_on_real_ptbxl() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ptbxl");
    let set = meit::eval::ptbxl_set::PtbxlSet::load(&root).expect("ptbxl");
    let m = ScpMapper::new();
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (r, truth) in &set.all_rows {
        let got = m.map(r);
        tp += got.intersection(truth).count();
        fp += got.difference(truth).count();
        fn_ += truth.difference(&got).count();
    }
    let f1 = 2.0 * tp as f64 / (2 * tp + fp + fn_) as f64;
    assert!(f1 > 0.5, "mapper micro F1 {f1}");
}

/// The MATLAB 5 reader on CPSC 2018 and CODE-15% files (needs ../shared/data).
#[test]
#[ignore]
fn mat5_on_real_files() {
    let other = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/other");
    let m =
        meit::signal::read_mat_v5(&other.join("cinc2021/cpsc2018_mat/A1980.mat")).expect("cpsc");
    let d = m.iter().find(|m| m.name == "ECG.data").expect("ECG.data");
    assert_eq!((d.rows, d.cols), (12, 5000));
    let m = meit::signal::read_mat_v5(&other.join("code15_ecgfm/org/code_15_438277.mat"))
        .expect("code15");
    let d = m.iter().find(|m| m.name == "feats").expect("feats");
    assert_eq!((d.rows, d.cols), (12, 2934));
}
