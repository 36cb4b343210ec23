//! Serving, the same for every service: bind (port 0 picks a free port), serve until told to
//! stop, then let requests in flight finish.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::{Endpoint, Server};

/// A connection silent this long (a half-sent request, an idle keep-alive) is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long requests in flight may take to finish once stopping.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {source}")]
pub struct BindError {
    pub address: SocketAddr,
    #[source]
    pub source: io::Error,
}

/// A bound listener, not yet serving.
pub struct Listening {
    acceptor: TcpAcceptor,
    port: u16,
}

impl Listening {
    pub async fn bind(address: SocketAddr) -> Result<Self, BindError> {
        let acceptor = TcpListener::bind(address)
            .into_acceptor()
            .await
            .map_err(|source| BindError { address, source })?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(SocketAddr::port))
            .unwrap_or(address.port());
        Ok(Self { acceptor, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves `app` until `shutdown` completes, then drains for up to 10 s.
    pub async fn serve(
        self,
        app: impl Endpoint + 'static,
        shutdown: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        Server::new_with_acceptor(self.acceptor)
            .idle_timeout(IDLE_TIMEOUT)
            .run_with_graceful_shutdown(app, shutdown, Some(DRAIN_TIMEOUT))
            .await
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
