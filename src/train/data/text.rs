//! Text normalisation and tokenisation shared by translation and language detection.
//!
//! PTB-XL's text has upper-case umlauts inside lower-case words ("unbestÄtigter", "mÖglich"),
//! runs of spaces between statements and glued punctuation ("qrs(t)", "st-senkung"). Everything
//! is lower-cased (Unicode-aware, so `Ä` -> `ä`), then split into words, numbers and single
//! punctuation characters, remembering whether whitespace preceded each token.

/// What a token is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Alphanumeric run containing at least one letter ("sinusrhythmus", "v1", "3x1").
    Word,
    /// Digits, possibly with `.`/`,` between digits ("4.46", "0,2").
    Number,
    /// Any other single non-space character.
    Punct,
}

/// One token of a normalised report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub kind: TokenKind,
    /// Whitespace came before this token in the source text.
    pub space_before: bool,
}

/// Lower-cases (Unicode-aware, `Ä` -> `ä`, `Å` -> `å`) and maps stray symbols to spaces.
pub fn normalize(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '¬' | '½' | '¿' | '©' | '\u{a0}' => ' ',
            c => c,
        })
        .collect()
}

/// Splits already-normalised text into tokens.
pub fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut space_before = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            space_before = true;
            i += 1;
            continue;
        }
        if c.is_alphanumeric() {
            let start = i;
            while i < chars.len() {
                let ch = chars[i];
                if ch.is_alphanumeric() {
                    i += 1;
                    continue;
                }
                // "4.46", "0,2": a separator between digits inside an all-digit run.
                let all_digits = chars[start..i].iter().all(char::is_ascii_digit);
                let next_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
                if (ch == '.' || ch == ',') && all_digits && next_digit {
                    i += 1;
                    continue;
                }
                break;
            }
            let word: String = chars[start..i].iter().collect();
            let kind = if word.chars().any(char::is_alphabetic) {
                TokenKind::Word
            } else {
                TokenKind::Number
            };
            tokens.push(Token {
                text: word,
                kind,
                space_before,
            });
        } else {
            tokens.push(Token {
                text: c.to_string(),
                kind: TokenKind::Punct,
                space_before,
            });
            i += 1;
        }
        space_before = false;
    }
    tokens
}

/// Words of a text (normalised), for vocabularies and language detection.
pub fn words(text: &str) -> Vec<String> {
    tokenize(&normalize(text))
        .into_iter()
        .filter(|t| t.kind == TokenKind::Word)
        .map(|t| t.text)
        .collect()
}

/// True for words a detector should never flag: anything with a digit (lead names "v1",
/// doses "3x1", "2er") and ECG lead names.
pub fn is_neutral_word(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_digit())
        || matches!(
            word,
            "i" | "ii"
                | "iii"
                | "avr"
                | "avl"
                | "avf"
                | "v"
                | "l"
                | "f"
                | "r"
                | "s"
                | "q"
                | "t"
                | "p"
        )
}

/// Joins output pieces `(text, space_before)` and tidies spacing and punctuation:
/// no space before `, . ; : )`, none after `(`, no `.,`/`. .` doubles, no leading punctuation.
pub fn join_pieces(pieces: &[(String, bool)]) -> String {
    let mut raw = String::new();
    for (i, (text, space)) in pieces.iter().enumerate() {
        if i > 0 && *space {
            raw.push(' ');
        }
        raw.push_str(text);
    }
    tidy(&raw)
}

/// Spacing and punctuation clean-up of a joined sentence sequence.
pub fn tidy(raw: &str) -> String {
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: Vec<char> = Vec::with_capacity(collapsed.len());
    for c in collapsed.chars() {
        match c {
            ',' | '.' | ';' | ':' | ')' if out.last() == Some(&' ') => {
                out.pop();
                push_punct(&mut out, c);
            }
            ',' | '.' => push_punct(&mut out, c),
            ' ' if out.last() == Some(&'(') => {}
            c => out.push(c),
        }
    }
    let s: String = out.into_iter().collect();
    s.trim_start_matches([',', '.', ' ', ';'])
        .trim_end_matches([',', ' ', ';'])
        .to_string()
}

/// Pushes `.` or `,` after resolving clashes with a preceding `.`/`,`.
fn push_punct(out: &mut Vec<char>, c: char) {
    match (out.last().copied(), c) {
        (Some('.'), '.') | (Some(','), ',') => {}
        // "abnormal., probably" -> "abnormal, probably"
        (Some('.'), ',') => {
            out.pop();
            out.push(',');
        }
        // "x,." -> "x."
        (Some(','), '.') => {
            out.pop();
            out.push('.');
        }
        _ => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_odd_umlaut_casing() {
        assert_eq!(
            normalize("unvollstÄndiger mÖglich FÜR"),
            "unvollständiger möglich für"
        );
        assert_eq!(normalize("VÄNSTER Å"), "vänster å");
    }

    #[test]
    fn tokenizes_glued_punctuation_and_numbers() {
        let t = tokenize("qrs(t) abnorm 4.46  st-senkung v1,v2 0,2");
        let texts: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "qrs", "(", "t", ")", "abnorm", "4.46", "st", "-", "senkung", "v1", ",", "v2",
                "0,2"
            ]
        );
        assert_eq!(t[5].kind, TokenKind::Number);
        assert!(t[4].space_before && !t[1].space_before);
    }

    #[test]
    fn tidies_punctuation() {
        assert_eq!(
            tidy("sinus rhythm. normal axis . normal ecg ."),
            "sinus rhythm. normal axis. normal ecg."
        );
        assert_eq!(tidy("abnormal. , probably old."), "abnormal, probably old.");
        assert_eq!(tidy(", age undetermined."), "age undetermined.");
        assert_eq!(tidy("qrs( t ) x"), "qrs(t) x");
    }
}
