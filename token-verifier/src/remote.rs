//! Someone else's public keys, fetched from the web with the care this crate fetches an
//! issuer's: a time limit and a size cap on every request, redirects only within the origin,
//! plain `http` only to loopback unless allowed, the set cached for as long as its
//! `Cache-Control: max-age` says, the last good set kept while the source is unreachable, and a
//! refetch for a `kid` not in the set within the unknown-`kid` limits of the crate
//! documentation. An authorization server uses it for its clients' `jwks_uri` and for the
//! issuers of workload identities it trusts.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use url::Url;

use crate::config::{ConfigError, VerifierConfig, check_transport, parse_http_url};
use crate::fetch::{self, FetchError};
use crate::keys::{KeySetError, PublicKeySet};
use crate::refetch::UnknownKidGate;

/// How a [`RemoteKeys`] fetches.
#[derive(Debug, Clone)]
pub struct RemoteKeysConfig {
    /// Time limit of one request.
    pub timeout: Duration,
    /// Plain `http` to hosts that are not loopback.
    pub allow_insecure: bool,
    /// How long a set is used when its source sends no `max-age`.
    pub default_max_age: Duration,
    /// The unknown-`kid` limits (see the crate documentation).
    pub unknown_kid_min_interval: Duration,
    pub unknown_kid_cooldown: Duration,
}

impl Default for RemoteKeysConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            allow_insecure: false,
            default_max_age: Duration::from_secs(300),
            unknown_kid_min_interval: Duration::from_secs(1),
            unknown_kid_cooldown: Duration::from_secs(30),
        }
    }
}

/// Why no key set is available.
#[derive(Debug, thiserror::Error)]
pub enum RemoteKeysError {
    /// The source has never answered with a usable set (the detail is for logs).
    #[error("the keys could not be fetched: {0}")]
    Unavailable(String),
}

enum Source {
    Jwks(Url),
    /// An OpenID issuer: keys at the `jwks_uri` of `{issuer}/.well-known/openid-configuration`.
    Issuer {
        issuer: String,
        metadata: Url,
    },
}

struct Cached {
    keys: Arc<PublicKeySet>,
    fetched: Instant,
    max_age: Duration,
}

/// The keys at a JWKS URL (or of an OpenID issuer), fetched when needed. Cheap to clone.
#[derive(Clone)]
pub struct RemoteKeys {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    client: reqwest::Client,
    config: RemoteKeysConfig,
    /// For the unknown-`kid` gate, which reads its limits from a verifier configuration.
    gate_config: VerifierConfig,
    cached: RwLock<Option<Cached>>,
    fetching: Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    jwks_url: Option<Url>,
    last_started: Option<Instant>,
    gate: UnknownKidGate,
}

impl RemoteKeys {
    /// The keys published at `jwks_url`.
    pub fn from_jwks_url(jwks_url: &str, config: RemoteKeysConfig) -> Result<Self, ConfigError> {
        let url = parse_http_url("jwks_uri", jwks_url)?;
        check_transport("jwks_uri", &url, config.allow_insecure)?;
        Self::new(Source::Jwks(url.clone()), Some(url), config)
    }

    /// The keys of the OpenID issuer `issuer`, found through its discovery document.
    pub fn from_issuer(issuer: &str, config: RemoteKeysConfig) -> Result<Self, ConfigError> {
        let url = parse_http_url("issuer", issuer)?;
        check_transport("issuer", &url, config.allow_insecure)?;
        let mut metadata = url.clone();
        let path = url.path().trim_end_matches('/').to_owned();
        metadata.set_path(&format!("{path}/.well-known/openid-configuration"));
        let issuer = issuer.trim_end_matches('/').to_owned();
        Self::new(Source::Issuer { issuer, metadata }, None, config)
    }

    fn new(
        source: Source,
        jwks_url: Option<Url>,
        config: RemoteKeysConfig,
    ) -> Result<Self, ConfigError> {
        let mut gate_config = VerifierConfig::new("https://unused.invalid", "unused");
        gate_config.unknown_kid_min_interval = config.unknown_kid_min_interval;
        gate_config.unknown_kid_cooldown = config.unknown_kid_cooldown;
        Ok(Self {
            inner: Arc::new(Inner {
                source,
                client: fetch::client_with_timeout(config.timeout)?,
                config,
                gate_config,
                cached: RwLock::default(),
                fetching: Mutex::new(FetchState {
                    jwks_url,
                    ..FetchState::default()
                }),
            }),
        })
    }

