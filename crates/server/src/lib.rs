//! salescast-server: the HTTP front end of `salescast serve`. A JSON API over
//! the champion's forecasts (stored, or on demand under a caller's plan), its
//! record, health and Prometheus metrics; it follows the champion pointer by
//! itself (`reload`), swapping snapshots atomically. Every forecast and
//! decision comes from salescast-core (`pipeline::serving`); this crate only
//! routes, bounds, counts and renders.

mod accept;
mod auth;
mod bearer;
mod error;
mod metrics;
mod reload;
mod routes;
mod state;
mod throttle;
mod web;

use std::net::SocketAddr;

use anyhow::Context as _;
use salescast_core::config::Config;
use salescast_core::lake::Lake;
use salescast_core::registry::Registry;

pub use state::AppState;

/// Serves until SIGTERM or Ctrl-C: then stops accepting connections and
/// finishes the requests in flight. Call it on the process's runtime; the
/// lake and registry are its blocking facades (used from blocking threads).
pub async fn serve(config: Config, lake: Lake, registry: Registry, listen: SocketAddr) -> anyhow::Result<()> {
    let state = AppState::new(config, lake, registry);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| bind_error(listen, e))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!("listening on http://{local}");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let follower = tokio::spawn(reload::follow(state.clone(), stop_rx));
    let header_timeout = std::time::Duration::from_secs_f64(state.config.serve.header_timeout_seconds);
    let app = routes::app(state);
    accept::serve(listener, app, header_timeout, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    let _ = follower.await;
    tracing::info!("stopped: every request in flight was answered");
    Ok(())
}

/// An address in use, not on this host, or not allowed (a port below 1024
/// without the right) is the address's fault, a usage error naming it (exit
/// 2); any other failure to listen is unexpected.
fn bind_error(listen: SocketAddr, e: std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind::{AddrInUse, AddrNotAvailable, PermissionDenied};
    if matches!(e.kind(), AddrInUse | AddrNotAvailable | PermissionDenied) {
        salescast_core::config::ConfigError::Argument {
            flag: "--listen (serve.listen)".into(),
            problem: format!("cannot listen on {listen}: {e}"),
        }
        .into()
    } else {
        anyhow::Error::new(e).context(format!("cannot listen on {listen}"))
    }
}

/// SIGTERM (ECS stopping a task) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: no new connections; finishing requests in flight");
}
