//! NLTK 3.10 `PorterStemmer` in its default `NLTK_EXTENSIONS` mode.

type W = Vec<char>;

/// Porter stemmer, NLTK_EXTENSIONS mode.
#[derive(Debug, Clone, Default)]
pub struct PorterStemmer;

enum Cond {
    None,
    PosMeasure,
    MeasureGt1,
    IonStem,
    /// NLTK's `logi` rule: positive measure of the word minus its last three letters.
    Logi,
    /// step 1b `*d` rule: last letter of the stem not in l, s, z.
    NotLsz,
    /// step 1b: measure 1 and ends cvc.
    M1Cvc,
    /// step 1c: stem longer than 1 ending in a consonant.
    YRule,
    /// step 5b: measure of the word minus its last letter > 1.
    Ll,
}

fn ends(w: &[char], s: &str) -> bool {
    let n = s.chars().count();
    w.len() >= n && w[w.len() - n..].iter().copied().eq(s.chars())
}

fn cut(w: &[char], s: &str) -> W {
    w[..w.len() - s.chars().count()].to_vec()
}

fn cat(w: &[char], s: &str) -> W {
    let mut v = w.to_vec();
    v.extend(s.chars());
    v
}

fn is_cons(w: &[char], i: usize) -> bool {
    match w[i] {
        'a' | 'e' | 'i' | 'o' | 'u' => false,
        'y' => {
            if i == 0 {
                true
            } else {
                !is_cons(w, i - 1)
            }
        }
        _ => true,
    }
}

fn measure(w: &[char]) -> usize {
    let seq: Vec<bool> = (0..w.len()).map(|i| is_cons(w, i)).collect();
    seq.windows(2).filter(|p| !p[0] && p[1]).count()
}

fn contains_vowel(w: &[char]) -> bool {
    (0..w.len()).any(|i| !is_cons(w, i))
}

fn ends_double_cons(w: &[char]) -> bool {
    let n = w.len();
    n >= 2 && w[n - 1] == w[n - 2] && is_cons(w, n - 1)
}

fn ends_cvc(w: &[char]) -> bool {
    let n = w.len();
    (n >= 3
        && is_cons(w, n - 3)
        && !is_cons(w, n - 2)
        && is_cons(w, n - 1)
        && !matches!(w[n - 1], 'w' | 'x' | 'y'))
        || (n == 2 && !is_cons(w, 0) && is_cons(w, 1))
}

impl PorterStemmer {
    /// Creates the stemmer.
    pub fn new() -> Self {
        PorterStemmer
    }

    fn check(&self, c: &Cond, stem: &[char], word: &[char]) -> bool {
        match c {
            Cond::None => true,
            Cond::PosMeasure => measure(stem) > 0,
            Cond::MeasureGt1 => measure(stem) > 1,
            Cond::IonStem => measure(stem) > 1 && matches!(stem.last(), Some('s') | Some('t')),
            Cond::Logi => word.len() >= 3 && measure(&word[..word.len() - 3]) > 0,
            Cond::NotLsz => !matches!(word.last(), Some('l') | Some('s') | Some('z')),
            Cond::M1Cvc => measure(stem) == 1 && ends_cvc(stem),
            Cond::YRule => stem.len() > 1 && is_cons(stem, stem.len() - 1),
            Cond::Ll => !word.is_empty() && measure(&word[..word.len() - 1]) > 1,
        }
    }

    fn apply(&self, word: &[char], rules: &[(&str, &str, Cond)]) -> W {
        for (suffix, repl, cond) in rules {
            if *suffix == "*d" {
                if ends_double_cons(word) {
                    let stem = &word[..word.len() - 2];
                    return if self.check(cond, stem, word) {
                        cat(stem, repl)
                    } else {
                        word.to_vec()
                    };
                }
                continue;
            }
            if ends(word, suffix) {
                let stem = cut(word, suffix);
                return if self.check(cond, &stem, word) {
                    cat(&stem, repl)
                } else {
                    word.to_vec()
                };
            }
        }
        word.to_vec()
    }

    fn step1a(&self, w: &[char]) -> W {
        if ends(w, "ies") && w.len() == 4 {
            return cat(&cut(w, "ies"), "ie");
        }
        self.apply(
            w,
            &[
                ("sses", "ss", Cond::None),
                ("ies", "i", Cond::None),
                ("ss", "ss", Cond::None),
                ("s", "", Cond::None),
            ],
        )
    }

