use super::common::{f, fixtures, Checker};
use meit::metrics::nltk_meteor::score_nltk_meteor;

#[test]
fn nltk_meteor_matches() {
    let (pairs, exp) = fixtures();
    let s = score_nltk_meteor(&pairs);
    let mut ck = Checker::new("nltk meteor_score (end to end)", 1e-3);
    ck.check(
        "corpus meteor_mean",
        s.meteor_mean,
        f(&exp["corpus"]["nltk"]["meteor_mean"]),
    );
    for ((p, e), got) in pairs
        .iter()
        .zip(exp["pairs"].as_array().unwrap())
        .zip(&s.pairs)
    {
        ck.check(&format!("{} meteor", p.id), *got, f(&e["nltk"]["meteor"]));
    }
    ck.finish();
}
