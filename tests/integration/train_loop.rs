//! The training loop on a tiny random backbone and encoder: overfitting a handful of examples,
//! exact resume, and the saved adapter + encoder reloading into the serving model.
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use meit::model::bundle::load_encoder;
use meit::model::encoder::EncoderConfig;
use meit::model::lora::Adapter;
use meit::model::tiny::tiny_backbone;
use meit::model::train_forward::{forward_train, lm_logits, Frozen, TrainInput};
use meit::model::{Llama, LlamaConfig, SeqInput};
use meit::train::batch::Encoded;
use meit::train::ecg::EcgStore;
use meit::train::lora::LoraSettings;
use meit::train::rng::SplitMix64;
use meit::train::{Sample, TrainSettings, Trainer};

const VOCAB: usize = 64;

fn tiny_llm() -> Llama {
    let (w, cfg) = tiny_backbone(&LlamaConfig::tiny(VOCAB), 11).expect("tiny backbone");
    Llama::load(&w, &cfg, &Device::Cpu).expect("llama")
}

fn tiny_encoder(head_dim: usize) -> EncoderConfig {
    EncoderConfig {
        in_leads: 12,
        channels: vec![4, 8],
        pools: vec![8, 8],
        kernel: 3,
        proj_hidden: 16,
        prefix_slots: 1,
        out_dim: head_dim,
    }
}

/// Four examples: distinct random ECGs, a shared prompt, a distinct 6-token "report" each.
fn data() -> (Vec<Sample>, EcgStore) {
    let mut rng = SplitMix64::new(5);
    let mut store = EcgStore::new("/nonexistent");
    let mut samples = Vec::new();
    for i in 0..4 {
        let rec = format!("rec{i}");
        let sig: Vec<f32> = (0..12 * 5000).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        store.insert(&rec, sig).expect("insert");
        let mut ids = vec![1, 7, 3, 9, 4];
        ids.extend((0..6).map(|_| 10 + rng.below(50) as u32));
        ids.push(2);
        samples.push(Sample {
            record: rec,
            enc: Encoded { ids, prompt_len: 5 },
        });
    }
    (samples, store)
}

