use super::common::{f, fixtures, Checker};
use meit::metrics::rouge_score::{score_rouge_score, Prf};

#[test]
fn rouge_score_matches() {
    let (pairs, exp) = fixtures();
    let s = score_rouge_score(&pairs);
    let mut ck = Checker::new("rouge-score 0.1.2", 1e-9);
    let c = &exp["corpus"]["rouge_score"];
    let cmp = |ck: &mut Checker, label: &str, got: &Prf, want: &serde_json::Value| {
        ck.check(&format!("{label} p"), got.p, f(&want["p"]));
        ck.check(&format!("{label} r"), got.r, f(&want["r"]));
        ck.check(&format!("{label} f"), got.f, f(&want["f"]));
    };
    cmp(&mut ck, "corpus rouge1", &s.corpus.rouge1, &c["rouge1"]);
    cmp(&mut ck, "corpus rouge2", &s.corpus.rouge2, &c["rouge2"]);
    cmp(&mut ck, "corpus rougeL", &s.corpus.rouge_l, &c["rougeL"]);
    for (k, name) in ["rouge1", "rouge2", "rougeL"].iter().enumerate() {
        ck.check(
            &format!("corpus stemmed_f {name}"),
            s.stemmed_f[k],
            f(&c["stemmed_f"][name]),
        );
    }
    for ((p, e), (t, ts)) in pairs
        .iter()
        .zip(exp["pairs"].as_array().unwrap())
        .zip(s.pairs.iter().zip(s.pairs_stemmed.iter()))
    {
        let r = &e["rouge_score"];
        cmp(
            &mut ck,
            &format!("{} rouge1", p.id),
            &t.rouge1,
            &r["rouge1"],
        );
        cmp(
            &mut ck,
            &format!("{} rouge2", p.id),
            &t.rouge2,
            &r["rouge2"],
        );
        cmp(
            &mut ck,
            &format!("{} rougeL", p.id),
            &t.rouge_l,
            &r["rougeL"],
        );
        ck.check(
            &format!("{} stemmed rouge1", p.id),
            ts.rouge1.f,
            f(&r["stemmed_f"]["rouge1"]),
        );
        ck.check(
            &format!("{} stemmed rouge2", p.id),
            ts.rouge2.f,
            f(&r["stemmed_f"]["rouge2"]),
        );
        ck.check(
            &format!("{} stemmed rougeL", p.id),
            ts.rouge_l.f,
            f(&r["stemmed_f"]["rougeL"]),
        );
    }
    ck.finish();
}
