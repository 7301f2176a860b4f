//! Compact WordNet 3.0 synonym table (lemma -> synsets -> lemma names) with NLTK's
//! `morphy`, enough to reproduce `nltk.corpus.wordnet.synsets(word)` lemma names.
//!
//! The table `data/wordnet_syn.txt.gz` is derived from WordNet 3.0 by
//! `tools/gen_wordnet.py`; its licence is in `data/WORDNET_LICENSE.txt`.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::OnceLock;

static DATA: &[u8] = include_bytes!("data/wordnet_syn.txt.gz");

const POS: [char; 4] = ['n', 'v', 'a', 'r'];

/// Parsed WordNet table.
#[derive(Debug, Default)]
pub struct WordNet {
    synsets: Vec<Vec<String>>,
    /// pos index (n v a r) -> lemma -> synset ids
    index: [HashMap<String, Vec<u32>>; 4],
    exceptions: [HashMap<String, Vec<String>>; 4],
}

fn pos_idx(p: &str) -> Option<usize> {
    POS.iter().position(|c| p.starts_with(*c))
}

impl WordNet {
    fn parse(text: &str) -> WordNet {
        let mut wn = WordNet::default();
        for line in text.lines() {
            let mut it = line.split(' ');
            match it.next() {
                Some("S") => wn
                    .synsets
                    .push(it.filter(|s| !s.is_empty()).map(String::from).collect()),
                Some("I") => {
                    let (Some(p), Some(lemma), Some(ids)) = (it.next(), it.next(), it.next())
                    else {
                        continue;
                    };
                    if let Some(pi) = pos_idx(p) {
                        let v = ids.split(',').filter_map(|x| x.parse().ok()).collect();
                        wn.index[pi].insert(lemma.to_string(), v);
                    }
                }
                Some("E") => {
                    let (Some(p), Some(form)) = (it.next(), it.next()) else {
                        continue;
                    };
                    if let Some(pi) = pos_idx(p) {
                        wn.exceptions[pi].insert(form.to_string(), it.map(String::from).collect());
                    }
                }
                _ => {}
            }
        }
        wn
    }

    /// The shared table, decompressed and parsed on first use (empty if unreadable).
    pub fn get() -> &'static WordNet {
        static WN: OnceLock<WordNet> = OnceLock::new();
        WN.get_or_init(|| {
            let mut s = String::new();
            match flate2::read::GzDecoder::new(DATA).read_to_string(&mut s) {
                Ok(_) => WordNet::parse(&s),
                Err(_) => WordNet::default(),
            }
        })
    }

    /// NLTK `_morphy(form, pos)` (NLTK 3.10: exceptions replace the rules).
    fn morphy(&self, form: &str, pi: usize) -> Vec<String> {
        let subs: &[(&str, &str)] = match pi {
            0 => &[
                ("s", ""),
                ("ses", "s"),
                ("ves", "f"),
                ("xes", "x"),
                ("zes", "z"),
                ("ches", "ch"),
                ("shes", "sh"),
                ("men", "man"),
                ("ies", "y"),
            ],
            1 => &[
                ("s", ""),
                ("ies", "y"),
                ("es", "e"),
                ("es", ""),
                ("ed", "e"),
                ("ed", ""),
                ("ing", "e"),
                ("ing", ""),
            ],
            2 => &[("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
            _ => &[],
        };
        let forms: Vec<String> = match self.exceptions[pi].get(form) {
            Some(ex) => ex.clone(),
            None => subs
                .iter()
                .filter(|(old, _)| form.ends_with(old))
                .map(|(old, new)| format!("{}{}", &form[..form.len() - old.len()], new))
                .collect(),
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for f in std::iter::once(form.to_string()).chain(forms) {
            if self.index[pi].contains_key(&f) && seen.insert(f.clone()) {
                out.push(f);
            }
        }
        out
    }

    /// Lemma names (without '_') of every synset of `word`, plus `word` itself, as NLTK's
    /// METEOR builds them.
    pub fn synonyms(&self, word: &str) -> HashSet<String> {
        let lemma = word.to_lowercase();
        let mut out: HashSet<String> = HashSet::new();
        for pi in 0..4 {
            for form in self.morphy(&lemma, pi) {
                if let Some(ids) = self.index[pi].get(&form) {
                    for &id in ids {
                        if let Some(names) = self.synsets.get(id as usize) {
                            out.extend(names.iter().cloned());
                        }
                    }
                }
            }
        }
        out.insert(word.to_string());
        out
    }
}
