use super::common::{f, fixtures, Checker};
use meit::metrics::meit::score_meit;

#[test]
fn meit_one_batch_matches() {
    let (pairs, exp) = fixtures();
    let s = score_meit(&pairs, 0);
    assert_eq!(s.n_batches, 1);
    let c = &exp["corpus"]["meit"];
    let mut ck = Checker::new("meit (BLEU/ROUGE-L/CIDEr/pltrdy, own preprocessing)", 1e-9);
    for k in 0..4 {
        ck.check(
            &format!("corpus BLEU-{}", k + 1),
            s.bleu[k],
            f(&c[format!("BLEU-{}", k + 1)]),
        );
    }
    ck.check("corpus ROUGE-L", s.rouge_l, f(&c["ROUGE-L"]));
    ck.check("corpus CIDEr-D_meit", s.cider_d_meit, f(&c["CIDEr-D_meit"]));
    ck.check(
        "corpus ROUGE-1_pltrdy",
        s.rouge1_pltrdy,
        f(&c["ROUGE-1_pltrdy"]),
    );
    ck.check(
        "corpus ROUGE-2_pltrdy",
        s.rouge2_pltrdy,
        f(&c["ROUGE-2_pltrdy"]),
    );
    let want_err: Vec<String> = c["pltrdy_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    assert_eq!(s.pltrdy_errors, want_err);
    let mut mk = Checker::new("meit METEOR_nltk (end to end)", 1e-3);
    mk.check("corpus METEOR_nltk", s.meteor_nltk, f(&c["METEOR_nltk"]));
    let mut text_bad = 0;
    for (p, e) in s.pairs.iter().zip(exp["pairs"].as_array().unwrap()) {
        let m = &e["meit"];
        if p.candidate_text != m["text"]["candidate"].as_str().unwrap()
            || p.reference_text != m["text"]["reference"].as_str().unwrap()
        {
            text_bad += 1;
            eprintln!("  meit text differs for {}", p.id);
        }
        for k in 0..4 {
            ck.check(
                &format!("{} BLEU-{}", p.id, k + 1),
                p.bleu[k],
                f(&m[format!("BLEU-{}", k + 1)]),
            );
        }
        ck.check(&format!("{} ROUGE-L", p.id), p.rouge_l, f(&m["ROUGE-L"]));
        ck.check(
            &format!("{} CIDEr-D_meit", p.id),
            p.cider_d_meit,
            f(&m["CIDEr-D_meit"]),
        );
        match (p.rouge1_pltrdy, m["ROUGE-1_pltrdy"].as_f64()) {
            (Some(a), Some(b)) => ck.check(&format!("{} ROUGE-1_pltrdy", p.id), a, b),
            (None, None) => {}
            _ => panic!("{}: pltrdy error status differs", p.id),
        }
        match (p.rouge2_pltrdy, m["ROUGE-2_pltrdy"].as_f64()) {
            (Some(a), Some(b)) => ck.check(&format!("{} ROUGE-2_pltrdy", p.id), a, b),
            (None, None) => {}
            _ => panic!("{}: pltrdy error status differs", p.id),
        }
        mk.check(
            &format!("{} METEOR_nltk", p.id),
            p.meteor_nltk,
            f(&m["METEOR_nltk"]),
        );
    }
    assert_eq!(text_bad, 0, "MEIT preprocessing differs");
    ck.finish();
    mk.finish();
}

#[test]
fn meit_batches_average() {
    let (pairs, _) = fixtures();
    let s = score_meit(&pairs, 16);
    assert_eq!(s.n_batches, 4);
    // each batch mean recomputed independently
    let means: Vec<f64> = pairs
        .chunks(16)
        .map(|b| score_meit(b, 0).cider_d_meit)
        .collect();
    let m = means.iter().sum::<f64>() / means.len() as f64;
    assert!((s.cider_d_meit - m).abs() < 1e-12);
    // a batch of one gives CIDEr 0 (log 1 idf)
    assert_eq!(score_meit(&pairs[..1], 1).cider_d_meit, 0.0);
}
