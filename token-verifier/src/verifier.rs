//! The `TokenVerifier`: keeps the issuer's keys fresh in the background and checks tokens
//! against them without touching the network on the hot path.

use std::{
    sync::{
        Arc, RwLock, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use url::Url;

use crate::{
    algorithm::Algorithm,
    claims::{ClaimRules, VerifiedClaims},
    config::{ConfigError, VerifierConfig, parse_http_url},
    dpop::{self, MemoryReplayCache, ProofChecker, ProofError},
    error::VerifyError,
    fetch::{self, FetchError},
    header,
    jwks::{self, KeySet, VerifyingKey},
    refetch::UnknownKidGate,
    rejection::BearerRejection,
    request::{self, RequestParts, Scheme},
    resource_metadata::{self, ProtectedResourceMetadata},
};

/// How long keys are cached when the issuer sends no `Cache-Control: max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// Bounds on the background refresh period, whatever the issuer says.
const MIN_REFRESH: Duration = Duration::from_secs(1);
const MAX_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);
/// How long an issuer that does not answer yet at start-up is waited for before each failure
/// is a warning.
const STARTUP_GRACE: Duration = Duration::from_secs(15);
/// Retry delays while the issuer is unreachable: doubling from the first to the last.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// Verifies RFC 9068 access tokens with the issuer's published keys. Cheap to clone.
///
/// [`TokenVerifier::start`] fetches the keys in the background, retrying until the issuer
/// answers, so an API can start while its issuer is down; [`TokenVerifier::is_ready`] says
/// whether keys were fetched at least once. After that, the keys are refreshed when their
/// `max-age` runs out, a token with an unknown `kid` triggers a refetch within the limits the
/// [crate documentation](crate#unknown-key-ids-rotation-and-floods) describes, and the last
/// good keys stay in use while the issuer is unreachable.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: VerifierConfig,
    /// The audience, shared by every rejection as the challenge's realm.
    realm: Arc<str>,
    /// The RFC 9728 metadata URL that challenges name; only with a configured `public_url`.
    resource_metadata_url: Option<Arc<str>>,
    metadata_url: Url,
    client: reqwest::Client,
    keys: RwLock<Arc<KeySet>>,
    ready: AtomicBool,
    /// Serialises fetches; holds what they share.
    fetches: Mutex<FetchState>,
    counters: Counters,
    /// DPoP proofs: the keys seen, and the proofs used (per process: see the crate docs).
    proofs: ProofChecker,
    replays: MemoryReplayCache,
}

struct FetchState {
    jwks_url: Option<Url>,
    /// When the latest fetch of any kind began.
    last_started: Option<Instant>,
    unknown_kid_gate: UnknownKidGate,
}

#[derive(Default)]
struct Counters {
    jwks_fetches: AtomicU64,
    metadata_fetches: AtomicU64,
    failed_fetches: AtomicU64,
    unknown_kid_refetches: AtomicU64,
    unknown_kid_refetches_held_back: AtomicU64,
}

/// What a verifier has asked of its issuer so far: for metrics, and for tests that prove
/// how much a flood of made-up `kid`s costs the issuer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifierStats {
    /// JWKS requests sent, whatever their outcome.
    pub jwks_fetches: u64,
    /// RFC 8414 metadata requests sent (to discover `jwks_uri`).
    pub metadata_fetches: u64,
    /// Fetches that failed: unreachable, refused redirect, bad status, unusable document.
    pub failed_fetches: u64,
    /// JWKS requests caused by a token naming a key the verifier lacked.
    pub unknown_kid_refetches: u64,
    /// Tokens naming an unknown key whose refetch the rate limit held back.
    pub unknown_kid_refetches_held_back: u64,
}

