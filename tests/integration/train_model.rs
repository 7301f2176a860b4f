//! The training path on the real backbone and tokenizer: the differentiable forward equals the
//! inference forward (1e-3 max abs on the logits, the golden tolerance), and label masking puts loss on the report
//! tokens and `<|im_end|>` only.
use candle_core::{Device, Tensor, D};
use meit::model::npy::read_f32;
use meit::model::tiny::tiny_backbone;
use meit::model::train_forward::{forward_train, lm_logits, Frozen, TrainInput};
use meit::model::{chat, tokenizer, Llama, LlamaConfig, SeqInput};
use meit::train::batch::{collate, encode_example};
use meit::train::eval_hook::Generation;
use meit::train::trainer::masked_loss;

use super::common::{fixture, golden_json, ids, max_abs_diff, smollm};

/// Inference writes the ECG prefix keys/values through the folded projection (the H head blocks
/// of `k_proj`/`v_proj` summed into one matrix), training through the projections of the tiled
/// vectors (where LoRA acts): the same sums in another order, about 1.5e-4 apart on the logits.
const TOL: f32 = 1e-3;

#[test]
fn training_forward_equals_inference_forward_on_smollm_with_prefix() {
    let llm = &smollm().llm;
    let dev = Device::Cpu;
    let g = golden_json("prefix_fusion.json");
    let case = &g["cases"][1];
    let (shape, data) = read_f32(&fixture(&format!(
        "golden/{}",
        case["prefix_file"].as_str().expect("file")
    )))
    .expect("prefix");
    let prefix = Tensor::from_vec(data, (shape[0], shape[1]), &dev).expect("prefix");
    let long = ids(&case["prompt_ids"]);
    let short: Vec<u32> = long[..long.len() - 5].to_vec();
    let want: Vec<Vec<f32>> = [&long, &short]
        .iter()
        .map(|p| {
            let mut c = llm
                .new_cache(p.len() + prefix.dim(0).unwrap_or(0), false)
                .expect("cache");
            llm.write_prefix(&prefix, &mut c).expect("prefix");
            llm.forward(&mut [SeqInput {
                tokens: p,
                cache: &mut c,
            }])
            .expect("forward")
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("logits")
        })
        .collect();
    // one padded batch of both
    let t = long.len();
    let mut batch_ids = long.clone();
    batch_ids.extend(short.iter().copied().chain(std::iter::repeat(0)).take(t));
    let batch_ids = Tensor::from_vec(batch_ids, (2, t), &dev).expect("ids");
    let prefixes = Tensor::stack(&[&prefix, &prefix], 0).expect("stack");
    let hidden = forward_train(
        llm,
        &TrainInput {
            ids: &batch_ids,
            lens: &[t, short.len()],
            prefix: Some(&prefixes),
        },
        &mut Frozen,
    )
    .expect("train forward");
    let logits = lm_logits(llm, &hidden).expect("logits");
    for (i, n) in [t, short.len()].into_iter().enumerate() {
        let got = logits
            .get(i * t + n - 1)
            .and_then(|r| r.to_vec1::<f32>())
            .expect("row");
        let d = max_abs_diff(&got, &want[i]);
        assert!(
            d <= TOL,
            "sequence {i}: training vs inference logits differ by {d}"
        );
    }
}