    fn current(&self) -> Option<(Arc<PublicKeySet>, bool)> {
        let cached = self.inner.cached.read().unwrap_or_else(|p| p.into_inner());
        cached
            .as_ref()
            .map(|c| (Arc::clone(&c.keys), c.fetched.elapsed() < c.max_age))
    }

    /// The set to check a JWS whose header names `kid` (or none) with: the cached one while it
    /// is fresh and knows the `kid`; otherwise fetched (a `kid` the set lacks, within the
    /// unknown-`kid` limits). A source that does not answer leaves the last good set in use.
    pub async fn keys_for(&self, kid: Option<&str>) -> Result<Arc<PublicKeySet>, RemoteKeysError> {
        let asked = Instant::now();
        if let Some((keys, fresh)) = self.current() {
            let knows = kid.is_none_or(|kid| keys.has_kid(kid));
            if fresh && knows {
                return Ok(keys);
            }
            if fresh {
                return Ok(self.refetch_for_unknown_kid(asked).await.unwrap_or(keys));
            }
        }
        let mut state = self.inner.fetching.lock().await;
        if let Some((keys, true)) = self.current()
            && state.last_started.is_some_and(|t| t >= asked)
        {
            return Ok(keys); // fetched while we waited
        }
        match self.fetch(&mut state).await {
            Ok(keys) => Ok(keys),
            Err(err) => match self.current() {
                Some((keys, _)) => {
                    tracing::warn!(error = %err, "keeping the last good keys");
                    Ok(keys)
                }
                None => Err(RemoteKeysError::Unavailable(err.to_string())),
            },
        }
    }

    /// After a JWS did not verify with the cached set (a key replaced at the source, and no
    /// `kid` to notice it by): a refetch, within the unknown-`kid` limits; `None` if none was
    /// made or it failed.
    pub async fn refetch_after_failure(&self) -> Option<Arc<PublicKeySet>> {
        self.refetch_for_unknown_kid(Instant::now()).await
    }

    async fn refetch_for_unknown_kid(&self, asked: Instant) -> Option<Arc<PublicKeySet>> {
        let mut state = self.inner.fetching.lock().await;
        if state.last_started.is_some_and(|t| t >= asked) {
            return self.current().map(|(keys, _)| keys);
        }
        let now = Instant::now();
        if !state.gate.may_fetch(now, &self.inner.gate_config) {
            return None;
        }
        state.gate.started(now);
        let fetched = self.fetch(&mut state).await;
        state.gate.finished(fetched.is_ok());
        fetched.ok()
    }

    async fn fetch(&self, state: &mut FetchState) -> Result<Arc<PublicKeySet>, FetchError> {
        state.last_started = Some(Instant::now());
        let inner = &self.inner;
        let url = match (&state.jwks_url, &inner.source) {
            (Some(url), _) => url.clone(),
            (None, Source::Issuer { issuer, metadata }) => {
                let url = fetch::discover_jwks_url(
                    &inner.client,
                    metadata,
                    issuer,
                    inner.config.allow_insecure,
                )
                .await?;
                state.jwks_url = Some(url.clone());
                url
            }
            (None, Source::Jwks(url)) => url.clone(),
        };
        let document = fetch::get(&inner.client, &url).await?;
        let keys = Arc::new(PublicKeySet::parse(&document.body).map_err(|err| {
            FetchError::Metadata(match err {
                KeySetError::PrivateKey => format!("{url} publishes private key material"),
                other => format!("{url}: {other}"),
            })
        })?);
        *inner.cached.write().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
            keys: Arc::clone(&keys),
            fetched: Instant::now(),
            max_age: document
                .max_age
                .unwrap_or(inner.config.default_max_age)
                .min(Duration::from_secs(24 * 3600)),
        });
        Ok(keys)
    }
}
