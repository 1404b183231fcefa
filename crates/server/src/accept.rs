//! The accept loop: every connection served by hyper's HTTP/1 with a bound on
//! reading a request header (`serve.header_timeout_seconds`: a client that
//! trickles its header, or idles between requests, is cut off instead of
//! holding a connection forever; axum's own `serve` sets no such bound), the
//! caller's address handed to the handlers, and a graceful stop.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower_service::Service as _;

/// Serves `app` on `listener` until `stop` completes; then accepts no more
/// connections, lets every request in flight finish and closes idle ones.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
                    // A connection gone before it was accepted is the
                    // client's; anything else (out of file descriptors):
                    // wait a little rather than spin.
                    if !matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
                        tracing::warn!("cannot accept a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            app.clone().call(request)
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // A client gone, a malformed request, or a header too slow:
                // the client's doing, not the server's.
                tracing::debug!("connection from {remote} ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
