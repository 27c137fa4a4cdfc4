//! The HTTP server: HTTP/1.1 connections with a bound on how many are open,
//! on how long a client may take to send a request's headers and on how
//! long a write to it may make no progress, and a graceful stop with a
//! deadline. (axum's own `serve` sets neither bound: a client that
//! opens connections and never finishes its headers would hold them all.)
//! The time to send a body and to be answered is bounded per request by
//! the router ([`crate::http`]'s request timeout).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt;

/// The bounds on connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send a request's headers, on a new
    /// connection and between requests on a kept-alive one.
    pub header_read_timeout: Duration,
    /// Connections open at once; past it, new ones wait in the listen
    /// queue until one closes.
    pub max_connections: usize,
    /// How long a write to a client may make no progress: a client that
    /// stops reading its answers does not hold its connection (or a stop)
    /// for ever.
    pub write_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes; then stops
/// accepting, lets the requests in flight finish and closes idle
/// connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, a reset before accept: not
                    // the server's end; wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(connection(stream, peer, router.clone(), limits, stopping.clone(), permit));
    }
    drop(listener);
    let _ = stop.send(true);
    // In-flight requests finish; past the deadline what is left is cut.
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_DEADLINE, drained).await.is_err() {
        tracing::warn!(left = connections.len(), "connections still open at the shutdown deadline were closed");
        connections.abort_all();
    }
    Ok(())
}

/// How long a stop waits for the requests in flight.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    limits: Limits,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(WriteDeadline::new(stream, limits.write_timeout)), service);
    tokio::pin!(conn);
    let stop = async move {
        // Dropped at once: the guard it returns cannot cross an await.
        let _ = stopping.wait_for(|stop| *stop).await.is_ok();
    };
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        () = stop => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// A stream whose writes fail (`TimedOut`) when they make no progress for
/// `limit`: hyper has no write timeout of its own.
struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Duration) -> WriteDeadline<S> {
        WriteDeadline { inner, limit, stalled: None }
    }

    /// A write's outcome: progress ends a stall; none starts or goes on
    /// with one.
    fn progress<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        match polled {
            std::task::Poll::Ready(done) => {
                self.stalled = None;
                std::task::Poll::Ready(done)
            }
            std::task::Poll::Pending => self.stall(cx).map(Err),
        }
    }

    /// After a write that did not complete: Ready(error) once the stall has
    /// lasted `limit`, else Pending (woken by the timer too).
    fn stall(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Error> {
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => {
                std::task::Poll::Ready(std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading"))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(cx, polled)
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(cx, polled)
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
