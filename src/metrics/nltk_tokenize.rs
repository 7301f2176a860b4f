//! Approximation of NLTK's `word_tokenize` (Punkt English sentence split, then
//! `NLTKWordTokenizer`). The Punkt part is a heuristic without the trained
//! `punkt_tab` parameters: a token ending in `.`, `?` or `!` followed by whitespace ends
//! a sentence unless it is a known abbreviation, or an initial/number followed by a
//! lower-case word.

const ABBREVS: &[&str] = &[
    "e.g", "i.e", "etc", "vs", "dr", "mr", "mrs", "ms", "jr", "sr", "st", "no", "co", "inc", "ltd",
    "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "u.s", "prof", "gen", "gov", "sen", "rep", "lt", "col", "dept", "univ", "ave", "mt",
];

fn is_number_like(t: &str) -> bool {
    // punkt: ^-?[\.,]?\d[\d,\.-]*\.?$
    let s = t.strip_prefix('-').unwrap_or(t);
    let s = s.strip_prefix(['.', ',']).unwrap_or(s);
    let mut ch = s.chars();
    match ch.next() {
        Some(c) if c.is_ascii_digit() => {}
        _ => return false,
    }
    ch.all(|c| c.is_ascii_digit() || matches!(c, ',' | '.' | '-'))
}

/// Heuristic Punkt sentence splitter.
pub fn sent_tokenize(text: &str) -> Vec<String> {
    let chunks: Vec<&str> = text.split_whitespace().collect();
    let mut sents = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    for (k, chunk) in chunks.iter().enumerate() {
        cur.push(chunk);
        let Some(next) = chunks.get(k + 1) else {
            break;
        };
        let last = chunk.chars().last().unwrap_or(' ');
        if !matches!(last, '.' | '?' | '!') {
            continue;
        }
        let brk = if last != '.' {
            true
        } else if chunk.ends_with("..") {
            false
        } else {
            let base = chunk[..chunk.len() - 1].trim_start_matches(['(', '"', '`', '\'', '[', '{']);
            let lower = base.to_lowercase();
            let last_part = lower.rsplit('-').next().unwrap_or("");
            let next_lower = next.chars().next().is_some_and(|c| c.is_lowercase());
            let ends_word = base.chars().last().is_some_and(|c| c.is_alphanumeric());
            if !ends_word {
                true
            } else if ABBREVS.contains(&lower.as_str()) || ABBREVS.contains(&last_part) {
                false
            } else if (base.chars().count() == 1 && base.chars().all(|c| c.is_alphabetic()))
                || is_number_like(base)
            {
                !next_lower
            } else {
                true
            }
        };
        if brk {
            sents.push(cur.join(" "));
            cur.clear();
        }
    }
    if !cur.is_empty() {
        sents.push(cur.join(" "));
    }
    sents
}

fn pad_chars(s: &str, f: impl Fn(char) -> bool) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if f(c) {
            o.push(' ');
            o.push(c);
            o.push(' ');
        } else {
            o.push(c);
        }
    }
    o
}

const CLOSERS: &[char] = &[
    ']', ')', '}', '>', '"', '\'', '\u{bb}', '\u{201d}', '\u{2019}', ' ',
];

/// `([^\.])(\.)([\]\)}>"'»”’ ]*+)\s*$` -> `\1 \2 \3 `
fn final_period(s: &str) -> String {
    let t: Vec<char> = s.trim_end().chars().collect();
    let mut p = t.len();
    while p > 0 && CLOSERS.contains(&t[p - 1]) {
        p -= 1;
    }
    if p >= 2 && t[p - 1] == '.' && t[p - 2] != '.' {
        let head: String = t[..p - 1].iter().collect();
        let tail: String = t[p..].iter().collect();
        format!("{head} . {tail} ")
    } else {
        s.to_string()
    }
}

/// `([:,])([^\d])` -> ` \1 \2` and `([:,])$` -> ` \1 `
fn colon_comma(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut o = String::new();
    let mut i = 0;
    while i < c.len() {
        if matches!(c[i], ':' | ',') {
            if i + 1 < c.len() && !c[i + 1].is_ascii_digit() {
                o.push(' ');
                o.push(c[i]);
                o.push(' ');
                o.push(c[i + 1]);
                i += 2;
                continue;
            } else if i + 1 == c.len() {
                o.push(' ');
                o.push(c[i]);
                o.push(' ');
                i += 1;
                continue;
            }
        }
        o.push(c[i]);
        i += 1;
    }
    o
}

