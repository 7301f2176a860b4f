//! `results.md`: the benchmark tables, rendered from `metrics.json`.

use std::fmt::Write;

use serde_json::Value;

use super::scoring::num;

const SYSTEMS: [(&str, &str); 3] = [
    ("model", "model"),
    ("baseline_mode", "most frequent training report"),
    (
        "baseline_retrieval",
        "nearest training record (encoder embedding)",
    ),
];

fn f(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.4}"),
        _ => "—".into(),
    }
}

fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(head.len()));
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out.push('\n');
}

fn quality(out: &mut String, q: &Value) {
    let _ = writeln!(
        out,
        "## Report quality (PTB-XL test fold, English references)\n"
    );
    let _ = writeln!(
        out,
        "COCO caption protocol (PTB tokenizer, corpus BLEU, METEOR 1.5 approximation, ROUGE-L, \
         CIDEr-D with document frequency over the test references):\n"
    );
    let coco = [
        "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D",
    ];
    let rows: Vec<Vec<String>> = SYSTEMS
        .iter()
        .map(|(k, name)| {
            let mut r = vec![name.to_string()];
            r.extend(coco.iter().map(|m| f(num(q, &[k, "coco", m]))));
            r
        })
        .collect();
    let mut head = vec!["system"];
    head.extend(coco);
    table(out, &head, &rows);
    let _ = writeln!(
        out,
        "MEIT's protocol (its preprocessing, per-batch averaging, NLTK METEOR, pltrdy ROUGE-1/2, \
         its CIDEr-D variant; BERTScore: F1 of all-MiniLM-L6-v2 layer 6 with bert-score's \
         semantics, not MEIT's roberta-large):\n"
    );
    let meit = [
        ("BLEU-1", "BLEU-1"),
        ("BLEU-2", "BLEU-2"),
        ("BLEU-3", "BLEU-3"),
        ("BLEU-4", "BLEU-4"),
        ("METEOR", "METEOR_nltk"),
        ("ROUGE-1", "ROUGE-1_pltrdy"),
        ("ROUGE-2", "ROUGE-2_pltrdy"),
        ("ROUGE-L", "ROUGE-L"),
        ("CIDEr-D", "CIDEr-D_meit"),
        ("BERTScore", "BERTScore"),
    ];
    let rows: Vec<Vec<String>> = SYSTEMS
        .iter()
        .map(|(k, name)| {
            let mut r = vec![name.to_string()];
            r.extend(meit.iter().map(|(_, m)| match *m {
                "BERTScore" => f(num(q, &[k, "bertscore_minilm", "F1"])),
                m => f(num(q, &[k, "meit", m])),
            }));
            r
        })
        .collect();
    let mut head = vec!["system"];
    head.extend(meit.iter().map(|(h, _)| *h));
    table(out, &head, &rows);
    let rows: Vec<Vec<String>> = SYSTEMS
        .iter()
        .map(|(k, name)| {
            let mut r = vec![name.to_string()];
            for m in ["rouge1", "rouge2", "rougeL"] {
                r.push(f(num(q, &[k, "rouge_score", m, "f"])));
            }
            r
        })
        .collect();
    let _ = writeln!(out, "rouge-score (F1, no stemming):\n");
    table(out, &["system", "ROUGE-1", "ROUGE-2", "ROUGE-L"], &rows);
}

fn clinical(out: &mut String, c: &Value) {
    let _ = writeln!(out, "## Clinical correctness (PTB-XL statements)\n");
    let cats = ["diagnostic", "form", "rhythm", "all"];
    for (key, what) in [
        (
            "vs_mapped_reference",
            "generated vs reference report, both mapped to statements",
        ),
        (
            "vs_scp_codes",
            "generated report (mapped) vs PTB-XL's ground-truth scp_codes",
        ),
    ] {
        let _ = writeln!(out, "Micro / macro F1, {what}:\n");
        let rows: Vec<Vec<String>> = SYSTEMS
            .iter()
            .map(|(k, name)| {
                let mut r = vec![name.to_string()];
                for cat in cats {
                    let s = &c["systems"][k][key][cat];
                    r.push(format!(
                        "{} / {}",
                        f(num(s, &["micro_f1"])),
                        f(num(s, &["macro_f1"]))
                    ));
                }
                r
            })
            .collect();
        let mut head = vec!["system"];
        head.extend(cats);
        table(out, &head, &rows);
    }
    let get = |k: &str| num(c, &["systems", k, "vs_mapped_reference", "all", "micro_f1"]);
    let (m, a, b) = (
        get("model"),
        get("baseline_mode"),
        get("baseline_retrieval"),
    );
    let verdict = match (m, a, b) {
        (Some(m), Some(a), Some(b)) if m > a && m > b => {
            format!("**The model beats both baselines** (micro F1 {m:.4} vs {a:.4} and {b:.4}).")
        }
        (Some(m), a, b) => format!(
            "**The model does not beat both baselines** (micro F1, all statements: model {m:.4}, \
             most frequent report {}, retrieval {}).",
            f(a),
            f(b)
        ),
        _ => "**No verdict**: the model's micro F1 is undefined (no statement found).".into(),
    };
    let _ = writeln!(out, "{verdict}\n");
    let _ = writeln!(
        out,
        "Mapper quality (mapped English reference vs scp_codes; precision / recall / F1, micro):\n"
    );
    let mq = &c["mapper_quality"];
    let rows: Vec<Vec<String>> = [
        ("test_fold", "test fold"),
        ("all_database_rows", "all database rows"),
    ]
    .iter()
    .map(|(k, name)| {
        let mut r = vec![name.to_string()];
        for cat in cats {
            let s = &mq[k][cat];
            r.push(format!(
                "{} / {} / {}",
                f(num(s, &["micro_precision"])),
                f(num(s, &["micro_recall"])),
                f(num(s, &["micro_f1"]))
            ));
        }
        r
    })
    .collect();
    let mut head = vec!["reports"];
    head.extend(cats);
    table(out, &head, &rows);
}

