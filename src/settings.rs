//! Service settings, layered: defaults -> TOML file -> environment (`MEIT__SECTION__KEY`, e.g.
//! `MEIT__SERVER__PORT=9000`, lists comma-separated: `MEIT__SERVER__API_KEYS=a,b`) -> CLI
//! overrides (`key=value` pairs such as `server.port=9000`, parsed by the binary).
//! Validated at start-up across fields; every message names the fields involved.
//! Model hyperparameters are not here (they come with the checkpoint).

use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};

use crate::engine::EngineConfig;
use crate::model::bundle::{resolve_adapter, BackboneSource, LoadOptions, Precision};
use crate::model::kv::KvDtype;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub engine: EngineSettings,
    pub limits: LimitSettings,
    pub model: ModelSettings,
}

/// `[model]`: what the engine loads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    /// `default` (SmolLM2-135M-Instruct, fetched on first use), a GGUF file or an HF-layout
    /// directory. Default `default`.
    pub source: String,
    /// Directory of a trained PEFT adapter + ECG encoder; `default` = the adapter shipped in
    /// `model-cards/` (when present), `none` = no adapter (the untrained encoder, whose output
    /// does not describe the ECG). Default `default`.
    pub adapter: String,
    /// Weight precision: `f32` (exact to the references), `q8_0` (int8 weights and inputs in
    /// blocks of 64; on AMX CPUs int8 tiles for steps of 4-48 rows, bf16 tiles above) or `q4_0`.
    /// Default `q8_0`.
    pub precision: String,
    /// KV cache elements: `auto` (f32 with `f32` weights, int8 with quantized ones), `f32`,
    /// `f16` or `int8` (one scale per key row and per value row). Default `auto`.
    pub kv_cache: String,
    /// ECG prefix slots of the untrained encoder (a trained one carries its own). Default 1.
    pub prefix_slots: usize,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            source: "default".into(),
            adapter: "default".into(),
            precision: "q8_0".into(),
            kv_cache: "auto".into(),
            prefix_slots: 1,
        }
    }
}

impl ModelSettings {
    /// The load options these settings describe (checked by `Settings::validate`).
    pub fn load_options(&self) -> Result<LoadOptions, SettingsError> {
        let precision = Precision::parse(&self.precision).map_err(|_| {
            SettingsError::Invalid(format!(
                "model.precision must be f32, q8_0 or q4_0, got {:?}",
                self.precision
            ))
        })?;
        let kv_cache = KvDtype::parse_choice(&self.kv_cache)
            .map_err(|e| SettingsError::Invalid(format!("model.kv_cache {e}")))?;
        let adapter = resolve_adapter(&self.adapter);
        Ok(LoadOptions {
            backbone: BackboneSource::parse(&self.source),
            adapter,
            prefix_slots: self.prefix_slots,
            precision,
            kv_cache,
        })
    }
}

/// `[server]`: HTTP listener and access.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind. Default `0.0.0.0`.
    pub host: String,
    /// TCP port (0 = any free port). Default 8080.
    pub port: u16,
    /// Largest request body in bytes (a 12 x 5000 float ECG as JSON is about 1-1.5 MB).
    /// Default 8 MiB. Larger bodies get 413.
    pub max_body_bytes: usize,
    /// Seconds running sequences may continue after a shutdown signal before their streams are
    /// ended with finish_reason "shutdown". Default 30.
    pub shutdown_grace_secs: u64,
    /// Bearer keys accepted on `/v1/*`; empty = no authentication. Default empty.
    pub api_keys: Vec<String>,
    /// Model id reported by `/v1/models` and in responses. Default `meit-smollm2-135m`.
    pub model_id: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 8080,
            max_body_bytes: 8 * 1024 * 1024,
            shutdown_grace_secs: 30,
            api_keys: Vec::new(),
            model_id: "meit-smollm2-135m".into(),
        }
    }
}

