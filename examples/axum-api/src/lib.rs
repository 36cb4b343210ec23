//! An example axum API that trusts the same issuer as the players API: scouting notes about
//! players, readable by anyone, written only with a `scouting:write` token for its audience
//! (default `scouting-api`). Everything about tokens comes from `token-verifier`'s `axum`
//! feature: no poem in this build.

mod notes;

use std::{io, net::SocketAddr};

use axum::{Router, routing::get};
use token_verifier::{
    ConfigError, TokenVerifier, VerifierConfig, axum::protected_resource_metadata,
    resource_metadata::WELL_KNOWN_PATH,
};

pub use notes::WRITE_SCOPE;

/// What the API can be told (from `NOTES_*` environment variables in `main`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// The auth-server's public base URL: the trusted `iss`, where its metadata is.
    pub issuer: String,
    /// The audience tokens must name; also the realm of the challenges.
    pub audience: String,
    /// Where the issuer's keys are; discovered from its metadata when unset.
    pub jwks_url: Option<String>,
    /// The API's URL as its clients call it (`https://gw.example/scouting`): the `resource` of
    /// its RFC 9728 metadata, named by its challenges. Unset: `http://{Host}`, not named.
    pub public_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 9002)),
            issuer: "http://localhost:9000".into(),
            audience: "scouting-api".into(),
            jwks_url: None,
            public_url: None,
        }
    }
}

impl Settings {
    /// The defaults, changed by `NOTES_BIND`, `NOTES_ISSUER`, `NOTES_AUDIENCE`,
    /// `NOTES_JWKS_URL` and `NOTES_PUBLIC_URL` where set.
    pub fn from_env() -> Result<Self, StartupError> {
        let mut settings = Self::default();
        if let Ok(bind) = std::env::var("NOTES_BIND") {
            settings.bind = bind.parse().map_err(|_| StartupError::Setting {
                key: "NOTES_BIND",
                reason: "not an address such as 127.0.0.1:9002".into(),
            })?;
        }
        if let Ok(issuer) = std::env::var("NOTES_ISSUER") {
            settings.issuer = issuer;
        }
        if let Ok(audience) = std::env::var("NOTES_AUDIENCE") {
            settings.audience = audience;
        }
        settings.jwks_url = std::env::var("NOTES_JWKS_URL").ok();
        settings.public_url = std::env::var("NOTES_PUBLIC_URL").ok();
        Ok(settings)
    }

    fn verifier_config(&self) -> VerifierConfig {
        let mut config = VerifierConfig::new(&self.issuer, &self.audience);
        config.jwks_url = self.jwks_url.clone();
        config.public_url = self.public_url.clone();
        config.scopes_supported = vec![WRITE_SCOPE.to_owned()];
        config
    }
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("setting {key}: {reason}")]
    Setting { key: &'static str, reason: String },
    #[error("token verifier: {0}")]
    Verifier(#[from] ConfigError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// A built, bound, not yet running API.
pub struct Application {
    port: u16,
    listener: tokio::net::TcpListener,
    router: Router,
    verifier: TokenVerifier,
}

impl Application {
    /// Starts fetching the issuer's keys in the background and binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let verifier = TokenVerifier::start(settings.verifier_config())?;
        let listener = tokio::net::TcpListener::bind(settings.bind)
            .await
            .map_err(|source| StartupError::Bind {
                address: settings.bind,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_or(settings.bind.port(), |address| address.port());
        tracing::info!(port, issuer = %settings.issuer, audience = %settings.audience, "scouting notes API bound");
        Ok(Self {
            port,
            listener,
            router: router(verifier.clone()),
            verifier,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The verifier: its readiness, and what it asked of the issuer.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// Serves until Ctrl-C / SIGTERM, then lets requests in flight finish.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown_signal())
            .await
    }
}

/// Every route: the notes, and readiness.
pub fn router(verifier: TokenVerifier) -> Router {
    let state = notes::AppState::new(verifier);
    Router::new()
        .route("/notes", get(notes::list).post(notes::add))
        .route("/notes/{id}", get(notes::one))
        .route("/health/ready", get(notes::ready))
        .route(WELL_KNOWN_PATH, get(protected_resource_metadata))
        .with_state(state)
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
    // axum stops accepting and waits for the requests in flight.
    tracing::info!("shutting down");
}
