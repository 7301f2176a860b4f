//! Approximate Meteor 1.5 aligner producing the 23 sufficient statistics.
//!
//! Implemented: Meteor's `-norm` re-tokenization as observed in the reference statistics
//! (mteval punctuation split, intra-word hyphens dropped), the exact stage, a synonym
//! stage from the bundled WordNet 3.0 table, and a beam search that maximizes covered
//! words, then minimizes chunks, then the summed position distance. Synonym matches are
//! only taken between words with different Porter stems (`infarct`/`infarction` are
//! WordNet synonyms but unmatched in the reference statistics). The stem stage
//! (Snowball) is available but off by default: the reference statistics contain no stem
//! match at all (e.g. `infarction`/`infarct`, `voltage`/`voltages` stay unmatched).
//! Not implemented: the paraphrase stage (needs Meteor's 61.8 MB paraphrase table), and
//! the jar's exact function-word list (approximated, consistent with all public stats).

use std::collections::HashSet;

use crate::metrics::meteor_stats::{meteor_score, MeteorStats, RANK_EN};
use crate::metrics::porter::PorterStemmer;
use crate::metrics::wordnet::WordNet;

/// Function words: those implied by the public statistics plus common closed-class words.
const FUNCTION_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "between", "both", "but", "by", "can", "could", "did",
    "do", "does", "each", "first", "for", "from", "had", "has", "have", "he", "her", "here", "him",
    "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "more", "most", "my", "new",
    "no", "not", "of", "on", "one", "or", "other", "our", "out", "over", "s", "'s", "said", "she",
    "should", "since", "so", "some", "such", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "through", "to", "two", "up", "us", "was", "we",
    "were", "what", "when", "where", "which", "while", "who", "will", "with", "would", "you",
    "your", "-lrb-", "-rrb-", ":", ",", ".", ";", "\"", "'", "?", "!", "``", "''", "--", "-",
];

const BEAM: usize = 40;

fn is_mteval_punct(c: char) -> bool {
    matches!(
        c,
        '{' | '|'
            | '}'
            | '~'
            | '['
            | '\\'
            | ']'
            | '^'
            | '_'
            | '`'
            | '!'
            | '"'
            | '#'
            | '$'
            | '%'
            | '&'
            | '('
            | ')'
            | '*'
            | '+'
            | ':'
            | ';'
            | '<'
            | '='
            | '>'
            | '?'
            | '@'
            | '/'
    )
}

