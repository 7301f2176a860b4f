//! Output files of a run: `outputs.jsonl` (one line per generated report), `metrics.json`,
//! `results.md` (see [`super::markdown`]) and `robustness.svg` (one panel per headline metric
//! and noise family, "clean" as the first point of both families).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use crate::train::data::ptbxl::ScpStatement;

use super::clinical::{categories, f1};
use super::markdown;
use super::pipeline::OutputRow;
use super::runner::Generated;
use super::scoring::{nlg, num, System};
use super::scp_map::ScpMapper;
use super::svg::{chart, Panel};
use super::EvalError;

/// Headline metrics of the robustness chart: (label, path in a level's JSON).
pub const HEADLINE: [(&str, &[&str]); 6] = [
    ("BLEU-4 (COCO)", &["coco", "BLEU-4"]),
    ("METEOR (COCO)", &["coco", "METEOR"]),
    ("ROUGE-L (COCO)", &["coco", "ROUGE-L"]),
    ("CIDEr-D (COCO)", &["coco", "CIDEr-D"]),
    ("BLEU-1 (MEIT)", &["meit", "BLEU-1"]),
    ("clinical micro-F1", &["clinical_micro_f1"]),
];

/// Scores of one noise level (word metrics + clinical micro-F1 against mapped references).
#[allow(clippy::too_many_arguments)]
pub fn level_scores(
    label: &str,
    family: &str,
    level: f64,
    ids: &[String],
    refs: &[String],
    gens: &[Generated],
    mapper: &ScpMapper,
    statements: &[ScpStatement],
    meit_batch: usize,
) -> Value {
    let reports: Vec<String> = gens.iter().map(|g| g.text.clone()).collect();
    let scores = nlg(
        ids,
        refs,
        &[System {
            name: "model",
            reports: &reports,
        }],
        meit_batch,
        None,
    );
    let pred: Vec<BTreeSet<String>> = reports.iter().map(|r| mapper.map(r)).collect();
    let truth: Vec<BTreeSet<String>> = refs.iter().map(|r| mapper.map(r)).collect();
    let all = categories(statements).remove("all").unwrap_or_default();
    let clin = f1(&pred, &truth, &all);
    let m = &scores["model"];
    json!({
        "label": label,
        "family": family,
        "level": level,
        "coco": m["coco"],
        "meit": m["meit"],
        "rouge_score": m["rouge_score"],
        "clinical_micro_f1": clin.micro_f1,
        "clinical_macro_f1": clin.macro_f1,
    })
}

/// The robustness chart from `metrics.noise.levels`.
pub fn robustness_svg(levels: &[Value]) -> String {
    let clean = levels.iter().find(|l| l["family"] == "clean");
    let mut panels = Vec::new();
    for (name, path) in HEADLINE {
        for (family, title, unit) in [
            ("partial", "partial white noise", "p"),
            ("snr", "Gaussian noise", "dB"),
        ] {
            let mut x = vec!["clean".to_string()];
            let mut y = vec![clean.and_then(|c| num(c, path))];
            for l in levels.iter().filter(|l| l["family"] == family) {
                let v = l["level"].as_f64().unwrap_or(f64::NAN);
                x.push(if unit == "p" {
                    format!("{v:.2}")
                } else {
                    format!("{v:.0}")
                });
                y.push(num(l, path));
            }
            panels.push(Panel {
                title: format!("{name} — {title} ({unit})"),
                x_labels: x,
                y,
            });
        }
    }
    chart("Noise robustness (PTB-XL test fold)", &panels, 2)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    std::fs::write(path, bytes).map_err(|e| EvalError::io(path, e))
}

/// Writes every output file into `dir`.
pub fn write_all(dir: &Path, rows: &[OutputRow], metrics: &Value) -> Result<(), EvalError> {
    let p = dir.join("outputs.jsonl");
    let f = std::fs::File::create(&p).map_err(|e| EvalError::io(&p, e))?;
    let mut w = std::io::BufWriter::new(f);
    for r in rows {
        let line = serde_json::to_string(r).map_err(|e| EvalError::input(&p, e.to_string()))?;
        writeln!(w, "{line}").map_err(|e| EvalError::io(&p, e))?;
    }
    w.flush().map_err(|e| EvalError::io(&p, e))?;
    let p = dir.join("metrics.json");
    let text =
        serde_json::to_string_pretty(metrics).map_err(|e| EvalError::input(&p, e.to_string()))?;
    write(&p, text.as_bytes())?;
    write(
        &dir.join("results.md"),
        markdown::render(metrics).as_bytes(),
    )?;
    if let Some(levels) = metrics["noise"]["levels"].as_array() {
        write(
            &dir.join("robustness.svg"),
            robustness_svg(levels).as_bytes(),
        )?;
    }
    Ok(())
}