/// `[engine]`: batching, queueing and KV capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// Most sequences decoding at once (they hold KV blocks). Default 16.
    pub max_running_sequences: usize,
    /// Most sequences waiting for admission; beyond this requests get 429. Default 64.
    pub max_waiting_sequences: usize,
    /// Token budget of one model step (decode tokens + prefill chunks). Default 512.
    pub max_batch_tokens: usize,
    /// Token slots per KV block. Default 16.
    pub kv_block_size: usize,
    /// KV blocks in the pool; capacity = kv_total_blocks * kv_block_size token slots. Default 2048.
    pub kv_total_blocks: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        let d = EngineConfig::default();
        Self {
            max_running_sequences: d.max_running,
            max_waiting_sequences: d.max_waiting,
            max_batch_tokens: d.max_batch_tokens,
            kv_block_size: d.kv_block_size,
            kv_total_blocks: d.kv_total_blocks,
        }
    }
}

/// `[limits]`: per-request bounds checked by the API layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Upper bound of `max_tokens`. Default 1024.
    pub max_tokens_limit: usize,
    /// `max_tokens` when the request gives none. Default 256.
    pub default_max_tokens: usize,
    /// Longest prompt in tokens (after the chat template). Default 2048.
    pub max_prompt_tokens: usize,
    /// Most stop strings per request. Default 4.
    pub max_stop_sequences: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_tokens_limit: 1024,
            default_max_tokens: 256,
            max_prompt_tokens: 2048,
            max_stop_sequences: 4,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid settings: {0}")]
    Invalid(String),
}

impl Settings {
    /// Load defaults, then `file` (TOML, if given), then `MEIT__*` env vars, then `overrides`
    /// (`("server.port", "9000")`), and validate.
    pub fn load(
        file: Option<&Path>,
        overrides: &[(String, String)],
    ) -> Result<Self, SettingsError> {
        let mut b = Config::builder();
        if let Some(path) = file {
            b = b.add_source(File::from(path).format(FileFormat::Toml));
        }
        b = b.add_source(
            Environment::with_prefix("MEIT")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.api_keys"),
        );
        for (k, v) in overrides {
            b = b.set_override(k.as_str(), v.as_str())?;
        }
        let s: Settings = b.build()?.try_deserialize()?;
        s.validate()?;
        Ok(s)
    }

