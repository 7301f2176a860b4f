//! Incremental detokenization and stop strings.
//!
//! [`Detokenizer`] turns a stream of token ids into text deltas that are always valid, complete
//! UTF-8 (a byte-level token that ends mid-character is held until the character completes).
//! [`StopMatcher`] holds back any text that could be the start of a stop string, so a stop
//! string is never emitted, not even partially.

use std::sync::Arc;
use tokenizers::Tokenizer;

pub struct Detokenizer {
    tokenizer: Arc<Tokenizer>,
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
}

impl Detokenizer {
    pub fn new(tokenizer: Arc<Tokenizer>) -> Self {
        Self {
            tokenizer,
            ids: Vec::new(),
            prefix_offset: 0,
            read_offset: 0,
        }
    }

    fn decode(&self, ids: &[u32]) -> String {
        self.tokenizer.decode(ids, true).unwrap_or_default()
    }

    /// Add one token; returns the text it completes (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        self.ids.push(id);
        let prefix = self.decode(&self.ids[self.prefix_offset..self.read_offset]);
        let full = self.decode(&self.ids[self.prefix_offset..]);
        if full.len() > prefix.len() && !full.ends_with('\u{FFFD}') {
            if let Some(delta) = full.get(prefix.len()..) {
                let delta = delta.to_string();
                self.prefix_offset = self.read_offset;
                self.read_offset = self.ids.len();
                return delta;
            }
        }
        String::new()
    }

    /// Text still pending at the end of the sequence (an incomplete character is rendered
    /// lossily as U+FFFD).
    pub fn flush(&mut self) -> String {
        let prefix = self.decode(&self.ids[self.prefix_offset..self.read_offset]);
        let full = self.decode(&self.ids[self.prefix_offset..]);
        self.prefix_offset = self.ids.len();
        self.read_offset = self.ids.len();
        full.get(prefix.len()..).unwrap_or_default().to_string()
    }
}

/// Outcome of feeding text to a [`StopMatcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopCheck {
    /// Text safe to emit now; generation continues.
    Continue(String),
    /// A stop string was found: emit this text (everything before the stop string) and stop.
    Stopped(String),
}

pub struct StopMatcher {
    stops: Vec<String>,
    text: String,
    emitted: usize,
}

impl StopMatcher {
    /// `stops` must be non-empty strings (validated by the API layer; empty ones are ignored).
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            text: String::new(),
            emitted: 0,
        }
    }

    pub fn push(&mut self, delta: &str) -> StopCheck {
        self.text.push_str(delta);
        let pending = &self.text[self.emitted..];
        let hit = self
            .stops
            .iter()
            .filter_map(|s| pending.find(s.as_str()))
            .min();
        if let Some(p) = hit {
            let out = pending[..p].to_string();
            self.emitted = self.text.len();
            return StopCheck::Stopped(out);
        }
        let safe = self.text.len() - self.held_suffix_len();
        let safe = safe.max(self.emitted);
        let out = self.text[self.emitted..safe].to_string();
        self.emitted = safe;
        StopCheck::Continue(out)
    }

    /// Length of the longest pending suffix that is a proper prefix of some stop string.
    fn held_suffix_len(&self) -> usize {
        let pending = &self.text[self.emitted..];
        let mut best = 0;
        for s in &self.stops {
            for (i, _) in pending.char_indices() {
                let suffix = &pending[i..];
                if suffix.len() < s.len() && s.starts_with(suffix) {
                    best = best.max(suffix.len());
                    break;
                }
            }
        }
        best
    }

    /// Release everything held back (end of sequence without a stop string).
    pub fn flush(&mut self) -> String {
        let out = self.text[self.emitted..].to_string();
        self.emitted = self.text.len();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::mock::test_tokenizer;

    #[test]
    fn deltas_are_valid_utf8_and_concatenate_to_the_text() {
        let tok = Arc::new(test_tokenizer());
        let text = "héllo wörld ✓ 心电图 ok";
        let ids = tok.encode(text, false).expect("encode").get_ids().to_vec();
        assert!(
            ids.len() > text.chars().count(),
            "byte-level: several tokens per char"
        );
        let mut d = Detokenizer::new(tok);
        let mut out = String::new();
        for id in ids {
            let delta = d.push(id);
            assert!(!delta.contains('\u{FFFD}'));
            out.push_str(&delta);
        }
        out.push_str(&d.flush());
        assert_eq!(out, text);
    }

    #[test]
    fn stop_strings_are_never_emitted_partially() {
        let mut m = StopMatcher::new(vec!["STOP".into(), "<end>".into()]);
        assert_eq!(m.push("abc S"), StopCheck::Continue("abc ".into()));
        assert_eq!(m.push("T"), StopCheck::Continue(String::new()));
        assert_eq!(m.push("x"), StopCheck::Continue("STx".into()));
        assert_eq!(m.push(" <en"), StopCheck::Continue(" ".into()));
        assert_eq!(m.push("d> tail"), StopCheck::Stopped(String::new()));
    }

    #[test]
    fn stop_inside_a_delta_cuts_before_it() {
        let mut m = StopMatcher::new(vec!["é!".into()]);
        assert_eq!(m.push("caf"), StopCheck::Continue("caf".into()));
        assert_eq!(m.push("é"), StopCheck::Continue(String::new()));
        assert_eq!(m.push("!x"), StopCheck::Stopped(String::new()));
        let mut m = StopMatcher::new(vec!["lo".into()]);
        assert_eq!(m.push("hello"), StopCheck::Stopped("hel".into()));
        let mut m = StopMatcher::new(vec!["zz".into()]);
        assert_eq!(m.push("abz"), StopCheck::Continue("ab".into()));
        assert_eq!(m.flush(), "z");
    }
}
