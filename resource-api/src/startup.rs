//! Builds the application from settings — database, verifier, bound listener — and runs it.

use std::{future::Future, io};

use poem::{EndpointExt, Response, endpoint::BoxEndpoint};
use service_kit::{
    db::{ConnectError, DbOptions},
    serve::{BindError, Listening},
};
use token_verifier::TokenVerifier;

use crate::{api, config::Settings, scouting::ScoutingClient, storage};

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] ConnectError),
    #[error("token verifier: {0}")]
    Verifier(#[from] token_verifier::ConfigError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("scouting: {0}")]
    Scouting(String),
}

/// A built, bound, not yet running players API.
pub struct Application {
    listening: Listening,
    endpoint: BoxEndpoint<'static, Response>,
}

impl Application {
    /// Opens (and on first start, creates and seeds) the database, starts fetching the
    /// issuer's keys in the background, and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // Before anything records a metric.
        service_kit::telemetry::metrics_handle();
        let db = storage::connect(&settings.database_url, &DbOptions::default()).await?;
        let players = storage::PlayerRepository::new(db);
        let verifier = TokenVerifier::start(settings.verifier_config())?;
        let listening = Listening::bind(settings.bind).await?;
        let scouting = settings
            .scouting
            .as_ref()
            .map(|scouting| ScoutingClient::new(scouting, settings.token_url()))
            .transpose()
            .map_err(StartupError::Scouting)?;
        let endpoint = api::routes(players, verifier, scouting, &settings).boxed();
        tracing::info!(port = listening.port(), issuer = %settings.issuer, audience = %settings.audience, "players API listening");
        Ok(Self {
            listening,
            endpoint,
        })
    }

    pub fn port(&self) -> u16 {
        self.listening.port()
    }

    /// Serves until Ctrl-C / SIGTERM, then lets requests in flight finish (10 s at most).
    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.run_until(service_kit::serve::shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then drains for up to 10 s.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> io::Result<()> {
        self.listening.serve(self.endpoint, shutdown).await
    }
}