/// NLTKWordTokenizer on one sentence (common rules; contractions of MacIntyre's list
/// other than `cannot` are not split).
pub fn treebank_tokenize(text: &str) -> Vec<String> {
    // starting quotes
    let mut s = pad_chars(text, |c| {
        matches!(c, '\u{ab}' | '\u{201c}' | '\u{2018}' | '\u{201e}' | '`')
    });
    if let Some(rest) = s.strip_prefix('"') {
        s = format!("``{rest}");
    }
    s = s.replace("``", " `` ");
    for open in [' ', '(', '[', '{', '<'] {
        s = s.replace(&format!("{open}\""), &format!("{open} `` "));
        s = s.replace(&format!("{open}''"), &format!("{open} `` "));
    }
    s = split_leading_apostrophe(&s);
    // punctuation
    s = final_period(&s);
    s = colon_comma(&s);
    s = s.replace("...", " ... ");
    s = pad_chars(&s, |c| matches!(c, ';' | '@' | '#' | '$' | '%' | '&'));
    s = pad_chars(&s, |c| ('\u{2012}'..='\u{2015}').contains(&c));
    s = final_period(&s);
    s = pad_chars(&s, |c| matches!(c, '?' | '!'));
    {
        // ([^'])' -> \1 '
        let c: Vec<char> = s.chars().collect();
        let mut o = String::new();
        for i in 0..c.len() {
            if c[i] == '\'' && i > 0 && c[i - 1] != '\'' && c.get(i + 1) == Some(&' ') {
                o.push(' ');
            }
            o.push(c[i]);
        }
        s = o;
    }
    s = pad_chars(&s, |c| c == '*');
    s = pad_chars(&s, |c| {
        matches!(c, ']' | '[' | '(' | ')' | '{' | '}' | '<' | '>')
    });
    s = s.replace("--", " -- ");
    s = format!(" {s} ");
    // ending quotes
    s = pad_chars(&s, |c| matches!(c, '\u{bb}' | '\u{201d}' | '\u{2019}'));
    s = s.replace("''", " '' ").replace('"', " '' ");
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s = format!(" {s} ");
    for suf in [
        "'s", "'S", "'m", "'M", "'d", "'D", "'ll", "'LL", "'re", "'RE", "'ve", "'VE", "n't", "N'T",
    ] {
        let pat = format!("{suf} ");
        let mut o = String::new();
        let mut rest = s.as_str();
        while let Some(pos) = rest.find(&pat) {
            let before = &rest[..pos];
            let prev = before.chars().last();
            o.push_str(before);
            if prev.is_some_and(|c| c != '\'' && c != ' ') {
                o.push(' ');
            }
            o.push_str(&pat);
            rest = &rest[pos + pat.len()..];
        }
        o.push_str(rest);
        s = o;
    }
    let mut out = Vec::new();
    for t in s.split_whitespace() {
        let low = t.to_lowercase();
        let cut = match low.as_str() {
            "cannot" => Some(3),
            "d'ye" => Some(1),
            "gimme" | "gonna" | "gotta" | "lemme" | "wanna" => Some(3),
            "more'n" => Some(4),
            _ => None,
        };
        match cut {
            Some(k) if t.is_char_boundary(k) => {
                out.push(t[..k].to_string());
                out.push(t[k..].to_string());
            }
            _ => out.push(t.to_string()),
        }
    }
    out
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `(?i)(?<!\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)` -> `' `
fn split_leading_apostrophe(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut o = String::with_capacity(s.len() + 4);
    for i in 0..c.len() {
        o.push(c[i]);
        if c[i] != '\'' || (i > 0 && is_word_char(c[i - 1])) {
            continue;
        }
        if !c.get(i + 1).is_some_and(|&x| is_word_char(x)) {
            continue;
        }
        let contraction = ["re", "ve", "ll", "m", "t", "s", "d", "n"]
            .iter()
            .any(|suf| {
                let k = suf.len();
                let got: String = c[i + 1..(i + 1 + k).min(c.len())].iter().collect();
                got.to_lowercase() == *suf && !c.get(i + 1 + k).is_some_and(|&x| is_word_char(x))
            });
        if !contraction {
            o.push(' ');
        }
    }
    o
}

/// `nltk.word_tokenize` approximation.
pub fn word_tokenize(text: &str) -> Vec<String> {
    sent_tokenize(text)
        .iter()
        .flat_map(|s| treebank_tokenize(s))
        .collect()
}
