//! `depot serve`'s HTTP server: hyper under the router, with what axum's own `serve` cannot
//! set. A client that sends half its headers is cut off after `header_timeout`; one that stops
//! sending its body, after `body_idle_timeout` without a byte (the upload is then refused and
//! its temp file dropped, as when a client goes away). Answers go out with TCP_NODELAY, and a
//! shutdown lets requests in flight finish.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use futures::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long a connection may take over what.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub body_idle: Duration,
}

/// Longest wait for requests in flight once a shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(30);

/// Serve `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait a little, then go on accepting.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let idle = timeouts.body_idle;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request = with_idle_body_timeout(request, idle);
            // The client's address, for the events its writes record.
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the shutdown wait");
    }
    Ok(())
}

/// `request` with a body that fails (as a broken body does) once `idle` passes without data.
/// A request that declares no body is passed on as it is.
fn with_idle_body_timeout(request: Request<Incoming>, idle: Duration) -> Request {
    let has_body = depot::api::declares_body(request.headers());
    if !has_body {
        return request.map(Body::new);
    }
    request.map(|body| {
        let chunks = Body::new(body).into_data_stream();
        let timed = futures::stream::unfold(Some(chunks), move |state| async move {
            let mut chunks = state?;
            match tokio::time::timeout(idle, chunks.next()).await {
                Ok(Some(chunk)) => Some((chunk.map_err(std::io::Error::other), Some(chunks))),
                Ok(None) => None,
                Err(_) => {
                    let stalled = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no body data for {} s", idle.as_secs()),
                    );
                    Some((Err(stalled), None))
                }
            }
        });
        Body::from_stream(timed)
    })
}
