//! Token patterns of the PTBLexer emulation (longest-match candidates), see `ptb.rs`.

/// Abbreviations (lowercase, without the final period) whose period stays attached.
const ABBREVS: &[&str] = &[
    // months, days
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon",
    "tue", "tues", "wed", "thu", "thurs", "fri", // states (caseless ones)
    "ala", "ariz", "calif", "colo", "conn", "dak", "del", "fla", "ga", "ind", "kan", "kans", "ky",
    "la", "md", "mich", "minn", "mo", "mont", "neb", "nev", "okla", "pa", "penn", "tenn", "tex",
    "va", "vt", "wis", "wisc", "wyo", // companies
    "inc", "co", "cos", "corp", "pty", "ptys", "ppty", "pptys", "ltd", "plc", "bancorp", "dept",
    "bhd", "assn", "univ", "intl", "sys", "invt", "elec", "natl", "mfg", "mtg", // numbers
    "no", "nos", "prop", "ph", "tel", "est", "ext", "sq", "ft", // person titles
    "jr", "sr", "bros", "ed.d", "ph.d", "blvd", "rd", "esq", "etc", "al", "seq", "mr", "mrs", "ms",
    "dr", "drs", "prof", "profs", "sen", "sens", "rep", "reps", "atty", "attys", "lt", "col",
    "gen", "messrs", "gov", "govs", "adm", "rev", "maj", "sgt", "cpl", "pvt", "mt", "capt", "st",
    "ste", "ave", "pres", "lieut", "hon", "brig", "cmdr", "comdr", "pfc", "spc", "supt", "supts",
    "det", "vs", "alex", "wm", "jos", "cie", "a.k.a", "cf", "treas",
];

/// Abbreviations that only count when their first letter is upper case.
const ABBREVS_CAP: &[&str] = &["Ark", "Ill", "Mass", "Miss", "Ore", "Wash"];

pub(crate) fn is_letter(c: char) -> bool {
    c.is_alphabetic()
}
pub(crate) fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}
pub(crate) fn is_alnum(c: char) -> bool {
    is_letter(c) || is_digit(c)
}
pub(crate) fn is_ascii_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}
pub(crate) fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '_' | '\u{058A}' | '\u{2010}' | '\u{2011}')
}
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{00A0}'
}
pub(crate) fn is_apos(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{0092}')
}

pub(crate) fn run(s: &[char], i: usize, f: impl Fn(char) -> bool) -> usize {
    s[i..].iter().take_while(|&&c| f(c)).count()
}

/// THING: alnum+ (hyphen alnum+)*
pub(crate) fn m_thing(s: &[char], i: usize) -> usize {
    let mut n = run(s, i, is_alnum);
    if n == 0 {
        return 0;
    }
    while i + n + 1 < s.len() && is_hyphen(s[i + n]) {
        let k = run(s, i + n + 1, is_alnum);
        if k == 0 {
            break;
        }
        n += 1 + k;
    }
    n
}

/// HTHING: [A-Za-z0-9][A-Za-z0-9.,]*(-([A-Za-z0-9]+|ACRO\.))+
pub(crate) fn m_hthing(s: &[char], i: usize) -> usize {
    if i >= s.len() || !is_ascii_alnum(s[i]) {
        return 0;
    }
    // The middle part is greedy but must be followed by '-'; try every split.
    let body = 1 + run(s, i + 1, |c| is_ascii_alnum(c) || c == '.' || c == ',');
    let mut best = 0;
    for b in (1..=body).rev() {
        let mut n = b;
        let mut ok = false;
        while i + n + 1 < s.len() && s[i + n] == '-' {
            let k = run(s, i + n + 1, is_ascii_alnum);
            if k == 0 {
                break;
            }
            n += 1 + k;
            ok = true;
        }
        if ok && n > best {
            best = n;
        }
    }
    best
}

/// NUMBER: [-+]?(DIGIT+ | DIGIT*([.:,]DIGIT+)+) (longest)
pub(crate) fn m_number(s: &[char], i: usize) -> usize {
    let mut n = 0;
    if i < s.len() && (s[i] == '-' || s[i] == '+') {
        n = 1;
    }
    let d = run(s, i + n, is_digit);
    let mut m = n + d;
    loop {
        let p = i + m;
        if p + 1 < s.len() && matches!(s[p], '.' | ':' | ',') && is_digit(s[p + 1]) {
            m += 1 + run(s, p + 1, is_digit);
        } else {
            break;
        }
    }
    if m == n {
        0
    } else {
        m
    }
}

