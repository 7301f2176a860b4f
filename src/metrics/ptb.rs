//! Approximation of the Stanford PTBTokenizer (CoreNLP 3.4.x `PTBLexer`, caseless,
//! `-preserveLines -lowerCase`) followed by pycocoevalcap's punctuation filter.
//!
//! The lexer is emulated as a longest-match choice between the main token patterns
//! (WORD, THING, HTHING, NUMBER, DATE, THING3, FRAC, abbreviations, acronyms,
//! contractions, quotes, brackets, dashes, ellipses, symbols).

/// Tokens that pycocoevalcap drops after tokenizing (case-sensitive).
pub const PUNCTUATIONS: [&str; 17] = [
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";",
];

use crate::metrics::ptb_lex::*;

/// Tokenizes one caption into raw PTB tokens (original case, before filtering).
pub fn ptb_tokens(text: &str) -> Vec<String> {
    let s: Vec<char> = text.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if is_space(c)
            || matches!(
                c,
                '|' | '\\' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{FEFF}'
            )
        {
            i += 1;
            continue;
        }
        let rest: String = s[i..s.len().min(i + 6)]
            .iter()
            .collect::<String>()
            .to_lowercase();
        if rest.starts_with("cannot") && !s.get(i + 6).is_some_and(|c| c.is_alphanumeric()) {
            out.push(s[i..i + 3].iter().collect());
            out.push(s[i + 3..i + 6].iter().collect());
            i += 6;
            continue;
        }
        // contraction suffix at the current position
        let r = m_redaux(&s, i);
        if r > 0 {
            out.push(format!("'{}", s[i + 1..i + r].iter().collect::<String>()));
            i += r;
            continue;
        }
        // longest match among word-like patterns
        let mut cands = [
            m_word(&s, i),
            m_thing(&s, i),
            m_hthing(&s, i),
            m_number(&s, i),
            m_date(&s, i),
            m_thing3(&s, i),
            m_abbrev(&s, i),
        ];
        // `word.` / `thing.` before , ; :
        for k in [cands[0], cands[1], cands[2]] {
            if k > 0
                && i + k + 1 < s.len()
                && s[i + k] == '.'
                && matches!(s[i + k + 1], ',' | ';' | ':')
            {
                cands[6] = cands[6].max(k + 1);
            }
        }
        let best = cands.iter().copied().max().unwrap_or(0);
        if best > 0 {
            let mut n = best;
            // n't contraction: a word ending in `n` followed by `'t` splits as `ca n't`
            if (cands[0] == n || cands[1] == n)
                && n >= 2
                && s[i + n - 1].eq_ignore_ascii_case(&'n')
                && i + n + 1 < s.len()
                && is_apos(s[i + n])
                && s[i + n + 1].eq_ignore_ascii_case(&'t')
                && (i + n + 2 == s.len() || !s[i + n + 2].is_alphabetic())
            {
                out.push(s[i..i + n - 1].iter().collect());
                out.push(format!("{}'{}", s[i + n - 1], s[i + n + 1]));
                i += n + 2;
                continue;
            }
            if s[i] == '-' || s[i] == '+' {
                // a signed number only when NUMBER gave the longest match
                if cands[3] != best {
                    n = 0;
                }
            }
            if n > 0 {
                out.push(s[i..i + n].iter().collect());
                i += n;
                continue;
            }
        }
        // punctuation and symbols
        if let Some(f) = fraction(c) {
            out.push(f.to_string());
            i += 1;
            continue;
        }
        match c {
            '(' => out.push("-LRB-".into()),
            ')' => out.push("-RRB-".into()),
            '[' => out.push("-LSB-".into()),
            ']' => out.push("-RSB-".into()),
            '{' => out.push("-LCB-".into()),
            '}' => out.push("-RCB-".into()),
            '\u{2013}' | '\u{2014}' | '\u{2015}' | '\u{0096}' | '\u{0097}' => out.push("--".into()),
            '"' | '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{00AB}' | '\u{00BB}' => {
                out.push("''".into())
            }
            '\'' | '`' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' => out.push("'".into()),
            '-' => {
                let k = run(&s, i, |x| x == '-');
                out.push(if (3..=4).contains(&k) || k == 2 {
                    "--".into()
                } else {
                    "-".repeat(k)
                });
                i += k;
                continue;
            }
            '.' => {
                let k = run(&s, i, |x| x == '.');
                if (3..=5).contains(&k) {
                    out.push("...".into());
                    i += k;
                } else {
                    out.push(".".into());
                    i += 1;
                }
                continue;
            }
            '\u{2026}' | '\u{0085}' => out.push("...".into()),
            '?' | '!' => {
                let k = run(&s, i, |x| x == '?' || x == '!');
                out.push(s[i..i + k].iter().collect());
                i += k;
                continue;
            }
            '*' | '@' | '#' | '_' => {
                let k = run(&s, i, |x| x == c);
                out.push(s[i..i + k].iter().collect());
                i += k;
                continue;
            }
            _ => {
                if !c.is_control() {
                    out.push(c.to_string());
                }
            }
        }
        i += 1;
    }
    out
}

/// Tokenizes one caption as pycocoevalcap does: PTB tokens, lowercased, punctuation dropped.
pub fn coco_tokenize(text: &str) -> String {
    let text = text.replace('\n', " ");
    ptb_tokens(&text)
        .into_iter()
        .map(|t| t.to_lowercase())
        .filter(|t| !PUNCTUATIONS.contains(&t.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}
