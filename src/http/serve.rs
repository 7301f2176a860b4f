//! Running the server with graceful shutdown.
//!
//! On the shutdown future: stop accepting connections, mark the engine not ready (new
//! submissions get 503 `shutting_down`), let running and queued sequences continue for
//! `grace`, then the engine ends the rest with finish reason `shutdown` (chat: `length`), so
//! every open stream gets its final event and `[DONE]` and the server returns.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;

use super::{router, AppState};
use crate::settings::Settings;

pub async fn serve<F>(
    listener: TcpListener,
    state: AppState,
    grace: Duration,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let engine = state.engine.clone();
    let app = router(state);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested: draining for up to {grace:?}");
        engine.begin_shutdown(grace);
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await
}

/// Bind `server.host:server.port` and serve until `shutdown`.
pub async fn serve_with_settings<F>(
    settings: &Settings,
    state: AppState,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port)).await?;
    tracing::info!("listening on {}", listener.local_addr()?);
    let grace = Duration::from_secs(settings.server.shutdown_grace_secs);
    serve(listener, state, grace, shutdown).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
