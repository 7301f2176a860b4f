//! Report -> PTB-XL SCP statements: a phrase matcher over English report text.
//!
//! Text is split into sentences at `.` followed by a space or the end (and at `;`/newlines),
//! then normalised: lowercase, `ä/ö/ü/å` folded, every character that is not a letter or digit
//! becomes a space, `nonspecific` -> `non specific`, `ischemi` -> `ischaemi`, spaces collapsed.
//! A statement is found when any of its phrases ([`super::scp_patterns::TABLE`]) matches a
//! sentence (words start at word boundaries; the last word may be a prefix) and the match
//! is not negated: no `no`, `not`, `without` or `absent` among the four words before it.
//!
//! The mapper's own quality against PTB-XL's `scp_codes` is measured by `trainer eval` and
//! reported next to the clinical scores ("mapper precision/recall").

use std::collections::BTreeSet;

use super::scp_patterns::{StatementPatterns, TABLE};

const NEGATIONS: [&str; 4] = ["no", "not", "without", "absent"];
const NEGATION_WINDOW: usize = 4;

/// Lowercases and folds a text to the mapper's word form (see the module docs).
pub fn normalize(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'ä' | 'å' | 'á' | 'à' => 'a',
            'ö' | 'ó' => 'o',
            'ü' => 'u',
            'é' | 'è' => 'e',
            c => c,
        };
        if c.is_alphanumeric() || c == '&' {
            s.push(c);
        } else {
            s.push(' ');
        }
    }
    let s = s.replace('&', " ");
    let words: Vec<&str> = s.split_whitespace().collect();
    let joined = words.join(" ");
    joined
        .replace("nonspecific", "non specific")
        .replace("ischemi", "ischaemi")
}

/// Sentences of a report, normalised.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next_blank = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if (c == '.' && next_blank) || c == ';' || c == '\n' {
            out.push(normalize(&cur));
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    out.push(normalize(&cur));
    out.retain(|s| !s.is_empty());
    out
}

/// One compiled phrase: parts that must occur in order.
#[derive(Debug, Clone)]
struct Phrase {
    parts: Vec<String>,
}

/// A compiled statement.
#[derive(Debug, Clone)]
struct Compiled {
    code: &'static str,
    phrases: Vec<Phrase>,
    exclude: Vec<String>,
}

/// The compiled mapper (build once, reuse).
#[derive(Debug, Clone)]
pub struct ScpMapper {
    table: Vec<Compiled>,
}

impl Default for ScpMapper {
    fn default() -> Self {
        Self::new()
    }
}