#[test]
fn only_report_tokens_and_im_end_carry_loss() {
    let tok = &smollm().backbone.tokenizer;
    let instruction = "Please interpret this ECG.";
    let report = "sinus rhythm. left axis deviation. otherwise normal ecg.";
    let ex = encode_example(tok, instruction, report, 256).expect("encode");
    let prompt = tokenizer::encode(tok, &chat::user_prompt(instruction)).expect("prompt");
    let mut target = tokenizer::encode(tok, report).expect("report");
    let report_tokens = target.len();
    target.push(tokenizer::token_id(tok, "<|im_end|>").expect("im_end"));
    assert_eq!(&ex.ids[..ex.prompt_len], &prompt[..]);
    assert_eq!(ex.targets(), &target[..]);

    // A tiny random backbone with the real vocabulary: the masked loss equals the mean
    // cross-entropy over exactly the report + <|im_end|> positions, computed from full logits.
    let (w, cfg) = tiny_backbone(&LlamaConfig::tiny(49152), 2).expect("tiny");
    let llm = Llama::load(&w, &cfg, &Device::Cpu).expect("llama");
    let batch = collate(&[&ex], &Device::Cpu).expect("batch");
    assert_eq!(batch.n_targets, report_tokens + 1);
    let loss = masked_loss(&llm, &batch, None, &mut Frozen)
        .and_then(|l| Ok(l.to_scalar::<f32>()?))
        .expect("loss");
    let n = ex.ids.len();
    let hidden = forward_train(
        &llm,
        &TrainInput {
            ids: &batch.ids,
            lens: &[n],
            prefix: None,
        },
        &mut Frozen,
    )
    .expect("forward");
    let logp = candle_nn::ops::log_softmax(&lm_logits(&llm, &hidden).expect("logits"), D::Minus1)
        .and_then(|t| t.to_vec2::<f32>())
        .expect("log-probs");
    let nll = |from: usize| -> f32 {
        let k = (from..n - 1).count() as f32;
        (from..n - 1)
            .map(|p| -logp[p][ex.ids[p + 1] as usize])
            .sum::<f32>()
            / k
    };
    let want = nll(ex.prompt_len - 1);
    assert!(
        (loss - want).abs() < 1e-4,
        "masked loss {loss}, report-only mean {want}"
    );
    // counting prompt positions too would give a different figure
    assert!((nll(0) - want).abs() > 1e-3);
    // and a different prompt (same report) changes the inputs but not which tokens are scored
    let ex2 = encode_example(tok, "Write the report for this ECG.", report, 256).expect("encode");
    assert_eq!(ex2.targets(), ex.targets());
    assert_ne!(ex2.prompt_len, 0);
}

const SCORER_REPORTS: [&str; 2] = ["sinus rhythm. normal ecg.", "atrial fibrillation."];

/// Two synthetic records with the reports above, settings for one step with an evaluation, and a
/// tiny encoder emitting vectors of `out_dim`.
fn one_step_setup(
    tok: &tokenizers::Tokenizer,
    out_dim: usize,
    dropout: f32,
    lr: f64,
    encoder_lr_scale: f64,
) -> (
    meit::train::ecg::EcgStore,
    Vec<meit::train::Sample>,
    meit::train::TrainSettings,
    meit::model::encoder::EncoderConfig,
) {
    let mut store = meit::train::ecg::EcgStore::new("/nonexistent");
    let mut samples = Vec::new();
    for (i, r) in SCORER_REPORTS.iter().enumerate() {
        let rec = format!("r{i}");
        store
            .insert(
                &rec,
                (0..60_000).map(|k| ((k * (i + 1)) as f32).sin()).collect(),
            )
            .expect("insert");
        let enc = encode_example(tok, "Describe this ECG.", r, 64).expect("encode");
        samples.push(meit::train::Sample { record: rec, enc });
    }
    let settings = meit::train::TrainSettings {
        lora: meit::train::lora::LoraSettings {
            r: 2,
            alpha: 4.0,
            dropout,
        },
        lr,
        encoder_lr_scale,
        warmup_ratio: 0.0,
        weight_decay: 0.0,
        max_grad_norm: 1.0,
        epochs: 1,
        batch: 2,
        accum: 1,
        max_steps: Some(1),
        save_every: 0,
        eval_every: 1,
        eval_limit: 0,
        seed: 0,
        progress: false,
    };
    let enc = meit::model::encoder::EncoderConfig {
        in_leads: 12,
        channels: vec![4],
        pools: vec![16],
        kernel: 3,
        proj_hidden: 8,
        prefix_slots: 1,
        out_dim,
    };
    (store, samples, settings, enc)
}

