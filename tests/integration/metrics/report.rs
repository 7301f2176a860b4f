use super::common::{f, fixtures, Checker};
use meit::metrics::score_all;

/// Every corpus value that `score_all` reports and the expected file holds, end to end.
#[test]
fn score_all_matches_corpus_block() {
    let (pairs, exp) = fixtures();
    let got = score_all(&pairs);
    let want = &exp["corpus"];
    let mut ck = Checker::new("score_all corpus (end to end)", 1e-3);
    let mut n = 0;
    for block in ["coco", "rouge_score", "nltk", "meit"] {
        let w = want[block].as_object().unwrap();
        for (k, v) in w {
            if block == "coco" && (k == "METEOR" || k == "METEOR_mean_of_segments") {
                continue; // approximate Meteor 1.5 aligner: see coco_end_to_end
            }
            let g = &got[block][k];
            match v {
                serde_json::Value::Number(_) => {
                    ck.check(&format!("{block}.{k}"), f(g), f(v));
                    n += 1;
                }
                serde_json::Value::Object(o) => {
                    for (k2, v2) in o {
                        ck.check(&format!("{block}.{k}.{k2}"), f(&g[k2]), f(v2));
                        n += 1;
                    }
                }
                serde_json::Value::Array(_) => assert_eq!(g, v, "{block}.{k}"),
                _ => {}
            }
        }
    }
    assert!(n >= 35, "only {n} values compared");
    ck.finish();
}

#[test]
fn nltk_corpus_bleu_on_stored_tokens() {
    let (_, exp) = fixtures();
    let items: Vec<(String, Vec<String>)> = exp["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let t = &p["coco"]["tokens"];
            (
                t["candidate"].as_str().unwrap().to_string(),
                t["references"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let b = meit::metrics::nltk_bleu::corpus_bleu(&items);
    let mut ck = Checker::new("nltk corpus_bleu on stored tokens", 1e-9);
    for k in 0..4 {
        ck.check(
            &format!("corpus_bleu_{}", k + 1),
            b[k],
            f(&exp["corpus"]["nltk"][format!("corpus_bleu_{}", k + 1)]),
        );
    }
    ck.finish();
}

/// Degenerate inputs must not panic and must give finite numbers.
#[test]
fn degenerate_inputs_are_finite() {
    use meit::metrics::Pair;
    fn all_finite(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
            serde_json::Value::Object(o) => o.values().all(all_finite),
            serde_json::Value::Array(a) => a.iter().all(all_finite),
            _ => true,
        }
    }
    let empty = score_all(&[]);
    assert!(all_finite(&empty), "{empty}");
    let odd = vec![
        Pair {
            id: "a".into(),
            candidate: "".into(),
            references: vec![],
        },
        Pair {
            id: "b".into(),
            candidate: "...".into(),
            references: vec!["".into()],
        },
        Pair {
            id: "c".into(),
            candidate: "x y z".into(),
            references: vec!["x y z".into()],
        },
    ];
    let v = score_all(&odd);
    assert!(all_finite(&v), "{v}");
}
