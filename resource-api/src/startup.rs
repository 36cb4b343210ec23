//! Builds the application from settings — database, verifier, bound listener — and runs it.

use std::{io, time::Duration};

use poem::{
    EndpointExt, Response, Server,
    endpoint::BoxEndpoint,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
};
use token_verifier::TokenVerifier;

use crate::{api, config::Settings, storage, telemetry::Metrics};

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("token verifier: {0}")]
    Verifier(#[from] token_verifier::ConfigError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// A built, bound, not yet running players API.
pub struct Application {
    port: u16,
    acceptor: TcpAcceptor,
    endpoint: BoxEndpoint<'static, Response>,
}

impl Application {
    /// Opens (and on first start, creates and seeds) the database, starts fetching the
    /// issuer's keys in the background, and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let db = storage::connect(&settings.database_url).await?;
        let players = storage::PlayerRepository::new(db);
        let verifier = TokenVerifier::start(settings.verifier_config())?;
        let metrics = Metrics::new();

        let acceptor = TcpListener::bind(settings.bind)
            .into_acceptor()
            .await
            .map_err(|source| StartupError::Bind {
                address: settings.bind,
                source,
            })?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().map(|addr| addr.port()))
            .unwrap_or(settings.bind.port());
        let token_url = settings.token_url();
        let endpoint = api::routes(
            players,
            verifier,
            metrics,
            &token_url,
            settings.max_body_bytes,
        )
        .boxed();
        tracing::info!(port, issuer = %settings.issuer, audience = %settings.audience, "players API bound");
        Ok(Self {
            port,
            acceptor,
            endpoint,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until Ctrl-C / SIGTERM, then lets requests in flight finish (10 s at most).
    pub async fn run_until_stopped(self) -> io::Result<()> {
        // A connection silent for 30 s (a half-sent request, an idle keep-alive) is closed.
        Server::new_with_acceptor(self.acceptor)
            .idle_timeout(Duration::from_secs(30))
            .run_with_graceful_shutdown(
                self.endpoint,
                shutdown_signal(),
                Some(Duration::from_secs(10)),
            )
            .await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