    /// Parse a CLI override `section.key=value` (e.g. `server.port=9000`).
    pub fn parse_override(s: &str) -> Result<(String, String), SettingsError> {
        match s.split_once('=') {
            Some((k, v)) if k.contains('.') && !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.to_string()))
            }
            _ => Err(SettingsError::Invalid(format!(
                "override must look like section.key=value, got {s:?}"
            ))),
        }
    }

    /// Cross-field checks; the message names every field involved and the values.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let (e, l, s) = (&self.engine, &self.limits, &self.server);
        let bad = |m: String| Err(SettingsError::Invalid(m));
        for (name, v) in [
            ("engine.max_running_sequences", e.max_running_sequences),
            ("engine.max_waiting_sequences", e.max_waiting_sequences),
            ("engine.max_batch_tokens", e.max_batch_tokens),
            ("engine.kv_block_size", e.kv_block_size),
            ("engine.kv_total_blocks", e.kv_total_blocks),
            ("limits.max_tokens_limit", l.max_tokens_limit),
            ("limits.default_max_tokens", l.default_max_tokens),
            ("limits.max_prompt_tokens", l.max_prompt_tokens),
            ("server.max_body_bytes", s.max_body_bytes),
            ("model.prefix_slots", self.model.prefix_slots),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1, got 0"));
            }
        }
        if e.max_batch_tokens < e.max_running_sequences {
            return bad(format!(
                "engine.max_batch_tokens ({}) must be >= engine.max_running_sequences ({}) so every running sequence can decode each step",
                e.max_batch_tokens, e.max_running_sequences
            ));
        }
        if l.default_max_tokens > l.max_tokens_limit {
            return bad(format!(
                "limits.default_max_tokens ({}) must be <= limits.max_tokens_limit ({})",
                l.default_max_tokens, l.max_tokens_limit
            ));
        }
        let capacity = e.kv_total_blocks * e.kv_block_size;
        if l.max_prompt_tokens + l.max_tokens_limit > capacity {
            return bad(format!(
                "limits.max_prompt_tokens + limits.max_tokens_limit ({}) must fit in engine.kv_total_blocks * engine.kv_block_size ({capacity} token slots)",
                l.max_prompt_tokens + l.max_tokens_limit
            ));
        }
        if s.api_keys.iter().any(|k| k.trim().is_empty()) {
            return bad("server.api_keys must not contain empty keys".into());
        }
        let opts = self.model.load_options()?;
        if let Some(dir) = &opts.adapter {
            if !dir.is_dir() {
                return bad(format!(
                    "model.adapter must be a directory with a trained adapter, got {:?}",
                    self.model.adapter
                ));
            }
        }
        Ok(())
    }

    pub fn engine_config(&self) -> EngineConfig {
        let e = &self.engine;
        EngineConfig {
            max_running: e.max_running_sequences,
            max_waiting: e.max_waiting_sequences,
            max_batch_tokens: e.max_batch_tokens,
            kv_block_size: e.kv_block_size,
            kv_total_blocks: e.kv_total_blocks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("meit-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("meit.toml");
        std::fs::write(
            &file,
            "[server]\nport = 9001\nmodel_id = \"m\"\n[engine]\nkv_total_blocks = 4096\n",
        )
        .expect("write");
        let over = [("server.port".to_string(), "9002".to_string())];
        let s = Settings::load(Some(&file), &over).expect("load");
        assert_eq!(s.server.port, 9002);
        assert_eq!(s.server.model_id, "m");
        assert_eq!(s.engine.kv_total_blocks, 4096);
        assert_eq!(s.limits.max_tokens_limit, 1024);
        let s = Settings::load(Some(&file), &[]).expect("load");
        assert_eq!(s.server.port, 9001);
    }

    #[test]
    fn cross_field_errors_name_both_fields() {
        let mut s = Settings::default();
        s.limits.default_max_tokens = 2000;
        let msg = s.validate().expect_err("invalid").to_string();
        assert!(msg.contains("limits.default_max_tokens (2000)"), "{msg}");
        assert!(msg.contains("limits.max_tokens_limit (1024)"), "{msg}");
        let mut s = Settings::default();
        s.engine.max_batch_tokens = 4;
        let msg = s.validate().expect_err("invalid").to_string();
        assert!(
            msg.contains("engine.max_batch_tokens") && msg.contains("engine.max_running_sequences")
        );
        let mut s = Settings::default();
        s.engine.kv_total_blocks = 10;
        assert!(s.validate().is_err());
    }

    #[test]
    fn env_layer_overrides_file_defaults() {
        std::env::set_var("MEIT__LIMITS__MAX_STOP_SEQUENCES", "7");
        std::env::set_var("MEIT__SERVER__API_KEYS", "k1,k2");
        let s = Settings::load(None, &[]);
        std::env::remove_var("MEIT__LIMITS__MAX_STOP_SEQUENCES");
        std::env::remove_var("MEIT__SERVER__API_KEYS");
        let s = s.expect("load");
        assert_eq!(s.limits.max_stop_sequences, 7);
        assert_eq!(s.server.api_keys, vec!["k1".to_string(), "k2".to_string()]);
    }

    #[test]
    fn example_file_is_valid_and_equals_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config/meit.toml");
        let from_file: Settings = Config::builder()
            .add_source(File::from(path.as_path()).format(FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("deploy/config/meit.toml");
        assert_eq!(from_file, Settings::default());
    }

    #[test]
    fn kv_cache_setting_maps_to_the_load_options_and_names_a_bad_value() {
        let mut m = ModelSettings::default();
        assert_eq!(m.load_options().expect("auto").kv_cache, None);
        m.kv_cache = "f16".into();
        assert_eq!(m.load_options().expect("f16").kv_cache, Some(KvDtype::F16));
        m.kv_cache = "int4".into();
        let e = m.load_options().expect_err("int4").to_string();
        assert!(
            e.contains("model.kv_cache") && e.contains("\"int4\""),
            "{e}"
        );
    }

    #[test]
    fn overrides_parse() {
        assert_eq!(
            Settings::parse_override("server.port=9000").expect("ok"),
            ("server.port".to_string(), "9000".to_string())
        );
        assert!(Settings::parse_override("port").is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let over = [("server.prot".to_string(), "1".to_string())];
        assert!(Settings::load(None, &over).is_err());
    }
}
