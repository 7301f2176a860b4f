//! `trainer eval` end to end: load data and model, run the tasks through the serving engine,
//! score, and write `outputs.jsonl`, `metrics.json`, `results.md` and `robustness.svg`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::Device;
use serde_json::{json, Value};

use crate::engine::{self, candle_backend::CandleBackend, EngineConfig, EngineHandle};
use crate::model::bundle::{BackboneSource, LoadOptions, MeitModel, Precision};
use crate::model::kv::KvDtype;
use crate::model::{chat, tokenizer};
use crate::telemetry::Metrics;

use super::baselines::{embed, nearest};
use super::noise::NoiseSpec;
use super::ptbxl_set::{mode_report, PtbxlSet};
use super::results;
use super::runner::{generate_all, wait_ready, Generated};
use super::scoring::{self, System, ZeroShotOutcome};
use super::scp_map::ScpMapper;
use super::zeroshot;
use super::EvalError;

/// Which tasks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tasks {
    pub quality: bool,
    pub zeroshot: bool,
    pub noise: bool,
}

impl Tasks {
    /// Parses `quality,zeroshot,noise` (any subset, comma-separated).
    pub fn parse(s: &str) -> Result<Self, EvalError> {
        let mut t = Tasks {
            quality: false,
            zeroshot: false,
            noise: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "quality" => t.quality = true,
                "zeroshot" => t.zeroshot = true,
                "noise" => t.noise = true,
                other => {
                    return Err(EvalError::Option(format!(
                        "unknown task `{other}` (quality, zeroshot, noise)"
                    )))
                }
            }
        }
        if !(t.quality || t.zeroshot || t.noise) {
            return Err(EvalError::Option("no task selected".into()));
        }
        Ok(t)
    }
}

/// Everything `trainer eval` needs.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub ptbxl: PathBuf,
    pub out: PathBuf,
    /// Backbone: `default`, a GGUF file or an HF directory.
    pub model: String,
    pub adapter: Option<PathBuf>,
    pub precision: Precision,
    /// KV cache elements; `None`: the precision's default (`bundle::default_kv_cache`).
    pub kv_cache: Option<KvDtype>,
    pub instruction: String,
    /// First N test records (all when None).
    pub limit: Option<usize>,
    pub max_tokens: usize,
    pub tasks: Tasks,
    pub other: Option<PathBuf>,
    /// First N test records for the noise sweep (default: the quality set).
    pub noise_limit: Option<usize>,
    /// First N training records as retrieval candidates (all when None).
    pub train_limit: Option<usize>,
    /// First N records per zero-shot list.
    pub zeroshot_limit: Option<usize>,
    pub seed: u64,
    /// MEIT protocol batch size (0 = the whole set as one batch).
    pub meit_batch: usize,
    pub max_running: usize,
}

/// One line of `outputs.jsonl`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputRow {
    pub task: String,
    pub level: String,
    pub dataset: String,
    pub record: String,
    pub reference: Option<String>,
    pub labels: Vec<String>,
    pub generated: Option<String>,
    pub completion_tokens: usize,
    pub finish: Option<String>,
    pub statements: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a run produced (paths and headline numbers), for the CLI and tests.
#[derive(Debug, Clone)]
pub struct EvalSummary {
    pub out: PathBuf,
    pub metrics: Value,
    pub wall_seconds: f64,
}

fn seed_for(base: u64, level: usize, record: usize) -> u64 {
    base.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((level as u64) << 32)
        .wrapping_add(record as u64)
}

struct Ctx {
    engine: EngineHandle,
    prompt: Vec<u32>,
    max_tokens: usize,
}

impl Ctx {
    async fn generate(&self, ecgs: Vec<(String, Vec<f32>)>) -> Result<Vec<Generated>, EvalError> {
        generate_all(&self.engine, &self.prompt, ecgs, self.max_tokens).await
    }
}

/// Runs the benchmark (blocking; starts its own tokio runtime and engine thread).
pub fn run(opts: &EvalOptions) -> Result<EvalSummary, EvalError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EvalError::io(&opts.out, e))?;
    rt.block_on(run_async(opts))
}