/// DATE: d{1,2}[-/]d{1,2}[-/]d{2,4}
pub(crate) fn m_date(s: &[char], i: usize) -> usize {
    let a = run(s, i, is_digit);
    if !(1..=2).contains(&a) || i + a >= s.len() || !matches!(s[i + a], '-' | '/') {
        return 0;
    }
    let p = i + a + 1;
    let b = run(s, p, is_digit);
    if !(1..=2).contains(&b) || p + b >= s.len() || !matches!(s[p + b], '-' | '/') {
        return 0;
    }
    let q = p + b + 1;
    let c = run(s, q, is_digit).min(4);
    if c < 2 {
        return 0;
    }
    q + c - i
}

/// Matches `[A-Za-z0-9]+(-[A-Za-z]+){0,2}` and returns its length.
pub(crate) fn thing3_part(s: &[char], i: usize) -> usize {
    let mut n = run(s, i, is_ascii_alnum);
    if n == 0 {
        return 0;
    }
    for _ in 0..2 {
        if i + n + 1 < s.len() && s[i + n] == '-' {
            let k = run(s, i + n + 1, |c| c.is_ascii_alphabetic());
            if k > 0 {
                n += 1 + k;
                continue;
            }
        }
        break;
    }
    n
}

/// THING3: part(/part){1,2}
pub(crate) fn m_thing3(s: &[char], i: usize) -> usize {
    let mut n = thing3_part(s, i);
    if n == 0 {
        return 0;
    }
    let mut slashes = 0;
    while slashes < 2 {
        let p = i + n;
        let skip = if p < s.len() && s[p] == '/' {
            1
        } else if p + 1 < s.len() && s[p] == '\\' && s[p + 1] == '/' {
            2
        } else {
            break;
        };
        let k = thing3_part(s, p + skip);
        if k == 0 {
            break;
        }
        n += skip + k;
        slashes += 1;
    }
    if slashes == 0 {
        0
    } else {
        n
    }
}

/// Letters-only word.
pub(crate) fn m_word(s: &[char], i: usize) -> usize {
    run(s, i, is_letter)
}

/// Abbreviation or acronym with its final period; returns the length including it.
pub(crate) fn m_abbrev(s: &[char], i: usize) -> usize {
    // candidate: letters and internal periods, then a final period
    let mut n = 0;
    while i + n < s.len() && (is_letter(s[i + n]) || (s[i + n] == '.' && n > 0)) {
        n += 1;
    }
    // try each period position from the longest
    let mut best = 0;
    for end in (1..=n).rev() {
        if s[i + end - 1] != '.' || end < 2 {
            continue;
        }
        let base: String = s[i..i + end - 1].iter().collect();
        if base.ends_with('.') {
            continue;
        }
        let lower = base.to_lowercase();
        let single = base.chars().count() == 1 && base.chars().all(|c| c.is_ascii_alphabetic());
        let acro = {
            let parts: Vec<&str> = lower.split('.').collect();
            parts.len() >= 2
                && parts
                    .iter()
                    .all(|p| p.chars().count() == 1 && p.chars().all(|c| c.is_ascii_alphabetic()))
        };
        if single
            || acro
            || ABBREVS.contains(&lower.as_str())
            || ABBREVS_CAP.contains(&base.as_str())
        {
            best = end;
            break;
        }
    }
    best
}

pub(crate) fn fraction(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{00BC}' => "1/4",
        '\u{00BD}' => "1/2",
        '\u{00BE}' => "3/4",
        '\u{2153}' => "1/3",
        '\u{2154}' => "2/3",
        '\u{2155}' => "1/5",
        '\u{2156}' => "2/5",
        '\u{2157}' => "3/5",
        '\u{2158}' => "4/5",
        '\u{2159}' => "1/6",
        '\u{215A}' => "5/6",
        '\u{215B}' => "1/8",
        '\u{215C}' => "3/8",
        '\u{215D}' => "5/8",
        '\u{215E}' => "7/8",
        _ => return None,
    })
}

pub(crate) const REDAUX: [&str; 6] = ["s", "m", "d", "re", "ve", "ll"];

/// Length of a contraction suffix (`'s`, `'ll`, ...) at `i`, if followed by a non-letter.
pub(crate) fn m_redaux(s: &[char], i: usize) -> usize {
    if i >= s.len() || !is_apos(s[i]) {
        return 0;
    }
    for r in REDAUX {
        let k = r.chars().count();
        if i + 1 + k <= s.len() {
            let got: String = s[i + 1..i + 1 + k]
                .iter()
                .collect::<String>()
                .to_lowercase();
            let next_ok = i + 1 + k == s.len() || !s[i + 1 + k].is_ascii_alphabetic();
            if got == r && next_ok {
                return 1 + k;
            }
        }
    }
    0
}