/// Byte offsets of `needle` in `hay` starting at a word boundary (end may be mid-word).
fn find_word_prefix(hay: &str, needle: &str, from: usize) -> Option<usize> {
    let mut start = from;
    while let Some(i) = hay.get(start..)?.find(needle) {
        let at = start + i;
        if at == 0 || hay.as_bytes()[at - 1] == b' ' {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

fn negated(sentence: &str, at: usize) -> bool {
    sentence[..at]
        .split_whitespace()
        .rev()
        .take(NEGATION_WINDOW)
        .any(|w| NEGATIONS.contains(&w))
}

impl Phrase {
    /// True when all parts occur in order and the first is not negated.
    fn matches(&self, s: &str) -> bool {
        let Some(first) = self.parts.first() else {
            return false;
        };
        let mut from = 0;
        while let Some(at) = find_word_prefix(s, first, from) {
            from = at + 1;
            if negated(s, at) {
                continue;
            }
            let mut pos = at + first.len();
            let mut ok = true;
            for part in &self.parts[1..] {
                match find_word_prefix(s, part, pos) {
                    Some(p) => pos = p + part.len(),
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                return true;
            }
        }
        false
    }
}

fn compile(sp: &StatementPatterns) -> Compiled {
    Compiled {
        code: sp.code,
        phrases: sp
            .phrases
            .iter()
            .map(|p| Phrase {
                parts: p
                    .split(" * ")
                    .map(normalize)
                    .filter(|x| !x.is_empty())
                    .collect(),
            })
            .collect(),
        exclude: sp.exclude.iter().map(|e| normalize(e)).collect(),
    }
}

/// Blanks out every word-aligned occurrence of the exclusion phrases.
fn blank(s: &str, exclude: &[String]) -> String {
    let mut out = s.to_string();
    for e in exclude {
        let mut from = 0;
        while let Some(at) = find_word_prefix(&out, e, from) {
            let repl = "#".repeat(e.len());
            out.replace_range(at..at + e.len(), &repl);
            from = at + e.len();
        }
    }
    out
}

impl ScpMapper {
    pub fn new() -> Self {
        ScpMapper {
            table: TABLE.iter().map(compile).collect(),
        }
    }

    /// Every statement code the mapper knows.
    pub fn codes(&self) -> Vec<&'static str> {
        self.table.iter().map(|c| c.code).collect()
    }

    /// The statements stated in a report.
    pub fn map(&self, report: &str) -> BTreeSet<String> {
        let sents = sentences(report);
        self.map_sentences(&sents)
    }

    fn map_sentences(&self, sents: &[String]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for c in &self.table {
            let hit = sents.iter().any(|s| {
                let s = if c.exclude.is_empty() {
                    std::borrow::Cow::Borrowed(s.as_str())
                } else {
                    std::borrow::Cow::Owned(blank(s, &c.exclude))
                };
                c.phrases.iter().any(|p| p.matches(&s))
            });
            if hit {
                out.insert(c.code.to_string());
            }
        }
        out
    }

    /// True when one of the given phrases (mapper syntax) occurs, not negated, in the report.
    pub fn mentions(report: &str, phrases: &[&str]) -> bool {
        let sents = sentences(report);
        phrases.iter().any(|p| {
            let ph = Phrase {
                parts: p.split(" * ").map(normalize).collect(),
            };
            sents.iter().any(|s| ph.matches(s))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(s: &str) -> Vec<String> {
        ScpMapper::new().map(s).into_iter().collect()
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize("ST-T  Changes,  QRS(T)"), "st t changes qrs t");
        assert_eq!(normalize("Nonspecific ischemia"), "non specific ischaemia");
        assert_eq!(sentences("a. b 0.12 s.c"), vec!["a", "b 0 12 s c"]);
    }

    #[test]
    fn table_covers_all_71_statements_once() {
        let c = ScpMapper::new().codes();
        let set: BTreeSet<_> = c.iter().collect();
        assert_eq!(c.len(), 71);
        assert_eq!(set.len(), 71);
    }

    // Real PTB-XL reports (English originals and translations of German ones).
    #[test]
    fn real_reports() {
        assert_eq!(codes("sinus rhythm. normal ecg."), ["NORM", "SR"]);
        assert_eq!(
            codes("sinus rhythm. left axis deviation. left anterior fascicular block."),
            ["LAFB", "SR"]
        );
        let c = codes(
            "atrial fibrillation. st segments are depressed in ii, iii, avf, v4,5,6. \
             non-specific but consistent with myocardial ischaemia and digitalis effect.",
        );
        for want in ["AFIB", "STD_", "ISC_", "DIG"] {
            assert!(c.contains(&want.to_string()), "{want} in {c:?}");
        }
        let c = codes("sinus rhythm. q waves in ii, iii, avf consistent with old inferior    myocardial infarction.");
        assert!(c.contains(&"IMI".to_string()) && c.contains(&"QWAVE".to_string()));
        let c = codes("sinus rhythm. incomplete right bundle branch block, this is probably  a normal variant.");
        assert!(c.contains(&"IRBBB".to_string()));
        assert!(!c.contains(&"CRBBB".to_string()), "{c:?}");
        let c =
            codes("premature ventricular contraction(s). sinus tachycardia. otherwise normal ecg.");
        assert_eq!(c, ["NORM", "PVC", "STACH"]);
        // translated German: "sinusrhythmus ueberdrehter linkstyp linksanteriorer hemiblock"
        let c = codes("sinus rhythm. marked left axis deviation. left anterior fascicular block.");
        assert_eq!(c, ["LAFB", "SR"]);
        let c = codes("sinus rhythm. p sinistrocardiale. left posterior fascicular block.");
        assert_eq!(c, ["LAO/LAE", "LPFB", "SR"]);
    }

    #[test]
    fn negation_and_order() {
        assert!(codes("no definite evidence of ischaemia").is_empty());
        assert!(codes("sinus rhythm. st segments are depressed in i.").contains(&"STD_".into()));
        // parts must be in order within one sentence
        assert!(!codes("depressed mood. st normal.").contains(&"STD_".into()));
        assert!(!codes("abnormal ecg").contains(&"NORM".into()));
    }

    #[test]
    fn mentions_helper() {
        assert!(ScpMapper::mentions(
            "Poor R wave progression.",
            &["poor r wave progression"]
        ));
        assert!(!ScpMapper::mentions("no escape beat", &["escape"]));
    }
}
