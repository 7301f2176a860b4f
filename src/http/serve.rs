//! Running the server with graceful shutdown.
//!
//! On the shutdown future: stop accepting connections, mark the engine not ready (new
//! submissions get 503 `shutting_down`), let running and queued sequences continue for
//! `grace`, then the engine ends the rest with finish reason `shutdown` (chat: `length`), so
//! every open stream gets its final event and `[DONE]` and the server returns.

use std::future::Future;
use std::time::Duration;

use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};

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
    axum::serve(no_delay(listener), app)
        .with_graceful_shutdown(signal)
        .await
}

/// `listener` with Nagle's algorithm off on every accepted connection. A stream is many small
/// writes (one per token): with it on, each write waited for the ACK of the one before, which a
/// client may delay by up to 40 ms, so the first token reached a streaming client about 20 ms
/// late (one client: time to first token 45-55 ms with it on, 25-26 ms off).
fn no_delay(listener: TcpListener) -> TapIo<TcpListener, fn(&mut TcpStream)> {
    fn set(tcp: &mut TcpStream) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("could not set TCP_NODELAY on a connection: {e}");
        }
    }
    listener.tap_io(set)
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

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut listener = no_delay(listener);
        let client = TcpStream::connect(addr);
        let ((io, _), client) = tokio::join!(listener.accept(), client);
        client.expect("connect");
        assert!(io.nodelay().expect("TCP_NODELAY readable"));
        // a plain accept leaves Nagle on (TCP_NODELAY off), so the check above can fail
        let plain = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = plain.local_addr().expect("address");
        let (accepted, _) = tokio::join!(plain.accept(), TcpStream::connect(addr));
        let (io, _) = accepted.expect("accept");
        assert!(!io.nodelay().expect("TCP_NODELAY readable"));
    }
}
