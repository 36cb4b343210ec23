//! The `TokenVerifier`: keeps the issuer's keys fresh in the background and checks tokens
//! against them without touching the network on the hot path.

use std::{
    sync::{
        Arc, RwLock, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use url::Url;

use crate::{
    claims::{ClaimRules, VerifiedClaims},
    config::{ConfigError, VerifierConfig, parse_http_url},
    error::VerifyError,
    fetch::{self, FetchError},
    header,
    jwks::{self, KeySet, VerifyingKey},
};

/// How long keys are cached when the issuer sends no `Cache-Control: max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// Bounds on the background refresh period, whatever the issuer says.
const MIN_REFRESH: Duration = Duration::from_secs(1);
const MAX_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);
/// Retry delays while the issuer is unreachable: doubling from the first to the last.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// Verifies RFC 9068 access tokens with the issuer's published keys. Cheap to clone.
///
/// [`TokenVerifier::start`] fetches the keys in the background, retrying until the issuer
/// answers, so an API can start while its issuer is down; [`TokenVerifier::is_ready`] says
/// whether keys were fetched at least once. After that, the keys are refreshed when their
/// `max-age` runs out, a token with an unknown `kid` triggers at most one refetch per
/// cooldown, and the last good keys stay in use while the issuer is unreachable.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: VerifierConfig,
    metadata_url: Url,
    client: reqwest::Client,
    keys: RwLock<Arc<KeySet>>,
    ready: AtomicBool,
    /// Serialises fetches; holds what they share.
    fetches: Mutex<FetchState>,
}

struct FetchState {
    jwks_url: Option<Url>,
    last_attempt: Option<Instant>,
}

impl TokenVerifier {
    /// Checks the configuration and starts fetching keys in the background.
    /// Must be called inside a Tokio runtime.
    pub fn start(config: VerifierConfig) -> Result<Self, ConfigError> {
        let verifier = Self::new(config)?;
        spawn_refresher(Arc::downgrade(&verifier.inner));
        Ok(verifier)
    }

