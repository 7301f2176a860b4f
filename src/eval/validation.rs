//! Validation METEOR during training: the trainer saves its adapter at each evaluation and this
//! generator loads it into the serving engine (LoRA merged, KV cache, batched greedy decoding),
//! which is far faster than generating with the training graph. Scores use the COCO METEOR of
//! the benchmark.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use candle_core::Device;

use crate::engine::{self, candle_backend::CandleBackend, EngineConfig};
use crate::metrics::{score_coco, Pair};
use crate::model::bundle::{BackboneSource, LoadOptions, MeitModel, Precision};
use crate::telemetry::Metrics;
use crate::train::eval_hook::{ReportScorer, SavedAdapterGenerator, ValidationItem};
use crate::train::TrainError;

use super::runner::{generate_each, wait_ready};
use super::EvalError;

/// Corpus METEOR (COCO protocol: PTB tokenisation, Meteor 1.5 alignment).
pub struct CocoMeteor;

impl ReportScorer for CocoMeteor {
    fn name(&self) -> &'static str {
        "meteor"
    }

    fn score(&self, hypotheses: &[String], references: &[String]) -> f64 {
        let pairs: Vec<Pair> = hypotheses
            .iter()
            .zip(references)
            .enumerate()
            .map(|(i, (h, r))| Pair {
                id: i.to_string(),
                candidate: h.clone(),
                references: vec![r.clone()],
            })
            .collect();
        score_coco(&pairs).meteor
    }
}

/// Loads a saved adapter into the serving engine and writes greedy reports.
pub struct EngineGenerator {
    /// Backbone: `default`, a GGUF file or an HF directory (the one being trained).
    pub backbone: String,
    pub precision: Precision,
    pub max_running: usize,
}

impl EngineGenerator {
    async fn run(
        &self,
        adapter_dir: &Path,
        items: &[ValidationItem],
        max_new: usize,
    ) -> Result<Vec<String>, EvalError> {
        let load = LoadOptions {
            backbone: BackboneSource::parse(&self.backbone),
            adapter: Some(adapter_dir.to_path_buf()),
            prefix_slots: 1,
            precision: self.precision,
            kv_cache: None,
        };
        let model = MeitModel::load(&load, &Device::Cpu)?;
        let tok = Arc::new(model.tokenizer.clone());
        let cfg = EngineConfig {
            max_running: self.max_running.max(1),
            max_waiting: items.len() + 16,
            ..EngineConfig::default()
        };
        let metrics = Arc::new(Metrics::new().map_err(|e| EvalError::Option(e.to_string()))?);
        let engine = engine::spawn(CandleBackend::new(model), tok, cfg, metrics);
        wait_ready(&engine, Duration::from_secs(600)).await?;
        let work = items
            .iter()
            .map(|it| (it.record.clone(), it.prompt.clone(), it.ecg.to_vec()))
            .collect();
        let out = generate_each(&engine, work, max_new).await;
        engine.begin_shutdown(Duration::ZERO);
        Ok(out?.into_iter().map(|g| g.text).collect())
    }
}

impl SavedAdapterGenerator for EngineGenerator {
    fn generate(
        &mut self,
        adapter_dir: &Path,
        items: &[ValidationItem],
        max_new: usize,
    ) -> Result<Vec<String>, TrainError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TrainError::io(adapter_dir, e))?;
        rt.block_on(self.run(adapter_dir, items, max_new))
            .map_err(|e| TrainError::Validation(e.to_string()))
    }
}