async fn run_async(opts: &EvalOptions) -> Result<EvalSummary, EvalError> {
    let t0 = Instant::now();
    let mut timings = serde_json::Map::new();
    std::fs::create_dir_all(&opts.out).map_err(|e| EvalError::io(&opts.out, e))?;
    let set = PtbxlSet::load(&opts.ptbxl)?;
    let mut test = set.test.clone();
    test.truncate(opts.limit.unwrap_or(usize::MAX));
    if test.is_empty() {
        return Err(EvalError::Empty(format!(
            "no test-fold record on disk under {}",
            opts.ptbxl.display()
        )));
    }
    let test_ecg: Vec<Vec<f32>> = test
        .iter()
        .map(|r| set.signal(r))
        .collect::<Result<_, _>>()?;
    tracing::info!(
        "PTB-XL: {} test records, {} training records on disk",
        test.len(),
        set.train_on_disk.len()
    );
    timings.insert("load_data_s".into(), json!(t0.elapsed().as_secs_f64()));

    let t = Instant::now();
    let load = LoadOptions {
        backbone: BackboneSource::parse(&opts.model),
        adapter: opts.adapter.clone(),
        prefix_slots: 1,
        precision: opts.precision,
        kv_cache: opts.kv_cache,
    };
    let model = MeitModel::load(&load, &Device::Cpu)?;
    let trained = model.trained;
    let kv_cache = model.llm.kv_dtype();
    let tok = Arc::new(model.tokenizer.clone());
    let prompt = tokenizer::encode(&tok, &chat::user_prompt(&opts.instruction))?;
    timings.insert("load_model_s".into(), json!(t.elapsed().as_secs_f64()));

    // Baselines need the encoder before the model moves onto the engine thread.
    let t = Instant::now();
    let mode = mode_report(&set.train_reports).unwrap_or_default();
    let mut retrieval: Vec<String> = Vec::new();
    let mut retrieval_records: Vec<String> = Vec::new();
    if opts.tasks.quality {
        let train: Vec<_> = set
            .train_on_disk
            .iter()
            .take(opts.train_limit.unwrap_or(usize::MAX))
            .collect();
        let mut cand = Vec::with_capacity(train.len());
        for r in &train {
            cand.push(embed(&model, &set.signal(r)?)?);
        }
        for ecg in &test_ecg {
            let q = embed(&model, ecg)?;
            match nearest(&cand, &q) {
                Some((i, _)) => {
                    retrieval.push(train[i].reference.clone());
                    retrieval_records.push(train[i].record.clone());
                }
                None => {
                    retrieval.push(String::new());
                    retrieval_records.push(String::new());
                }
            }
        }
        timings.insert("retrieval_embed_s".into(), json!(t.elapsed().as_secs_f64()));
        timings.insert("retrieval_candidates".into(), json!(train.len()));
    }

    let (zs_records, zs_notes) = match (&opts.other, opts.tasks.zeroshot) {
        (Some(dir), true) => zeroshot::load_all(dir, opts.zeroshot_limit)?,
        (None, true) => (
            Vec::new(),
            vec!["--other not given: zero-shot skipped".into()],
        ),
        _ => (Vec::new(), Vec::new()),
    };
    let noise_n = opts.noise_limit.unwrap_or(test.len()).min(test.len());
    let cfg = EngineConfig {
        max_running: opts.max_running.max(1),
        max_waiting: test.len().max(zs_records.len()).max(noise_n) + 16,
        ..EngineConfig::default()
    };
    let metrics = Arc::new(Metrics::new().map_err(|e| EvalError::Option(e.to_string()))?);
    let engine = engine::spawn(CandleBackend::new(model), tok, cfg, metrics);
    wait_ready(&engine, Duration::from_secs(600)).await?;
    let ctx = Ctx {
        engine,
        prompt,
        max_tokens: opts.max_tokens,
    };
    let mapper = ScpMapper::new();
    let mut rows: Vec<OutputRow> = Vec::new();
    let mut out = serde_json::Map::new();
    let ids: Vec<String> = test.iter().map(|r| r.record.clone()).collect();
    let refs: Vec<String> = test.iter().map(|r| r.reference.clone()).collect();
    let row = |task: &str, level: &str, i: usize, g: &Generated| OutputRow {
        task: task.into(),
        level: level.into(),
        dataset: "ptbxl".into(),
        record: ids[i].clone(),
        reference: Some(refs[i].clone()),
        labels: test[i].scp.iter().cloned().collect(),
        generated: Some(g.text.clone()),
        completion_tokens: g.completion_tokens,
        finish: Some(g.finish.into()),
        statements: mapper.map(&g.text).into_iter().collect(),
        note: None,
    };

    // --- quality ---
    let mut clean: Option<Vec<Generated>> = None;
    if opts.tasks.quality {
        let t = Instant::now();
        tracing::info!("quality: generating {} reports", ids.len());
        let gens = ctx
            .generate(ids.iter().cloned().zip(test_ecg.iter().cloned()).collect())
            .await?;
        timings.insert(
            "quality_generate_s".into(),
            json!(t.elapsed().as_secs_f64()),
        );
        let tokens: usize = gens.iter().map(|g| g.completion_tokens).sum();
        timings.insert("quality_generated_tokens".into(), json!(tokens));
        for (i, g) in gens.iter().enumerate() {
            rows.push(row("quality", "clean", i, g));
        }
        let model_reports: Vec<String> = gens.iter().map(|g| g.text.clone()).collect();
        let mode_reports = vec![mode.clone(); test.len()];
        let systems = [
            System {
                name: "model",
                reports: &model_reports,
            },
            System {
                name: "baseline_mode",
                reports: &mode_reports,
            },
            System {
                name: "baseline_retrieval",
                reports: &retrieval,
            },
        ];
        let t = Instant::now();
        let bert = match crate::metrics::bertscore::BertScorer::load() {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!("BERTScore skipped: {e}");
                None
            }
        };
        out.insert(
            "quality".into(),
            scoring::nlg(&ids, &refs, &systems, opts.meit_batch, bert.as_ref()),
        );
        let scp: Vec<_> = test.iter().map(|r| r.scp.clone()).collect();
        out.insert(
            "clinical".into(),
            scoring::clinical(
                &mapper,
                &set.statements,
                &refs,
                &scp,
                &systems,
                &set.all_rows,
            ),
        );
        out.insert(
            "baselines".into(),
            json!({"mode_report": mode, "retrieval_records": retrieval_records}),
        );
        timings.insert("quality_score_s".into(), json!(t.elapsed().as_secs_f64()));
        clean = Some(gens);
    }

    // --- noise robustness ---
    if opts.tasks.noise {
        let t = Instant::now();
        let sub_ids = &ids[..noise_n];
        let sub_refs = &refs[..noise_n];
        let clean_gens = match clean {
            Some(g) => g[..noise_n].to_vec(),
            None => {
                ctx.generate(
                    sub_ids
                        .iter()
                        .cloned()
                        .zip(test_ecg[..noise_n].iter().cloned())
                        .collect(),
                )
                .await?
            }
        };
        let mut levels = vec![results::level_scores(
            "clean",
            "clean",
            0.0,
            sub_ids,
            sub_refs,
            &clean_gens,
            &mapper,
            &set.statements,
            opts.meit_batch,
        )];
        for (li, spec) in NoiseSpec::sweep().iter().enumerate() {
            let mut batch = Vec::with_capacity(noise_n);
            let mut notes = Vec::with_capacity(noise_n);
            for (i, ecg) in test_ecg[..noise_n].iter().enumerate() {
                let mut x = ecg.clone();
                let a = spec.apply(&mut x, 12, seed_for(opts.seed, li + 1, i));
                notes.push(match spec {
                    NoiseSpec::Partial { .. } => format!(
                        "window start={} len={} sigma={:.4}",
                        a.start, a.len, a.sigma
                    ),
                    NoiseSpec::Snr { db } => format!("snr={db} dB"),
                });
                batch.push((sub_ids[i].clone(), x));
            }
            let label = spec.label();
            tracing::info!("noise {label}: generating {noise_n} reports");
            let gens = ctx.generate(batch).await?;
            for (i, g) in gens.iter().enumerate() {
                let mut r = row("noise", &label, i, g);
                r.note = Some(notes[i].clone());
                rows.push(r);
            }
            levels.push(results::level_scores(
                &label,
                spec.family(),
                spec.level(),
                sub_ids,
                sub_refs,
                &gens,
                &mapper,
                &set.statements,
                opts.meit_batch,
            ));
        }
        timings.insert("noise_s".into(), json!(t.elapsed().as_secs_f64()));
        out.insert(
            "noise".into(),
            json!({"records": noise_n, "seed": opts.seed, "levels": levels}),
        );
    }

    // --- zero-shot transfer ---
    if opts.tasks.zeroshot {
        let t = Instant::now();
        let ok: Vec<(String, Vec<f32>)> = zs_records
            .iter()
            .filter_map(|r| r.ecg.as_ref().ok().map(|e| (r.record.clone(), e.clone())))
            .collect();
        tracing::info!(
            "zero-shot: generating {} reports ({} records rejected)",
            ok.len(),
            zs_records.len() - ok.len()
        );
        let gens = ctx.generate(ok).await?;
        let mut it = gens.iter();
        let mut texts: Vec<Option<String>> = Vec::with_capacity(zs_records.len());
        for r in &zs_records {
            let g = if r.ecg.is_ok() { it.next() } else { None };
            texts.push(g.map(|g| g.text.clone()));
            rows.push(OutputRow {
                task: "zeroshot".into(),
                level: r.dataset.clone(),
                dataset: r.dataset.clone(),
                record: r.record.clone(),
                reference: None,
                labels: r.labels.clone(),
                generated: g.map(|g| g.text.clone()),
                completion_tokens: g.map(|g| g.completion_tokens).unwrap_or(0),
                finish: g.map(|g| g.finish.to_string()),
                statements: g
                    .map(|g| mapper.map(&g.text).into_iter().collect())
                    .unwrap_or_default(),
                note: match (&r.ecg, r.padded_from_s) {
                    (Err(e), _) => Some(format!("rejected: {e}")),
                    (Ok(_), Some(s)) => Some(format!("padded from {s:.2} s to 10 s")),
                    _ => None,
                },
            });
        }
        let outcomes: Vec<ZeroShotOutcome> = zs_records
            .iter()
            .zip(&texts)
            .map(|(r, t)| ZeroShotOutcome {
                dataset: &r.dataset,
                labels: &r.labels,
                report: t.as_deref(),
            })
            .collect();
        let mut z = scoring::zeroshot(&mapper, &outcomes);
        if let Value::Object(m) = &mut z {
            for r in &zs_records {
                if let Some(Value::Object(d)) = m.get_mut(&r.dataset) {
                    let n = d.get("padded").and_then(Value::as_u64).unwrap_or(0);
                    d.insert(
                        "padded".into(),
                        json!(n + u64::from(r.padded_from_s.is_some())),
                    );
                }
            }
        }
        out.insert("zeroshot".into(), json!({"datasets": z, "notes": zs_notes}));
        timings.insert("zeroshot_s".into(), json!(t.elapsed().as_secs_f64()));
    }
    ctx.engine.begin_shutdown(Duration::from_secs(1));

    let wall = t0.elapsed().as_secs_f64();
    timings.insert("wall_s".into(), json!(wall));
    out.insert(
        "run".into(),
        json!({
            "model": opts.model,
            "adapter": opts.adapter,
            "trained": trained,
            "precision": opts.precision,
            "kv_cache": kv_cache.as_str(),
            "instruction": opts.instruction,
            "max_tokens": opts.max_tokens,
            "decoding": "greedy",
            "test_records": test.len(),
            "meit_batch_size": opts.meit_batch,
            "max_running": opts.max_running,
            "timings": timings,
        }),
    );
    let metrics = Value::Object(out);
    results::write_all(&opts.out, &rows, &metrics)?;
    Ok(EvalSummary {
        out: opts.out.clone(),
        metrics,
        wall_seconds: wall,
    })
}