fn settings(max_steps: usize, lr: f64) -> TrainSettings {
    TrainSettings {
        lora: LoraSettings {
            r: 4,
            alpha: 8.0,
            dropout: 0.1,
        },
        lr,
        encoder_lr_scale: 1.0,
        warmup_ratio: 0.03,
        weight_decay: 0.0,
        max_grad_norm: 1.0,
        epochs: 1,
        batch: 2,
        accum: 2,
        max_steps: Some(max_steps),
        save_every: 0,
        eval_every: 0,
        eval_limit: 0,
        seed: 3,
        progress: false,
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("meit-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn tiny_model_overfits_four_examples() {
    let llm = tiny_llm();
    let (samples, store) = data();
    let enc = tiny_encoder(llm.config().head_dim());
    let mut tr =
        Trainer::new(&llm, enc, samples, vec![], store, settings(30, 1e-2)).expect("trainer");
    let losses: Vec<f32> = (0..30).map(|_| tr.step().expect("step").loss).collect();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    let first = losses[..3].iter().sum::<f32>() / 3.0;
    let last = losses[27..].iter().sum::<f32>() / 3.0;
    assert!(
        last < 0.5 * first,
        "loss must fall clearly: {first} -> {last} ({losses:?})"
    );
}

#[test]
fn resume_continues_exactly() {
    let llm = tiny_llm();
    let enc = tiny_encoder(llm.config().head_dim());
    let straight: Vec<f32> = {
        let (s, st) = data();
        let mut tr =
            Trainer::new(&llm, enc.clone(), s, vec![], st, settings(6, 5e-3)).expect("trainer");
        (0..6).map(|_| tr.step().expect("step").loss).collect()
    };
    let dir = tmp("resume");
    let mut resumed = {
        let (s, st) = data();
        let mut tr =
            Trainer::new(&llm, enc.clone(), s, vec![], st, settings(6, 5e-3)).expect("trainer");
        let first: Vec<f32> = (0..3).map(|_| tr.step().expect("step").loss).collect();
        tr.save_checkpoint(&dir).expect("save");
        first
    };
    let (s, st) = data();
    let mut tr = Trainer::new(&llm, enc, s, vec![], st, settings(6, 5e-3)).expect("trainer");
    tr.resume(&dir).expect("resume");
    assert_eq!(tr.state().step, 3);
    resumed.extend((0..3).map(|_| tr.step().expect("step").loss));
    for (a, b) in straight.iter().zip(&resumed) {
        assert!(
            (a - b).abs() <= 1e-6,
            "straight {straight:?} vs resumed {resumed:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn saved_adapter_reloads_merged_and_reproduces_logits() {
    let (w, cfg) = tiny_backbone(&LlamaConfig::tiny(VOCAB), 11).expect("tiny backbone");
    let llm = Llama::load(&w, &cfg, &Device::Cpu).expect("llama");
    let (samples, store) = data();
    let enc = tiny_encoder(cfg.head_dim());
    let probe = samples[1].clone();
    let mut tr =
        Trainer::new(&llm, enc, samples, vec![], store, settings(8, 1e-2)).expect("trainer");
    let out = tmp("adapter");
    let final_dir = tr.run(&out, None).expect("run");
    for f in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "encoder_config.json",
        "encoder.safetensors",
    ] {
        assert!(final_dir.join(f).exists(), "{f} missing");
    }
    let cfg_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(final_dir.join("adapter_config.json")).expect("config"),
    )
    .expect("json");
    assert_eq!(cfg_json["peft_type"], "LORA");
    assert_eq!(cfg_json["r"], 4);
    assert_eq!(
        cfg_json["target_modules"].as_array().map(|a| a.len()),
        Some(7)
    );
    let log = std::fs::read_to_string(out.join("train_log.jsonl")).expect("log");
    assert_eq!(log.lines().count(), 8);

    // the trained model (unmerged LoRA, eval mode) on one example
    let mut sig = EcgStore::new("/nonexistent");
    let (_, mut st2) = data();
    let ecg = st2.get(&probe.record).expect("ecg");
    sig.insert("p", ecg.to_vec()).expect("insert");
    let x = Tensor::from_slice(&ecg[..], (1, 12, 5000), &Device::Cpu).expect("x");
    let prefix = tr.encoder().forward_t(&x, false).expect("enc");
    let ids = Tensor::from_slice(&probe.enc.ids[..], (1, probe.enc.ids.len()), &Device::Cpu)
        .expect("ids");
    let n = probe.enc.ids.len();
    let hidden = forward_train(
        &llm,
        &TrainInput {
            ids: &ids,
            lens: &[n],
            prefix: Some(&prefix),
        },
        &mut tr.lora().adapter(None),
    )
    .expect("forward");
    let trained = lm_logits(&llm, &hidden)
        .expect("logits")
        .get(n - 1)
        .expect("row")
        .to_vec1::<f32>()
        .expect("vec");

    // what the server does: merge the adapter, load the encoder from the same directory
    let adapter = Adapter::load(&final_dir, &Device::Cpu).expect("adapter");
    let mut merged_w = w.clone();
    adapter.merge_into(&mut merged_w).expect("merge");
    let served = Llama::load(&merged_w, &cfg, &Device::Cpu).expect("merged llama");
    let (encoder, trained_flag) =
        load_encoder(Some(&final_dir), cfg.head_dim(), 1, &Device::Cpu).expect("encoder");
    assert!(trained_flag);
    let p2 = encoder.encode(&ecg, 5000, &Device::Cpu).expect("encode");
    let mut cache = served.new_cache(n + 1, false).expect("cache");
    served.write_prefix(&p2, &mut cache).expect("prefix");
    let got = served
        .forward(&mut [SeqInput {
            tokens: &probe.enc.ids,
            cache: &mut cache,
        }])
        .expect("forward")
        .flatten_all()
        .expect("flat")
        .to_vec1::<f32>()
        .expect("vec");
    let d = got
        .iter()
        .zip(&trained)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(d <= 1e-4, "served vs trained logits differ by {d}");
    // and training changed the model
    let base_hidden = forward_train(
        &llm,
        &TrainInput {
            ids: &ids,
            lens: &[n],
            prefix: Some(&prefix),
        },
        &mut Frozen,
    )
    .expect("forward");
    let base = lm_logits(&llm, &base_hidden)
        .expect("logits")
        .get(n - 1)
        .expect("row")
        .to_vec1::<f32>()
        .expect("vec");
    let moved = base
        .iter()
        .zip(&trained)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(moved > 1e-3, "training must change the logits ({moved})");
    let _ = std::fs::remove_dir_all(&out);
}
