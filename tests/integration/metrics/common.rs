#![allow(dead_code)]
use meit::metrics::{parse_jsonl, Pair};
use serde_json::Value;

pub fn fixtures() -> (Vec<Pair>, Value) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics");
    let pairs =
        parse_jsonl(&std::fs::read_to_string(format!("{dir}/public.jsonl")).unwrap()).unwrap();
    let exp: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}/public_expected.json")).unwrap(),
    )
    .unwrap();
    (pairs, exp)
}

pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Collects comparisons; reports the max abs diff and all failures.
pub struct Checker {
    pub name: String,
    pub tol: f64,
    pub max_diff: f64,
    pub fails: Vec<String>,
    pub n: usize,
}

impl Checker {
    pub fn new(name: &str, tol: f64) -> Self {
        Checker {
            name: name.into(),
            tol,
            max_diff: 0.0,
            fails: vec![],
            n: 0,
        }
    }
    pub fn check(&mut self, label: &str, got: f64, want: f64) {
        let d = (got - want).abs();
        self.n += 1;
        if d > self.max_diff {
            self.max_diff = d;
        }
        if d > self.tol || d.is_nan() {
            self.fails
                .push(format!("{label}: got {got} want {want} diff {d:e}"));
        }
    }
    pub fn finish(self) {
        eprintln!(
            "[{}] {} comparisons, tol {:e}, max abs diff {:e}, {} failures",
            self.name,
            self.n,
            self.tol,
            self.max_diff,
            self.fails.len()
        );
        for x in &self.fails {
            eprintln!("  {x}");
        }
        assert!(
            self.fails.is_empty(),
            "{}: {} failures",
            self.name,
            self.fails.len()
        );
    }
}
