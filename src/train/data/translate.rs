//! Report translation (German/Swedish -> English), language detection and coverage.
//!
//! Translation = normalise, tokenise, then greedy longest-phrase match over the tokens with
//! the committed phrase table; tokens without a phrase (English words, numbers, leads,
//! punctuation) pass through; spacing and punctuation are tidied at the end.
//!
//! A word is "untranslated" when it passes through but is not in the English vocabulary:
//! the committed `english_vocab.txt` (every word of the PTB-XL reports that carry no
//! German/Swedish marker, see [`Translator::english_vocab_from_reports`]) plus all words of
//! the table's targets plus lead names and anything containing a digit.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::phrases::{PhraseLang, PhraseTable};
use super::text::{is_neutral_word, join_pieces, normalize, tokenize, Token, TokenKind};

/// English words and abbreviations that occur only inside German/Swedish reports (SCP codes
/// in "Edit:" notes, single letters of "typ b", "extrasystole(n)", plain English words).
pub const EXTRA_ENGLISH: &[&str] = &[
    "ami", "angina", "apparent", "b", "cycle", "deeply", "enzyme", "hear", "iscan", "lah", "lahb",
    "n", "nst", "pectoris", "plmi", "pmi", "pq", "qsavl", "re", "remain", "repol", "si", "studies",
    "wpw",
];

/// The committed English vocabulary (one word per line).
pub const BUILTIN_VOCAB: &str = include_str!("english_vocab.txt");

/// Language of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    De,
    Sv,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
            Language::Sv => "sv",
        }
    }
}

/// Result of translating one report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translation {
    pub english: String,
    /// No German/Swedish word is left in `english`.
    pub fully_translated: bool,
    /// Words left that are not in the English vocabulary, in order of appearance.
    pub untranslated: Vec<String>,
    /// Language detected in the original.
    pub language: Language,
}

/// Share of reports fully translated and the words that were left.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub reports: usize,
    pub fully_translated: usize,
    /// `fully_translated / reports` (1.0 for no reports).
    pub share: f64,
    /// Reports per detected language.
    pub languages: Vec<(Language, usize)>,
    /// Most frequent untranslated words (occurrences), most frequent first.
    pub top_untranslated: Vec<(String, usize)>,
}

/// Phrase table + English vocabulary + language markers.
#[derive(Debug, Clone, Default)]
pub struct Translator {
    table: PhraseTable,
    vocab: HashSet<String>,
    de_markers: HashSet<String>,
    sv_markers: HashSet<String>,
}

impl Translator {
    /// Builds a translator; `vocab` is extended with the table's target words.
    pub fn new(table: PhraseTable, vocab: impl IntoIterator<Item = String>) -> Self {
        let mut vocab: HashSet<String> = vocab.into_iter().collect();
        vocab.extend(EXTRA_ENGLISH.iter().map(|w| w.to_string()));
        vocab.extend(table.target_words());
        // A word that is also English ("repol" in MIMIC) does not mark a language.
        let mut de_markers = table.marker_words(PhraseLang::German);
        let mut sv_markers = table.marker_words(PhraseLang::Swedish);
        de_markers.retain(|w| !vocab.contains(w));
        sv_markers.retain(|w| !vocab.contains(w));
        Translator {
            table,
            vocab,
            de_markers,
            sv_markers,
        }
    }

