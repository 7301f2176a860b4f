//! pycocoevalcap 1.2 ROUGE-L (beta 1.2, tokens from `split(" ")`).

/// Length of the longest common subsequence of two token slices.
pub fn lcs<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Per-pair ROUGE-L as pycocoevalcap computes it.
pub fn rouge_l_pair(candidate: &str, references: &[String], beta: f64) -> f64 {
    let c: Vec<&str> = candidate.split(' ').collect();
    let mut p_max = 0.0f64;
    let mut r_max = 0.0f64;
    for r in references {
        let rt: Vec<&str> = r.split(' ').collect();
        let l = lcs(&c, &rt) as f64;
        p_max = p_max.max(l / c.len() as f64);
        r_max = r_max.max(l / rt.len() as f64);
    }
    if p_max != 0.0 && r_max != 0.0 {
        ((1.0 + beta * beta) * p_max * r_max) / (r_max + beta * beta * p_max)
    } else {
        0.0
    }
}

/// Mean and per-pair ROUGE-L (beta 1.2).
pub fn corpus_rouge_l(items: &[(String, Vec<String>)]) -> (f64, Vec<f64>) {
    let per: Vec<f64> = items.iter().map(|(c, r)| rouge_l_pair(c, r, 1.2)).collect();
    (mean(&per), per)
}

/// Arithmetic mean (0 for an empty slice).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}
