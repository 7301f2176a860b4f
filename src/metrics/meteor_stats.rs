//! Meteor 1.5 scoring from its 23 sufficient statistics (task `rank`, `-l en`).

/// Meteor parameters.
#[derive(Debug, Clone, Copy)]
pub struct MeteorParams {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    pub delta: f64,
    pub weights: [f64; 4],
}

/// English `rank` task parameters (Meteor 1.5 defaults used by COCOEvalCap).
pub const RANK_EN: MeteorParams = MeteorParams {
    alpha: 0.85,
    beta: 0.20,
    gamma: 0.60,
    delta: 0.75,
    weights: [1.0, 0.6, 0.8, 0.6],
};

/// Sufficient statistics: `tl rl tf rf (tc rc tfn rfn)x4 chunks twm rwm`.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct MeteorStats(pub [f64; 23]);

impl MeteorStats {
    /// Parses the space-separated statistics line the Meteor jar prints.
    pub fn parse(s: &str) -> Option<MeteorStats> {
        let v: Vec<f64> = s
            .split_whitespace()
            .map(|x| x.parse::<f64>())
            .collect::<Result<_, _>>()
            .ok()?;
        let arr: [f64; 23] = v.try_into().ok()?;
        Some(MeteorStats(arr))
    }

    /// Formats like the Meteor jar (`{:.1}` per value).
    pub fn to_line(&self) -> String {
        self.0
            .iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn total_matches(&self) -> (f64, f64) {
        let mut t = 0.0;
        let mut r = 0.0;
        for i in 0..4 {
            t += self.0[4 + 4 * i] + self.0[6 + 4 * i];
            r += self.0[5 + 4 * i] + self.0[7 + 4 * i];
        }
        (t, r)
    }

    /// True when every word is matched and there is a single chunk.
    pub fn is_perfect(&self) -> bool {
        let (t, r) = self.total_matches();
        self.0[0] == t && self.0[1] == r && self.0[20] == 1.0
    }
}

/// Segment (or aggregate) score from statistics.
pub fn meteor_score(s: &MeteorStats, p: &MeteorParams) -> f64 {
    let v = &s.0;
    let (tl, rl, tf, rf) = (v[0], v[1], v[2], v[3]);
    let mut tw = 0.0;
    let mut rw = 0.0;
    for i in 0..4 {
        let (tc, rc, tfn, rfn) = (v[4 + 4 * i], v[5 + 4 * i], v[6 + 4 * i], v[7 + 4 * i]);
        tw += p.weights[i] * (p.delta * tc + (1.0 - p.delta) * tfn);
        rw += p.weights[i] * (p.delta * rc + (1.0 - p.delta) * rfn);
    }
    let tlen = p.delta * (tl - tf) + (1.0 - p.delta) * tf;
    let rlen = p.delta * (rl - rf) + (1.0 - p.delta) * rf;
    let prec = tw / tlen;
    let rec = rw / rlen;
    let fmean = 1.0 / ((1.0 - p.alpha) / prec + p.alpha / rec);
    let (chunks, twm, rwm) = (v[20], v[21], v[22]);
    let frag = if s.is_perfect() {
        0.0
    } else {
        chunks / ((twm + rwm) / 2.0)
    };
    let score = fmean * (1.0 - p.gamma * frag.powf(p.beta));
    if score.is_nan() {
        0.0
    } else {
        score.max(0.0)
    }
}

/// Sums statistics as `MeteorStats.addStats` does: perfect segments add 0 chunks.
pub fn aggregate(stats: &[MeteorStats]) -> MeteorStats {
    let mut t = [0.0f64; 23];
    for s in stats {
        let perfect = s.is_perfect();
        for (i, x) in s.0.iter().enumerate() {
            if i == 20 && perfect {
                continue;
            }
            t[i] += x;
        }
    }
    MeteorStats(t)
}

/// Corpus METEOR (from summed statistics), mean of segments, and per-segment scores.
pub fn corpus_meteor(stats: &[MeteorStats]) -> (f64, f64, Vec<f64>) {
    let per: Vec<f64> = stats.iter().map(|s| meteor_score(s, &RANK_EN)).collect();
    let agg = meteor_score(&aggregate(stats), &RANK_EN);
    (agg, crate::metrics::rouge_l::mean(&per), per)
}