    /// The committed table and vocabulary. The table is checked by a unit test; should it
    /// ever fail to parse, this degrades to an empty table (every foreign word is reported
    /// as untranslated) rather than panicking.
    pub fn builtin() -> &'static Translator {
        static BUILTIN: OnceLock<Translator> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            let table = PhraseTable::builtin().unwrap_or_default();
            let vocab = BUILTIN_VOCAB
                .lines()
                .map(str::trim)
                .filter(|w| !w.is_empty() && !w.starts_with('#'))
                .map(str::to_string);
            Translator::new(table, vocab)
        })
    }

    pub fn table(&self) -> &PhraseTable {
        &self.table
    }

    /// True when `word` (normalised) counts as English.
    pub fn is_english_word(&self, word: &str) -> bool {
        is_neutral_word(word) || self.vocab.contains(word)
    }

    /// Words of the reports that carry no German/Swedish marker (no `ä ö ü å ß`, no marker
    /// word of the table): the English vocabulary, without lead names and numbers.
    pub fn english_vocab_from_reports<S: AsRef<str>>(
        reports: impl IntoIterator<Item = S>,
        table: &PhraseTable,
    ) -> BTreeSet<String> {
        let markers: HashSet<String> = table
            .marker_words(PhraseLang::German)
            .into_iter()
            .chain(table.marker_words(PhraseLang::Swedish))
            .collect();
        let mut vocab = BTreeSet::new();
        for report in reports {
            let words: Vec<String> = tokenize(&normalize(report.as_ref()))
                .into_iter()
                .filter(|t| t.kind == TokenKind::Word)
                .map(|t| t.text)
                .collect();
            let foreign = words
                .iter()
                .any(|w| w.contains(['ä', 'ö', 'ü', 'å', 'ß']) || markers.contains(w));
            if !foreign {
                vocab.extend(words.into_iter().filter(|w| !is_neutral_word(w)));
            }
        }
        vocab
    }

    /// Detects the language of a report from marker words and letters.
    pub fn detect_language(&self, report: &str) -> Language {
        self.detect_tokens(&tokenize(&normalize(report)))
    }

    fn detect_tokens(&self, tokens: &[Token]) -> Language {
        let (mut de, mut sv) = (0usize, 0usize);
        for t in tokens.iter().filter(|t| t.kind == TokenKind::Word) {
            let w = t.text.as_str();
            de += usize::from(self.de_markers.contains(w)) + usize::from(w.contains(['ü', 'ß']));
            sv += usize::from(self.sv_markers.contains(w)) + usize::from(w.contains('å'));
            if w.contains(['ä', 'ö'])
                && !self.de_markers.contains(w)
                && !self.sv_markers.contains(w)
            {
                de += 1; // unknown umlaut word: German is ~50x more frequent than Swedish here
            }
        }
        match (de, sv) {
            (0, 0) => Language::En,
            (de, sv) if sv > de => Language::Sv,
            _ => Language::De,
        }
    }

    /// Translates one report.
    pub fn translate(&self, report: &str) -> Translation {
        let tokens = tokenize(&normalize(report));
        let language = self.detect_tokens(&tokens);
        let texts: Vec<String> = tokens.iter().map(|t| t.text.clone()).collect();
        let mut pieces: Vec<(String, bool)> = Vec::with_capacity(tokens.len());
        let mut untranslated = Vec::new();
        let mut after_phrase = false;
        let mut i = 0;
        while i < tokens.len() {
            if let Some(m) = self.table.longest_match(&texts, i) {
                if !m.phrase.target.is_empty() {
                    pieces.push((m.phrase.target.clone(), true));
                }
                after_phrase = true;
                i += m.len;
                continue;
            }
            let t = &tokens[i];
            if t.kind == TokenKind::Word && !self.is_english_word(&t.text) {
                untranslated.push(t.text.clone());
            }
            let space = t.space_before || (after_phrase && t.kind != TokenKind::Punct);
            pieces.push((t.text.clone(), space));
            after_phrase = false;
            i += 1;
        }
        let mut english = join_pieces(&pieces);
        if language != Language::En && !english.is_empty() && !english.ends_with(['.', '!', '?']) {
            english.push('.');
        }
        Translation {
            english,
            fully_translated: untranslated.is_empty(),
            untranslated,
            language,
        }
    }

    /// Coverage over many reports; `top` = how many untranslated words to list.
    pub fn coverage<S: AsRef<str>>(
        &self,
        reports: impl IntoIterator<Item = S>,
        top: usize,
    ) -> Coverage {
        let mut cov = Coverage::default();
        let mut words: HashMap<String, usize> = HashMap::new();
        let mut langs: HashMap<Language, usize> = HashMap::new();
        for report in reports {
            let t = self.translate(report.as_ref());
            cov.reports += 1;
            cov.fully_translated += usize::from(t.fully_translated);
            *langs.entry(t.language).or_default() += 1;
            for w in t.untranslated {
                *words.entry(w).or_default() += 1;
            }
        }
        cov.share = if cov.reports == 0 {
            1.0
        } else {
            cov.fully_translated as f64 / cov.reports as f64
        };
        cov.languages = langs.into_iter().collect();
        cov.languages.sort();
        cov.top_untranslated = top_counts(words, top);
        cov
    }
}

/// The `n` largest counts, ties broken by word.
pub(crate) fn top_counts(counts: HashMap<String, usize>, n: usize) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// Translates with the built-in table (see [`Translator::translate`]).
pub fn translate(report: &str) -> Translation {
    Translator::builtin().translate(report)
}

/// Detects the language with the built-in table.
pub fn detect_language(report: &str) -> Language {
    Translator::builtin().detect_language(report)
}

/// Coverage with the built-in table, listing the 20 most frequent untranslated words.
pub fn coverage<S: AsRef<str>>(reports: impl IntoIterator<Item = S>) -> Coverage {
    Translator::builtin().coverage(reports, 20)
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