/// Records what it was asked to score; the score is the share of non-empty hypotheses.
struct CountingScorer(std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl meit::train::eval_hook::ReportScorer for CountingScorer {
    fn name(&self) -> &'static str {
        "meteor"
    }
    fn score(&self, hyps: &[String], refs: &[String]) -> f64 {
        if let Ok(mut seen) = self.0.lock() {
            seen.extend(hyps.iter().cloned().zip(refs.iter().cloned()));
        }
        hyps.iter().filter(|h| !h.is_empty()).count() as f64 / hyps.len().max(1) as f64
    }
}

#[test]
fn evaluation_generates_reports_for_the_scorer_hook() {
    use meit::train::Trainer;

    let tok = smollm().backbone.tokenizer.clone();
    let (w, cfg) = tiny_backbone(&LlamaConfig::tiny(49152), 4).expect("tiny");
    let llm = Llama::load(&w, &cfg, &Device::Cpu).expect("llama");
    let reports = SCORER_REPORTS;
    let (store, samples, settings, enc) = one_step_setup(&tok, cfg.head_dim(), 0.1, 1e-3, 1.0);
    let mut tr =
        Trainer::new(&llm, enc, samples.clone(), samples, store, settings).expect("trainer");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    tr.set_scorer(
        Box::new(CountingScorer(seen.clone())),
        Generation::InProcess,
        tok,
        2,
        4,
    );
    let out = std::env::temp_dir().join(format!("meit-train-scorer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    tr.run(&out, None).expect("run");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1, reports[0]);
    assert_eq!(seen[1].1, reports[1]);
    let log = std::fs::read_to_string(out.join("train_log.jsonl")).expect("log");
    let eval: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("val_loss").is_some())
        .expect("an evaluation record");
    assert!(eval["val_meteor"].is_number(), "{eval}");
    assert!(out.join("best/adapter_model.safetensors").exists());
    let _ = std::fs::remove_dir_all(&out);
}

/// Validation METEOR as `trainer train` computes it: the adapter saved at the evaluation is
/// loaded by the serving engine (LoRA merged) which writes the reports; the score lands in the
/// log and selects `best/`.
#[test]
fn validation_meteor_runs_the_saved_adapter_through_the_engine() {
    use meit::eval::validation::{CocoMeteor, EngineGenerator};
    use meit::model::bundle::Precision;
    use meit::train::Trainer;

    let m = smollm();
    let tok = m.backbone.tokenizer.clone();
    let (store, samples, settings, enc) =
        one_step_setup(&tok, m.llm.config().head_dim(), 0.0, 1e-4, 2.0);
    let mut tr =
        Trainer::new(&m.llm, enc, samples.clone(), samples, store, settings).expect("trainer");
    let generator = EngineGenerator {
        backbone: "default".into(),
        precision: Precision::F32,
        max_running: 4,
    };
    tr.set_scorer(
        Box::new(CocoMeteor),
        Generation::Saved(Box::new(generator)),
        tok,
        2,
        8,
    );
    let out = std::env::temp_dir().join(format!("meit-train-valmeteor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    tr.run(&out, None).expect("run");
    let log = std::fs::read_to_string(out.join("train_log.jsonl")).expect("log");
    let eval: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("val_loss").is_some())
        .expect("an evaluation record");
    let meteor = eval["val_meteor"].as_f64().expect("val_meteor");
    assert!((0.0..=1.0).contains(&meteor), "{eval}");
    assert!(out
        .join("validation-adapter/adapter_model.safetensors")
        .exists());
    assert!(tr.state().best_meteor.is_some());
    assert!(out.join("best/adapter_model.safetensors").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn coco_meteor_scorer_rewards_matching_reports() {
    use meit::eval::validation::CocoMeteor;
    use meit::train::eval_hook::ReportScorer;
    let refs = vec!["sinus rhythm. normal ecg.".to_string()];
    let same = CocoMeteor.score(&refs, &refs);
    let other = CocoMeteor.score(&["atrial fibrillation.".to_string()], &refs);
    assert!(same > 0.9, "{same}");
    assert!(other < 0.2, "{other}");
}
