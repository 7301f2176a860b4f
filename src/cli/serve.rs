//! `meit serve`: settings -> tokenizer -> engine (model loads on the engine thread, `/ready` is
//! 503 until it is loaded and warmed) -> HTTP server until SIGTERM / Ctrl-C.
use std::path::PathBuf;
use std::sync::Arc;

use candle_core::Device;

use crate::engine::candle_backend::CandleBackend;
use crate::engine::{self, BackendError};
use crate::http::{self, AppState};
use crate::model::bundle::{load_tokenizer, MeitModel};
use crate::model::ModelError;
use crate::settings::{Settings, SettingsError};
use crate::telemetry::Metrics;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// A TOML settings file (see deploy/config/meit.toml); env `MEIT__SECTION__KEY` overrides it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to bind (overrides server.host).
    #[arg(long)]
    pub host: Option<String>,
    /// Port to bind (overrides server.port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Any setting as section.key=value (repeatable), e.g. `--set model.precision=f32`.
    #[arg(long = "set")]
    pub set: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Loads the settings: defaults -> file -> env -> `--set` -> `--host/--port`.
pub fn settings(args: &ServeArgs) -> Result<Settings, SettingsError> {
    let mut overrides = args
        .set
        .iter()
        .map(|s| Settings::parse_override(s))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(h) = &args.host {
        overrides.push(("server.host".into(), h.clone()));
    }
    if let Some(p) = args.port {
        overrides.push(("server.port".into(), p.to_string()));
    }
    Settings::load(args.config.as_deref(), &overrides)
}

pub async fn run(args: &ServeArgs) -> Result<(), ServeError> {
    let settings = settings(args)?;
    let opts = settings.model.load_options()?;
    let tokenizer = Arc::new(load_tokenizer(&opts.backbone)?);
    let metrics = Arc::new(Metrics::new().map_err(|e| ServeError::Metrics(e.to_string()))?);
    let load = move || {
        let model =
            MeitModel::load(&opts, &Device::Cpu).map_err(|e| BackendError::Model(e.to_string()))?;
        if !model.trained {
            tracing::warn!(
                "no trained adapter is configured (model.adapter): reports will not describe the ECG"
            );
        }
        tracing::info!("model loaded");
        Ok(CandleBackend::new(model))
    };
    let engine = engine::spawn_with(load, tokenizer, settings.engine_config(), metrics.clone());
    let state = AppState::new(engine, metrics, &settings);
    http::serve_with_settings(&settings, state, http::shutdown_signal()).await?;
    Ok(())
}
