//! The committed German/Swedish -> English phrase table and its greedy longest match.
//!
//! `phrases_de_en.tsv`: `lang<TAB>source<TAB>target`, `#` comments. Sources are tokenised
//! like reports, so `qrs(t) abnorm` and `qrs ( t ) abnorm` are the same key.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::error::DataError;
use super::text::{normalize, tokenize, TokenKind};

/// The phrase table shipped with the crate.
pub const BUILTIN_TSV: &str = include_str!("phrases_de_en.tsv");
/// Path shown in errors about the built-in table.
pub const BUILTIN_NAME: &str = "src/train/data/phrases_de_en.tsv";

/// Source language of a phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhraseLang {
    German,
    Swedish,
}

/// One entry of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    pub lang: PhraseLang,
    /// Token texts of the normalised source.
    pub source: Vec<String>,
    pub target: String,
}

/// A match of a phrase at some position of a token sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhraseMatch<'a> {
    /// Number of tokens consumed.
    pub len: usize,
    pub phrase: &'a Phrase,
}

/// The phrase table, indexed for longest-match lookup.
#[derive(Debug, Clone, Default)]
pub struct PhraseTable {
    phrases: Vec<Phrase>,
    index: HashMap<Vec<String>, usize>,
    max_len: usize,
}

impl PhraseTable {
    /// Parses a TSV table; `name` is used in errors. Duplicate sources are an error.
    pub fn parse(tsv: &str, name: &Path) -> Result<Self, DataError> {
        let mut table = PhraseTable::default();
        for (i, line) in tsv.lines().enumerate() {
            let line_no = i as u64 + 1;
            let err = |message: String| DataError::Line {
                path: name.to_path_buf(),
                line: line_no,
                message,
            };
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            let [lang, source, target] = cols[..] else {
                return Err(err(format!(
                    "expected 3 tab-separated columns, got {}",
                    cols.len()
                )));
            };
            let lang = match lang {
                "de" => PhraseLang::German,
                "sv" => PhraseLang::Swedish,
                other => return Err(err(format!("unknown language {other:?} (want de or sv)"))),
            };
            let source: Vec<String> = tokenize(&normalize(source))
                .into_iter()
                .map(|t| t.text)
                .collect();
            if source.is_empty() {
                return Err(err("empty source phrase".to_string()));
            }
            if table.index.contains_key(&source) {
                return Err(err(format!(
                    "duplicate source phrase {:?}",
                    source.join(" ")
                )));
            }
            table.max_len = table.max_len.max(source.len());
            table.index.insert(source.clone(), table.phrases.len());
            table.phrases.push(Phrase {
                lang,
                source,
                target: target.trim().to_string(),
            });
        }
        Ok(table)
    }

    /// The built-in table.
    pub fn builtin() -> Result<Self, DataError> {
        Self::parse(BUILTIN_TSV, Path::new(BUILTIN_NAME))
    }

    pub fn phrases(&self) -> &[Phrase] {
        &self.phrases
    }

    pub fn len(&self) -> usize {
        self.phrases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// Longest phrase starting at `tokens[start]`.
    pub fn longest_match<'a>(&'a self, tokens: &[String], start: usize) -> Option<PhraseMatch<'a>> {
        let longest = self.max_len.min(tokens.len().saturating_sub(start));
        (1..=longest).rev().find_map(|len| {
            self.index
                .get(&tokens[start..start + len])
                .map(|&i| PhraseMatch {
                    len,
                    phrase: &self.phrases[i],
                })
        })
    }

    /// Words of all targets (English by construction).
    pub fn target_words(&self) -> HashSet<String> {
        self.phrases
            .iter()
            .flat_map(|p| tokenize(&normalize(&p.target)))
            .filter(|t| t.kind == TokenKind::Word)
            .map(|t| t.text)
            .collect()
    }

    /// Source words of `lang` that never occur in any target: these mark a report as
    /// written in that language.
    pub fn marker_words(&self, lang: PhraseLang) -> HashSet<String> {
        let targets = self.target_words();
        self.phrases
            .iter()
            .filter(|p| p.lang == lang)
            .flat_map(|p| p.source.iter())
            .filter(|w| w.chars().any(char::is_alphabetic) && !targets.contains(*w))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_without_duplicates() {
        let table = PhraseTable::builtin().expect("builtin table");
        assert!(table.len() > 500, "{} phrases", table.len());
    }

    #[test]
    fn longest_match_wins() {
        let table = PhraseTable::parse(
            "de\tlagetyp\taxis\nde\tlagetyp normal\tnormal axis.\n",
            Path::new("t"),
        )
        .expect("parse");
        let toks: Vec<String> = ["lagetyp", "normal", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let m = table.longest_match(&toks, 0).expect("match");
        assert_eq!((m.len, m.phrase.target.as_str()), (2, "normal axis."));
        assert!(table.longest_match(&toks, 2).is_none());
    }

    #[test]
    fn rejects_bad_lines_with_line_numbers() {
        let err = PhraseTable::parse("# c\nde\tonly two\n", Path::new("t.tsv")).expect_err("bad");
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = PhraseTable::parse("de\ta\tb\nde\ta\tc\n", Path::new("t.tsv")).expect_err("dup");
        assert!(err.to_string().contains("duplicate"), "{err}");
    }
}