/// Why the keys are being fetched.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cause {
    Schedule,
    UnknownKid,
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
    /// only when a token names one we lack (within the unknown-`kid` limits). For tools and
    /// tests; services want [`start`](Self::start).
    pub fn new(config: VerifierConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let metadata_url = config.metadata_url()?;
        let jwks_url = match &config.jwks_url {
            Some(url) => Some(parse_http_url("jwks_url", url)?),
            None => None,
        };
        let client = fetch::client(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                realm: Arc::from(config.audience.as_str()),
                resource_metadata_url: config
                    .public_url
                    .as_deref()
                    .and_then(resource_metadata::metadata_url)
                    .map(Arc::from),
                config,
                metadata_url,
                client,
                keys: RwLock::new(Arc::new(KeySet::default())),
                ready: AtomicBool::new(false),
                fetches: Mutex::new(FetchState {
                    jwks_url,
                    last_started: None,
                    unknown_kid_gate: UnknownKidGate::default(),
                }),
                counters: Counters::default(),
                proofs: ProofChecker::new(),
                replays: MemoryReplayCache::new(),
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

    /// The realm of this API's `WWW-Authenticate` challenges: its audience.
    pub fn realm(&self) -> Arc<str> {
        Arc::clone(&self.inner.realm)
    }

    /// The URL of this API's RFC 9728 metadata, named by its challenges: known only when
    /// [`public_url`](VerifierConfig::public_url) is configured (a URL rebuilt from a request's
    /// `Host` is not one to hand to every client).
    pub fn resource_metadata_url(&self) -> Option<Arc<str>> {
        self.inner.resource_metadata_url.clone()
    }

    /// The 403 `insufficient_scope` answer for a caller whose token lacks `scope`: challenged
    /// with the scheme the token came with, naming this API's metadata like every other
    /// rejection of this verifier. For handlers that check scopes themselves.
    pub fn insufficient_scope(
        &self,
        claims: &VerifiedClaims,
        scope: &'static str,
    ) -> BearerRejection {
        BearerRejection::insufficient_scope(self.realm(), scope)
            .with_scheme(claims.scheme())
            .with_resource_metadata(self.resource_metadata_url())
    }

    /// This API's RFC 9728 metadata document: `resource` is the configured
    /// [`public_url`](VerifierConfig::public_url), or `http://{Host}` without one (development).
    /// `None` when neither is known.
    pub fn protected_resource_metadata(
        &self,
        request: &RequestParts<'_>,
    ) -> Option<ProtectedResourceMetadata> {
        let config = &self.inner.config;
        let resource = match &config.public_url {
            Some(public_url) => resource_metadata::resource_identifier(public_url)?,
            None => request_origin(request)?,
        };
        Some(ProtectedResourceMetadata::new(config, resource))
    }

    /// How long the metadata may be cached: 5 minutes, publicly, when it comes from the
    /// configuration; not at all when it was rebuilt from the request's `Host` (a shared cache
    /// would hand one client's host to another).
    pub fn metadata_cache_control(&self) -> &'static str {
        if self.inner.config.public_url.is_some() {
            "public, max-age=300"
        } else {
            "no-store"
        }
    }

    /// What this verifier has asked of its issuer so far.
    pub fn stats(&self) -> VerifierStats {
        let counters = &self.inner.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        VerifierStats {
            jwks_fetches: read(&counters.jwks_fetches),
            metadata_fetches: read(&counters.metadata_fetches),
            failed_fetches: read(&counters.failed_fetches),
            unknown_kid_refetches: read(&counters.unknown_kid_refetches),
            unknown_kid_refetches_held_back: read(&counters.unknown_kid_refetches_held_back),
        }
    }

    /// The check every framework adapter runs: the request's access token (`Authorization`
    /// header only: RFC 6750 §2.1 `Bearer`, or RFC 9449 §7.1 `DPoP` with its proof),
    /// verified, or the rejection to answer. Scopes are the caller's business
    /// ([`BearerRejection::insufficient_scope`]).
    ///
    /// A DPoP-bound token (`cnf.jkt`) is accepted only as `DPoP` with a proof signed by its key,
    /// made for this request's method and URL and this token (`ath`), not older than
    /// [`dpop_max_age`](VerifierConfig::dpop_max_age), and never seen before by this process.
    /// A bound token sent as `Bearer` is refused, so a stolen one is useless without its key.
    pub async fn authenticate(
        &self,
        request: RequestParts<'_>,
    ) -> Result<VerifiedClaims, BearerRejection> {
        self.check_request(request)
            .await
            .map_err(|rejection| rejection.with_resource_metadata(self.resource_metadata_url()))
    }

    async fn check_request(
        &self,
        request: RequestParts<'_>,
    ) -> Result<VerifiedClaims, BearerRejection> {
        let require_dpop = self.inner.config.require_dpop;
        let default_scheme = if require_dpop {
            Scheme::Dpop
        } else {
            Scheme::Bearer
        };
        let (scheme, token) = match request::credentials(request.headers) {
            Ok(Some(credentials)) => credentials,
            Ok(None) => {
                return Err(
                    BearerRejection::missing_token(self.realm()).with_scheme(default_scheme)
                );
            }
            Err(err) => {
                return Err(
                    BearerRejection::invalid_token(self.realm(), err).with_scheme(default_scheme)
                );
            }
        };
        let claims = match self.verify(token).await {
            Ok(claims) => claims,
            Err(err) => {
                // Debug, not info: a flood of bad tokens must not become a flood of log lines
                // (APIs count their 401s in their metrics).
                tracing::debug!(reason = %err, "access token refused");
                return Err(BearerRejection::invalid_token(self.realm(), err).with_scheme(scheme));
            }
        };
        match (scheme, &claims.dpop_jkt) {
            (Scheme::Bearer, None) if require_dpop => Err(BearerRejection::invalid_token(
                self.realm(),
                VerifyError::NotDpopBound,
            )
            .with_scheme(Scheme::Dpop)),
            (Scheme::Bearer, None) => Ok(claims),
            (Scheme::Bearer, Some(_)) => Err(BearerRejection::invalid_token(
                self.realm(),
                VerifyError::DpopBound,
            )
            .with_scheme(Scheme::Dpop)),
            (Scheme::Dpop, None) => Err(BearerRejection::invalid_token(
                self.realm(),
                VerifyError::NotDpopBound,
            )
            .with_scheme(Scheme::Dpop)),
            (Scheme::Dpop, Some(jkt)) => match self.check_proof(&request, token, jkt) {
                Ok(()) => Ok(claims),
                Err(err) => {
                    tracing::debug!(reason = %err, "DPoP proof refused");
                    Err(BearerRejection::invalid_dpop_proof(self.realm(), err))
                }
            },
        }
    }

    /// RFC 9449 §7.1 and §4.3: the request's one `DPoP` proof, for this request and token,
    /// signed by the key `jkt` names, not seen before.
    fn check_proof(
        &self,
        request: &RequestParts<'_>,
        token: &str,
        jkt: &str,
    ) -> Result<(), ProofError> {
        let proof = request::dpop_proof(request.headers).ok_or(ProofError::Missing)?;
        let url = self.request_url(request).ok_or(ProofError::Url)?;
        let config = &self.inner.config;
        let max_age = i64::try_from(config.dpop_max_age.as_secs()).unwrap_or(i64::MAX);
        let now = unix_now();
        let checked = self.inner.proofs.check(
            proof,
            &dpop::Expected {
                method: request.method.as_str(),
                url: &url,
                access_token: Some(token),
                now,
                max_age_secs: max_age,
            },
        )?;
        if checked.jkt != jkt {
            return Err(ProofError::KeyMismatch);
        }
        // Remembered until the proof could no longer pass the `iat` check, leeway included.
        let expires_at = checked.iat.saturating_add(max_age).saturating_add(60);
        if !self
            .inner
            .replays
            .first_use(checked.replay_key(&url), expires_at, now)
        {
            return Err(ProofError::Replayed);
        }
        Ok(())
    }

    /// The public URL the request was sent to, as a proof's `htu` must name it: the configured
    /// `public_url` plus the request's path, or (unconfigured) `http://{Host}` plus the path.
    fn request_url(&self, request: &RequestParts<'_>) -> Option<String> {
        let path = request.uri.path();
        let url = match &self.inner.config.public_url {
            Some(base) => format!("{}{}", base.trim_end_matches('/'), path),
            None => format!("{}{path}", request_origin(request)?),
        };
        dpop::normalize_url(&url)
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
        verify_with_key(
            token,
            checked.alg,
            &key,
            &ClaimRules {
                issuer: config.issuer_trimmed(),
                audience: &config.audience,
                leeway: config.leeway,
                now: unix_now(),
            },
        )
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
        self.refetch_for_unknown_kid(kid, Instant::now()).await;
        self.key_set().get(kid).ok_or(VerifyError::UnknownKey)
    }

    /// A token names a key we do not have: perhaps the issuer rotated. Refetch, unless a
    /// fetch began since the token came in (its result is as fresh as ours would be), or the
    /// unknown-`kid` limit holds it back, so that made-up `kid`s cannot hammer the issuer.
    async fn refetch_for_unknown_kid(&self, kid: &str, missed_at: Instant) {
        let mut state = self.inner.fetches.lock().await;
        if self.key_set().get(kid).is_some() {
            return; // fetched by someone else while we waited
        }
        if state
            .last_started
            .is_some_and(|started| started >= missed_at)
        {
            return; // a fetch that began after this token arrived did not find its key
        }
        let now = Instant::now();
        if !state.unknown_kid_gate.may_fetch(now, &self.inner.config) {
            self.inner
                .counters
                .unknown_kid_refetches_held_back
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.unknown_kid_gate.started(now);
        tracing::info!(
            kid,
            "token names an unknown key; refetching the issuer's keys"
        );
        if let Err(err) = self.fetch(&mut state, Cause::UnknownKid).await {
            tracing::warn!(error = %err, "could not refetch the issuer's keys");
        }
        let found = self.key_set().get(kid).is_some();
        state.unknown_kid_gate.finished(found);
    }

    /// Fetches the JWKS (discovering its URL first if needed) and swaps in the new keys.
    /// On any failure the previous keys stay. Returns the `max-age` the issuer gave.
    async fn fetch(
        &self,
        state: &mut FetchState,
        cause: Cause,
    ) -> Result<Option<Duration>, FetchError> {
        state.last_started = Some(Instant::now());
        let outcome = self.fetch_keys(state, cause).await;
        if outcome.is_err() {
            self.inner
                .counters
                .failed_fetches
                .fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    async fn fetch_keys(
        &self,
        state: &mut FetchState,
        cause: Cause,
    ) -> Result<Option<Duration>, FetchError> {
        let inner = &self.inner;
        let counters = &inner.counters;
        let jwks_url = match &state.jwks_url {
            Some(url) => url.clone(),
            None => {
                counters.metadata_fetches.fetch_add(1, Ordering::Relaxed);
                let url = fetch::discover_jwks_url(
                    &inner.client,
                    &inner.metadata_url,
                    inner.config.issuer_trimmed(),
                    inner.config.allow_insecure_jwks_url,
                )
                .await?;
                tracing::info!(jwks_url = %url, "discovered the issuer's JWKS URL");
                state.jwks_url = Some(url.clone());
                url
            }
        };
        counters.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        if cause == Cause::UnknownKid {
            counters
                .unknown_kid_refetches
                .fetch_add(1, Ordering::Relaxed);
        }
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
        let started = Instant::now();
        loop {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let verifier = TokenVerifier { inner };
            let wait = {
                let mut state = verifier.inner.fetches.lock().await;
                match verifier.fetch(&mut state, Cause::Schedule).await {
                    Ok(max_age) => {
                        failures = 0;
                        max_age
                            .unwrap_or(DEFAULT_MAX_AGE)
                            .clamp(MIN_REFRESH, MAX_REFRESH)
                    }
                    Err(err) => {
                        failures = failures.saturating_add(1);
                        let delay = retry_delay(failures);
                        if !verifier.is_ready() && started.elapsed() < STARTUP_GRACE {
                            // Services started together (`make run`, a pod): the issuer may
                            // simply not be up yet. Say so once, not as a warning.
                            if failures == 1 {
                                tracing::info!(
                                    error = %err,
                                    "waiting for the issuer's keys (it may still be starting)"
                                );
                            }
                        } else {
                            tracing::warn!(
                                error = %err,
                                retry_in_ms = delay.as_millis() as u64,
                                keys_kept = verifier.key_set().len(),
                                "could not fetch the issuer's keys"
                            );
                        }
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

/// After the header rules and the key lookup: the key's algorithm must be the header's, the
/// signature must check out with that key, and the claims must pass the rules.
pub(crate) fn verify_with_key(
    token: &str,
    header_alg: Algorithm,
    key: &VerifyingKey,
    rules: &ClaimRules<'_>,
) -> Result<VerifiedClaims, VerifyError> {
    if key.alg != header_alg {
        return Err(VerifyError::AlgorithmMismatch);
    }
    let (payload, _) = josekit::jws::deserialize_compact(token, key.verifier.as_ref())
        .map_err(|_| VerifyError::BadSignature)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&payload).map_err(|_| VerifyError::Malformed)?;
    rules.check(&claims)
}

pub(crate) fn decode_header(token: &str) -> Result<Map<String, Value>, VerifyError> {
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

/// `http://{host}` from the request's URI or `Host` header: the API's address when no
/// `public_url` is configured (development without a gateway). `None` without a host, or with
/// one that is not a bare `host[:port]`.
fn request_origin(request: &RequestParts<'_>) -> Option<String> {
    let host = match request.uri.authority() {
        Some(authority) => authority.clone(),
        None => request
            .headers
            .get(http::header::HOST)?
            .to_str()
            .ok()?
            .parse::<http::uri::Authority>()
            .ok()?,
    };
    if host.host().is_empty() || host.as_str().contains('@') {
        return None;
    }
    Some(format!("http://{host}"))
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