    /// Checks the configuration without starting the background refresh: keys are fetched
    /// only when a token names one we lack (at most once per cooldown). For tools and tests;
    /// services want [`start`](Self::start).
    pub fn new(config: VerifierConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let metadata_url = config.metadata_url()?;
        let jwks_url = match &config.jwks_url {
            Some(url) => Some(parse_http_url("jwks_url", url)?),
            None => None,
        };
        let client = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout)
            .user_agent(concat!("token-verifier/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ConfigError::Invalid {
                key: "fetch_timeout",
                reason: err.to_string(),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                metadata_url,
                client,
                keys: RwLock::new(Arc::new(KeySet::default())),
                ready: AtomicBool::new(false),
                fetches: Mutex::new(FetchState {
                    jwks_url,
                    last_attempt: None,
                }),
            }),
        })
    }

    /// Whether the issuer's keys were fetched at least once.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// Waits until [`is_ready`](Self::is_ready), at most `timeout`; returns whether it is.
    pub async fn wait_until_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_ready() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// The configuration this verifier runs with.
    pub fn config(&self) -> &VerifierConfig {
        &self.inner.config
    }

    /// Verifies a compact JWS access token: size, header rules, signature with the key its
    /// `kid` names (and only that key's algorithm), then the claim rules.
    pub async fn verify(&self, token: &str) -> Result<VerifiedClaims, VerifyError> {
        let config = &self.inner.config;
        if token.len() > config.max_token_bytes {
            return Err(VerifyError::TooLarge);
        }
        let header = decode_header(token)?;
        let checked = header::check(&header)?;
        let key = self.key(&checked.kid).await?;
        if key.alg != checked.alg {
            return Err(VerifyError::AlgorithmMismatch);
        }
        let (payload, _) = josekit::jws::deserialize_compact(token, key.verifier.as_ref())
            .map_err(|_| VerifyError::BadSignature)?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&payload).map_err(|_| VerifyError::Malformed)?;
        ClaimRules {
            issuer: config.issuer_trimmed(),
            audience: &config.audience,
            leeway: config.leeway,
            now: unix_now(),
        }
        .check(&claims)
    }

    fn key_set(&self) -> Arc<KeySet> {
        // A poisoned lock only means a writer panicked between whole-set swaps.
        match self.inner.keys.read() {
            Ok(keys) => Arc::clone(&keys),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, VerifyError> {
        if let Some(key) = self.key_set().get(kid) {
            return Ok(key);
        }
        self.refetch_for_unknown_kid(kid).await;
        self.key_set().get(kid).ok_or(VerifyError::UnknownKey)
    }

    /// A token names a key we do not have: perhaps the issuer rotated. Refetch, unless any
    /// fetch happened within the cooldown, so made-up `kid`s cannot hammer the issuer.
    async fn refetch_for_unknown_kid(&self, kid: &str) {
        let mut state = self.inner.fetches.lock().await;
        if self.key_set().get(kid).is_some() {
            return; // fetched by someone else while we waited
        }
        let cooldown = self.inner.config.unknown_kid_cooldown;
        if state
            .last_attempt
            .is_some_and(|last| last.elapsed() < cooldown)
        {
            return;
        }
        tracing::info!(
            kid,
            "token names an unknown key; refetching the issuer's keys"
        );
        if let Err(err) = self.fetch(&mut state).await {
            tracing::warn!(error = %err, "could not refetch the issuer's keys");
        }
    }

    /// Fetches the JWKS (discovering its URL first if needed) and swaps in the new keys.
    /// On any failure the previous keys stay. Returns the `max-age` the issuer gave.
    async fn fetch(&self, state: &mut FetchState) -> Result<Option<Duration>, FetchError> {
        state.last_attempt = Some(Instant::now());
        let inner = &self.inner;
        let jwks_url = match &state.jwks_url {
            Some(url) => url.clone(),
            None => {
                let url = fetch::discover_jwks_url(
                    &inner.client,
                    &inner.metadata_url,
                    inner.config.issuer_trimmed(),
                )
                .await?;
                tracing::info!(jwks_url = %url, "discovered the issuer's JWKS URL");
                state.jwks_url = Some(url.clone());
                url
            }
        };
        let document = fetch::get(&inner.client, &jwks_url).await?;
        let key_set = jwks::parse_key_set(&document.body)?;
        tracing::debug!(keys = key_set.len(), kids = ?key_set.kids().collect::<Vec<_>>(), "fetched the issuer's keys");
        match inner.keys.write() {
            Ok(mut keys) => *keys = Arc::new(key_set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(key_set),
        }
        if !inner.ready.swap(true, Ordering::AcqRel) {
            tracing::info!("fetched the issuer's keys; ready to verify tokens");
        }
        Ok(document.max_age)
    }
}

/// Keeps the keys fresh for as long as the verifier lives (it holds only a weak reference).
fn spawn_refresher(inner: Weak<Inner>) {
    tokio::spawn(async move {
        let mut failures: u32 = 0;
        loop {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let verifier = TokenVerifier { inner };
            let wait = {
                let mut state = verifier.inner.fetches.lock().await;
                match verifier.fetch(&mut state).await {
                    Ok(max_age) => {
                        failures = 0;
                        max_age
                            .unwrap_or(DEFAULT_MAX_AGE)
                            .clamp(MIN_REFRESH, MAX_REFRESH)
                    }
                    Err(err) => {
                        failures = failures.saturating_add(1);
                        let delay = retry_delay(failures);
                        tracing::warn!(
                            error = %err,
                            retry_in_ms = delay.as_millis() as u64,
                            keys_kept = verifier.key_set().len(),
                            "could not fetch the issuer's keys"
                        );
                        delay
                    }
                }
            };
            drop(verifier);
            tokio::time::sleep(wait).await;
        }
    });
}

fn retry_delay(failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    FIRST_RETRY.saturating_mul(factor).min(LAST_RETRY)
}

fn decode_header(token: &str) -> Result<Map<String, Value>, VerifyError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| VerifyError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_a_quarter_second_to_half_a_minute() {
        assert_eq!(retry_delay(1), Duration::from_millis(250));
        assert_eq!(retry_delay(2), Duration::from_millis(500));
        assert_eq!(retry_delay(5), Duration::from_secs(4));
        assert_eq!(retry_delay(100), Duration::from_secs(30));
    }

    #[test]
    fn a_token_that_is_not_three_parts_is_malformed() {
        for token in ["", "abc", "a.b", "a.b.c.d", "!!.e30.sig"] {
            assert_eq!(decode_header(token), Err(VerifyError::Malformed), "{token}");
        }
    }

    #[tokio::test]
    async fn an_oversized_token_is_refused_before_parsing() {
        let verifier = TokenVerifier::new(VerifierConfig::new("http://127.0.0.1:1", "a")).unwrap();
        let token = "a".repeat(8 * 1024 + 1);
        assert_eq!(verifier.verify(&token).await, Err(VerifyError::TooLarge));
    }
}