fn noise(out: &mut String, n: &Value) {
    let _ = writeln!(
        out,
        "## Noise robustness ({} test records, seed {})\n",
        n["records"], n["seed"]
    );
    let Some(levels) = n["levels"].as_array() else {
        return;
    };
    let rows: Vec<Vec<String>> = levels
        .iter()
        .map(|l| {
            let mut r = vec![l["label"].as_str().unwrap_or("?").to_string()];
            for (_, path) in super::results::HEADLINE {
                r.push(f(num(l, path)));
            }
            r
        })
        .collect();
    let mut head = vec!["level"];
    head.extend(super::results::HEADLINE.iter().map(|(h, _)| *h));
    table(out, &head, &rows);
    let _ = writeln!(out, "Chart: `robustness.svg`.\n");
}

fn zeroshot(out: &mut String, z: &Value) {
    let _ = writeln!(
        out,
        "## Zero-shot transfer (how often a labelled condition is stated in the report)\n"
    );
    let Some(ds) = z["datasets"].as_object() else {
        return;
    };
    let rows: Vec<Vec<String>> = ds
        .iter()
        .map(|(name, d)| {
            vec![
                name.clone(),
                d["records"].to_string(),
                d["rejected"].to_string(),
                d["padded"].as_u64().unwrap_or(0).to_string(),
                d["labels_scored"].to_string(),
                f(num(d, &["stated_rate"])),
                f(num(d, &["false_mention_rate"])),
            ]
        })
        .collect();
    table(
        out,
        &[
            "dataset",
            "records",
            "rejected",
            "padded to 10 s",
            "labels scored",
            "stated rate",
            "false-mention rate",
        ],
        &rows,
    );
    let mut rows = Vec::new();
    for (name, d) in ds {
        if let Some(per) = d["per_condition"].as_object() {
            for (c, v) in per {
                rows.push(vec![
                    name.clone(),
                    c.clone(),
                    v["n"].to_string(),
                    v["stated"].to_string(),
                    f(num(v, &["rate"])),
                ]);
            }
        }
    }
    table(out, &["dataset", "condition", "n", "stated", "rate"], &rows);
    if let Some(notes) = z["notes"].as_array().filter(|n| !n.is_empty()) {
        for n in notes {
            let _ = writeln!(out, "- {}", n.as_str().unwrap_or(""));
        }
        out.push('\n');
    }
}

/// The whole `results.md`.
pub fn render(m: &Value) -> String {
    let mut out = String::from("# MEIT benchmark results\n\n");
    let r = &m["run"];
    let _ = writeln!(
        out,
        "Model `{}`, adapter {}, trained: {}, precision {}, KV cache {}, greedy decoding, max {} tokens, {} \
         test records; wall time {:.1} s.\n",
        r["model"].as_str().unwrap_or("?"),
        r["adapter"],
        r["trained"],
        r["precision"],
        r["kv_cache"].as_str().unwrap_or("?"),
        r["max_tokens"],
        r["test_records"],
        num(r, &["timings", "wall_s"]).unwrap_or(f64::NAN)
    );
    if r["trained"] == false {
        let _ = writeln!(
            out,
            "> No trained adapter: the ECG encoder is untrained, so the reports do not depend on \
             the ECG in a meaningful way. These numbers test the plumbing, not the method.\n"
        );
    }
    if m.get("quality").is_some() {
        quality(&mut out, &m["quality"]);
    }
    if m.get("clinical").is_some() {
        clinical(&mut out, &m["clinical"]);
    }
    if m.get("noise").is_some() {
        noise(&mut out, &m["noise"]);
    }
    if m.get("zeroshot").is_some() {
        zeroshot(&mut out, &m["zeroshot"]);
    }
    out
}