    fn step1b(&self, w: &[char]) -> W {
        if ends(w, "ied") {
            return if w.len() == 4 {
                cat(&cut(w, "ied"), "ie")
            } else {
                cat(&cut(w, "ied"), "i")
            };
        }
        if ends(w, "eed") {
            let stem = cut(w, "eed");
            return if measure(&stem) > 0 {
                cat(&stem, "ee")
            } else {
                w.to_vec()
            };
        }
        let mut inter: Option<W> = None;
        for suf in ["ed", "ing"] {
            if ends(w, suf) {
                let s = cut(w, suf);
                if contains_vowel(&s) {
                    inter = Some(s);
                    break;
                }
            }
        }
        let Some(inter) = inter else {
            return w.to_vec();
        };
        let last: String = inter.last().map(|c| c.to_string()).unwrap_or_default();
        self.apply(
            &inter,
            &[
                ("at", "ate", Cond::None),
                ("bl", "ble", Cond::None),
                ("iz", "ize", Cond::None),
                ("*d", &last, Cond::NotLsz),
                ("", "e", Cond::M1Cvc),
            ],
        )
    }

    fn step1c(&self, w: &[char]) -> W {
        self.apply(w, &[("y", "i", Cond::YRule)])
    }

    fn step2(&self, w: &[char]) -> W {
        if ends(w, "alli") && measure(&cut(w, "alli")) > 0 {
            return self.step2(&cat(&cut(w, "alli"), "al"));
        }
        use Cond::PosMeasure as P;
        self.apply(
            w,
            &[
                ("ational", "ate", P),
                ("tional", "tion", P),
                ("enci", "ence", P),
                ("anci", "ance", P),
                ("izer", "ize", P),
                ("bli", "ble", P),
                ("alli", "al", P),
                ("entli", "ent", P),
                ("eli", "e", P),
                ("ousli", "ous", P),
                ("ization", "ize", P),
                ("ation", "ate", P),
                ("ator", "ate", P),
                ("alism", "al", P),
                ("iveness", "ive", P),
                ("fulness", "ful", P),
                ("ousness", "ous", P),
                ("aliti", "al", P),
                ("iviti", "ive", P),
                ("biliti", "ble", P),
                ("fulli", "ful", P),
                ("logi", "log", Cond::Logi),
            ],
        )
    }

    fn step3(&self, w: &[char]) -> W {
        use Cond::PosMeasure as P;
        self.apply(
            w,
            &[
                ("icate", "ic", P),
                ("ative", "", P),
                ("alize", "al", P),
                ("iciti", "ic", P),
                ("ical", "ic", P),
                ("ful", "", P),
                ("ness", "", P),
            ],
        )
    }

    fn step4(&self, w: &[char]) -> W {
        use Cond::MeasureGt1 as G;
        self.apply(
            w,
            &[
                ("al", "", G),
                ("ance", "", G),
                ("ence", "", G),
                ("er", "", G),
                ("ic", "", G),
                ("able", "", G),
                ("ible", "", G),
                ("ant", "", G),
                ("ement", "", G),
                ("ment", "", G),
                ("ent", "", G),
                ("ion", "", Cond::IonStem),
                ("ou", "", G),
                ("ism", "", G),
                ("ate", "", G),
                ("iti", "", G),
                ("ous", "", G),
                ("ive", "", G),
                ("ize", "", G),
            ],
        )
    }

    fn step5a(&self, w: &[char]) -> W {
        if ends(w, "e") {
            let stem = cut(w, "e");
            let m = measure(&stem);
            if m > 1 || (m == 1 && !ends_cvc(&stem)) {
                return stem;
            }
        }
        w.to_vec()
    }

    fn step5b(&self, w: &[char]) -> W {
        self.apply(w, &[("ll", "l", Cond::Ll)])
    }

    /// Stems one word (lowercased first, as NLTK does by default).
    pub fn stem(&self, word: &str) -> String {
        let lower = word.to_lowercase();
        let pool = match word {
            "sky" | "skies" => Some("sky"),
            "dying" => Some("die"),
            "lying" => Some("lie"),
            "tying" => Some("tie"),
            "news" => Some("news"),
            "innings" | "inning" => Some("inning"),
            "outings" | "outing" => Some("outing"),
            "cannings" | "canning" => Some("canning"),
            "howe" => Some("howe"),
            "proceed" => Some("proceed"),
            "exceed" => Some("exceed"),
            "succeed" => Some("succeed"),
            _ => None,
        };
        if let Some(p) = pool {
            return p.to_string();
        }
        if word.chars().count() <= 2 {
            return lower;
        }
        let mut w: W = lower.chars().collect();
        w = self.step1a(&w);
        w = self.step1b(&w);
        w = self.step1c(&w);
        w = self.step2(&w);
        w = self.step3(&w);
        w = self.step4(&w);
        w = self.step5a(&w);
        w = self.step5b(&w);
        w.into_iter().collect()
    }
}