/// Meteor `-norm`-like re-tokenization of a PTB-tokenized caption.
pub fn meteor_normalize(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.to_lowercase().chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if is_mteval_punct(c) || c == 'µ' {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else if c == '-'
            && i > 0
            && i + 1 < chars.len()
            && chars[i - 1].is_alphanumeric()
            && chars[i + 1].is_alphanumeric()
        {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out.split_whitespace().map(|s| s.to_string()).collect()
}

fn is_function(w: &str) -> bool {
    FUNCTION_WORDS.contains(&w)
}

/// Which matcher stages run (exact always).
#[derive(Debug, Clone, Copy)]
pub struct AlignOptions {
    pub stem: bool,
    pub synonym: bool,
}

/// Default: exact + WordNet synonyms (see the module docs for why stem is off).
pub const DEFAULT_OPTIONS: AlignOptions = AlignOptions {
    stem: false,
    synonym: true,
};

/// Beam de-duplication key: used reference words and the last match.
type BeamKey = (Vec<bool>, Option<(usize, usize)>);

#[derive(Clone)]
struct State {
    used: Vec<bool>,
    /// (test index, ref index, stage)
    matches: Vec<(usize, usize, usize)>,
    chunks: usize,
    dist: usize,
    last: Option<(usize, usize)>,
}

impl State {
    fn key(&self) -> (std::cmp::Reverse<usize>, usize, usize) {
        (
            std::cmp::Reverse(self.matches.len()),
            self.chunks,
            self.dist,
        )
    }
}

fn syn_set(wn: &WordNet, w: &str) -> HashSet<String> {
    wn.synonyms(w)
        .into_iter()
        .map(|s| s.to_lowercase())
        .collect()
}

/// Aligns one test against one reference and returns the statistics.
pub fn align_stats(test: &[String], reference: &[String], opt: AlignOptions) -> MeteorStats {
    let stemmer = PorterStemmer::new();
    let wn = WordNet::get();
    let tstem: Vec<String> = test.iter().map(|w| stemmer.stem(w)).collect();
    let rstem: Vec<String> = reference.iter().map(|w| stemmer.stem(w)).collect();
    let tsyn: Vec<HashSet<String>> = if opt.synonym {
        test.iter().map(|w| syn_set(wn, w)).collect()
    } else {
        vec![HashSet::new(); test.len()]
    };
    let rsyn: Vec<HashSet<String>> = if opt.synonym {
        reference.iter().map(|w| syn_set(wn, w)).collect()
    } else {
        vec![HashSet::new(); reference.len()]
    };
    // candidate matches per test word: (ref index, stage)
    let cands: Vec<Vec<(usize, usize)>> = (0..test.len())
        .map(|i| {
            (0..reference.len())
                .filter_map(|j| {
                    if test[i] == reference[j] {
                        Some((j, 0))
                    } else if opt.stem && tstem[i] == rstem[j] {
                        Some((j, 1))
                    } else if opt.synonym
                        && tstem[i] != rstem[j]
                        && (tsyn[i].contains(&reference[j]) || rsyn[j].contains(&test[i]))
                    {
                        Some((j, 2))
                    } else {
                        None
                    }
                })
                .collect()
        })
        .collect();
    let mut beam = vec![State {
        used: vec![false; reference.len()],
        matches: vec![],
        chunks: 0,
        dist: 0,
        last: None,
    }];
    for (i, ci) in cands.iter().enumerate() {
        let mut next: Vec<State> = Vec::with_capacity(beam.len() * (ci.len() + 1));
        for s in &beam {
            let mut skip = s.clone();
            skip.last = None;
            next.push(skip);
            for &(j, stage) in ci {
                if s.used[j] {
                    continue;
                }
                let mut n = s.clone();
                n.used[j] = true;
                n.matches.push((i, j, stage));
                let cont = matches!(s.last, Some((pi, pj)) if pi + 1 == i && pj + 1 == j);
                if !cont {
                    n.chunks += 1;
                }
                n.dist += i.abs_diff(j);
                n.last = Some((i, j));
                next.push(n);
            }
        }
        next.sort_by_key(|s| s.key());
        let mut seen: HashSet<BeamKey> = HashSet::new();
        next.retain(|s| seen.insert((s.used.clone(), s.last)));
        next.truncate(BEAM);
        beam = next;
    }
    let best = beam.into_iter().min_by_key(|s| s.key());
    let mut v = [0.0f64; 23];
    v[0] = test.len() as f64;
    v[1] = reference.len() as f64;
    v[2] = test.iter().filter(|w| is_function(w)).count() as f64;
    v[3] = reference.iter().filter(|w| is_function(w)).count() as f64;
    if let Some(b) = best {
        for &(i, j, stage) in &b.matches {
            let slot = stage.min(3);
            v[4 + 4 * slot + if is_function(&test[i]) { 2 } else { 0 }] += 1.0;
            v[5 + 4 * slot + if is_function(&reference[j]) { 2 } else { 0 }] += 1.0;
        }
        v[20] = b.chunks as f64;
        v[21] = b.matches.len() as f64;
        v[22] = b.matches.len() as f64;
    }
    MeteorStats(v)
}

/// Statistics for a tokenized candidate against its references (best-scoring reference).
pub fn meteor_stats(candidate: &str, references: &[String]) -> MeteorStats {
    meteor_stats_with(candidate, references, DEFAULT_OPTIONS)
}

/// [`meteor_stats`] with explicit matcher stages.
pub fn meteor_stats_with(candidate: &str, references: &[String], opt: AlignOptions) -> MeteorStats {
    let test = meteor_normalize(candidate);
    let mut best: Option<(f64, MeteorStats)> = None;
    for r in references {
        let s = align_stats(&test, &meteor_normalize(r), opt);
        let sc = meteor_score(&s, &RANK_EN);
        if best.as_ref().is_none_or(|b| sc > b.0) {
            best = Some((sc, s));
        }
    }
    best.map(|b| b.1).unwrap_or_default()
}
