//! Client authentication by a signed JWT (RFC 7521, RFC 7523 §2.2 and §3): `private_key_jwt`,
//! signed by one of the client's own keys, and workload identity federation, a token from a
//! trusted external issuer (a Kubernetes cluster's service-account issuer) about the one
//! subject the client is bound to. No secret is stored or sent.
//!
//! The rules: an asymmetric `alg` from the allow-list; `typ` absent, `JWT` or
//! `client-authentication+jwt`; `exp` required and not past (60 s leeway); `nbf`/`iat` not in
//! the future. `private_key_jwt`: `iss` = `sub` = the client id, `aud` naming this issuer or
//! its token endpoint, an age (`now - iat`) of at most `assertion_max_age_secs` (without `iat`:
//! an `exp` at most that far ahead), and a `jti` never accepted twice on any instance sharing
//! the database while the assertion is acceptable. The age, not the lifetime, is bounded:
//! common clients sign assertions valid for an hour (authlib's default) and send them at once;
//! the replay store keeps a `jti` only until `iat + assertion_max_age_secs` at most.
//! Federated: `iss` = the client's trusted issuer, `sub` = its subject, `aud` naming the
//! audience configured for that issuer. A federated
//! token is the workload's reusable identity (kubelet refreshes it), so its `jti` is not
//! single-use: its audience (only us) and lifetime bound it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use token_verifier::Algorithm;
use token_verifier::keys::{CompactJws, JwsError, PublicKeySet};
use token_verifier::remote::{RemoteKeys, RemoteKeysConfig};

use crate::domain::{Client, ClientAuthentication, ClientKeys};
use crate::stores::{ReplayStore, StoreError};

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Algorithms an assertion may be signed with (what the metadata advertises).
pub const ASSERTION_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::Es256,
    Algorithm::Es384,
    Algorithm::EdDsa,
    Algorithm::Ed25519,
    Algorithm::Ps256,
    Algorithm::Ps384,
    Algorithm::Ps512,
    Algorithm::Rs256,
    Algorithm::Rs384,
];

/// Largest assertion read, in bytes.
const MAX_ASSERTION_BYTES: usize = 16 * 1024;
const LEEWAY_SECS: i64 = 60;
const MAX_JTI_CHARS: usize = 256;

/// Why an assertion was refused. Logged at debug level; the client only hears
/// `invalid_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("the assertion is malformed")]
    Malformed,
    #[error("the assertion's typ is not accepted")]
    Type,
    #[error("the assertion's alg is not accepted")]
    Algorithm,
    #[error("no key of the client verifies the assertion")]
    Signature,
    #[error("the assertion's keys could not be fetched")]
    KeysUnavailable,
    #[error("the assertion's iss or sub does not name the client")]
    Subject,
    #[error("the assertion's aud does not name this server")]
    Audience,
    #[error("the assertion has expired, is too old, or is not valid yet")]
    Time,
    #[error("the assertion lacks a jti")]
    MissingJti,
    #[error("the assertion was already used")]
    Replayed,
    #[error("the client does not authenticate with an assertion")]
    WrongMethod,
    #[error("the client's federated issuer is not trusted")]
    UntrustedIssuer,
}

/// A trusted issuer of workload identities, as configured.
pub struct TrustedIssuer {
    pub issuer: String,
    /// The `aud` its tokens must name.
    pub audience: String,
    pub keys: KeySource,
}

/// Where a set of public keys comes from.
pub enum KeySource {
    Static(Arc<PublicKeySet>),
    Remote(RemoteKeys),
}

impl KeySource {
    async fn keys_for(&self, kid: Option<&str>) -> Result<Arc<PublicKeySet>, AssertionError> {
        match self {
            KeySource::Static(set) => Ok(Arc::clone(set)),
            KeySource::Remote(remote) => remote.keys_for(kid).await.map_err(|err| {
                tracing::warn!(error = %err, "client assertion keys unavailable");
                AssertionError::KeysUnavailable
            }),
        }
    }

    /// A set that did not verify a JWS without a `kid`: perhaps replaced at the source.
    async fn refetch(&self) -> Option<Arc<PublicKeySet>> {
        match self {
            KeySource::Static(_) => None,
            KeySource::Remote(remote) => remote.refetch_after_failure().await,
        }
    }
}

/// Checks assertions; remembers the keys of clients (parsed JWKS, fetched `jwks_uri`s).
pub struct AssertionVerifier {
    /// The issuer identifier and the token endpoint URL: what `aud` may name.
    audiences: [String; 2],
    max_age_secs: i64,
    replays: Arc<dyn ReplayStore>,
    trusted: HashMap<String, TrustedIssuer>,
    remote: RemoteKeysConfig,
    client_keys: Mutex<HashMap<ClientKeys, Arc<KeySource>>>,
}

/// Client key sources remembered before the memory is cleared.
const MAX_CLIENT_KEY_SOURCES: usize = 10_000;

impl AssertionVerifier {
    pub fn new(
        issuer: &str,
        max_age_secs: u32,
        replays: Arc<dyn ReplayStore>,
        trusted: Vec<TrustedIssuer>,
        remote: RemoteKeysConfig,
    ) -> Self {
        let issuer = issuer.trim_end_matches('/');
        Self {
            audiences: [issuer.to_owned(), format!("{issuer}/auth/token")],
            max_age_secs: i64::from(max_age_secs),
            replays,
            trusted: trusted
                .into_iter()
                .map(|t| (t.issuer.trim_end_matches('/').to_owned(), t))
                .collect(),
            remote,
            client_keys: Mutex::new(HashMap::new()),
        }
    }

    /// The client an assertion claims to be when the request names none: its `sub`, if `iss`
    /// is the same (a `private_key_jwt` assertion). Unverified: only for the lookup.
    pub fn claimed_client_id(assertion: &str) -> Option<String> {
        if assertion.len() > MAX_ASSERTION_BYTES {
            return None;
        }
        let claims = CompactJws::parse(assertion).ok()?.claims().ok()?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        match (text("iss"), text("sub")) {
            (Some(iss), Some(sub)) if iss == sub => Some(sub.to_owned()),
            _ => None,
        }
    }

    /// Whether `assertion` proves `client`, at `now` (seconds).
    pub async fn verify(
        &self,
        client: &Client,
        assertion: &str,
        now: i64,
    ) -> Result<(), VerifyAssertionError> {
        if assertion.len() > MAX_ASSERTION_BYTES {
            return Err(AssertionError::Malformed.into());
        }
        let jws = CompactJws::parse(assertion).map_err(|_| AssertionError::Malformed)?;
        match jws.header.get("typ") {
            None => {}
            Some(Value::String(typ))
                if typ.eq_ignore_ascii_case("JWT")
                    || typ.eq_ignore_ascii_case("client-authentication+jwt") => {}
            Some(_) => return Err(AssertionError::Type.into()),
        }
        let alg = jws.algorithm().map_err(|_| AssertionError::Algorithm)?;
        if !ASSERTION_ALGORITHMS.contains(&alg) {
            return Err(AssertionError::Algorithm.into());
        }
        let claims = jws.claims().map_err(|_| AssertionError::Malformed)?;
        let kid = jws.header.get("kid").and_then(Value::as_str);

        match &client.authentication {
            ClientAuthentication::PrivateKeyJwt(keys) => {
                let source = self.client_key_source(keys)?;
                check_signature(&jws, &source, kid).await?;
                let id = client.id.as_str();
                if text(&claims, "iss") != Some(id) || text(&claims, "sub") != Some(id) {
                    return Err(AssertionError::Subject.into());
                }
                if !names_any(&claims, &self.audiences) {
                    return Err(AssertionError::Audience.into());
                }
                let acceptable_until = self.check_times(&claims, now, true)?;
                let jti = text(&claims, "jti")
                    .filter(|j| !j.is_empty() && j.chars().count() <= MAX_JTI_CHARS)
                    .ok_or(AssertionError::MissingJti)?;
                let mut key = Sha256::new();
                key.update(b"client-assertion\0");
                key.update(id.as_bytes());
                key.update([0]);
                key.update(jti.as_bytes());
                let first = self
                    .replays
                    .first_use(&key.finalize().into(), acceptable_until + LEEWAY_SECS, now)
                    .await
                    .map_err(VerifyAssertionError::Store)?;
                if !first {
                    return Err(AssertionError::Replayed.into());
                }
                Ok(())
            }
            ClientAuthentication::Federated { issuer, subject } => {
                let trusted = self
                    .trusted
                    .get(issuer.trim_end_matches('/'))
                    .ok_or(AssertionError::UntrustedIssuer)?;
                check_signature(&jws, &trusted.keys, kid).await?;
                let iss = text(&claims, "iss").map(|i| i.trim_end_matches('/'));
                if iss != Some(trusted.issuer.trim_end_matches('/'))
                    || text(&claims, "sub") != Some(subject.as_str())
                {
                    return Err(AssertionError::Subject.into());
                }
                if !names_any(&claims, std::slice::from_ref(&trusted.audience)) {
                    return Err(AssertionError::Audience.into());
                }
                self.check_times(&claims, now, false)?;
                Ok(())
            }
            ClientAuthentication::Secret => Err(AssertionError::WrongMethod.into()),
        }
    }

    /// `exp` required and not past; `nbf` and `iat` not in the future; with `bounded`, an age
    /// (`now - iat`) of at most `max_age_secs`, or without `iat` an `exp` at most that far ahead.
    /// Returns the last second the assertion is acceptable: `exp`, or `iat + max_age_secs` when
    /// bounded and sooner.
    fn check_times(
        &self,
        claims: &Map<String, Value>,
        now: i64,
        bounded: bool,
    ) -> Result<i64, AssertionError> {
        let time = |name: &str| -> Result<Option<i64>, AssertionError> {
            match claims.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                    .map(Some)
                    .ok_or(AssertionError::Time),
                Some(_) => Err(AssertionError::Malformed),
            }
        };
        let exp = time("exp")?.ok_or(AssertionError::Time)?;
        if now >= exp.saturating_add(LEEWAY_SECS) {
            return Err(AssertionError::Time);
        }
        for name in ["nbf", "iat"] {
            if time(name)?.is_some_and(|t| t > now.saturating_add(LEEWAY_SECS)) {
                return Err(AssertionError::Time);
            }
        }
        if !bounded {
            return Ok(exp);
        }
        match time("iat")? {
            Some(iat) if now.saturating_sub(iat) > self.max_age_secs => Err(AssertionError::Time),
            Some(iat) => Ok(exp.min(iat.saturating_add(self.max_age_secs))),
            None if exp.saturating_sub(now) > self.max_age_secs => Err(AssertionError::Time),
            None => Ok(exp),
        }
    }

    fn client_key_source(&self, keys: &ClientKeys) -> Result<Arc<KeySource>, AssertionError> {
        let mut sources = self.client_keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(source) = sources.get(keys) {
            return Ok(Arc::clone(source));
        }
        let source = match keys {
            ClientKeys::Jwks(document) => KeySource::Static(Arc::new(
                PublicKeySet::parse(document.as_bytes()).map_err(|_| AssertionError::Signature)?,
            )),
            ClientKeys::JwksUri(uri) => KeySource::Remote(
                RemoteKeys::from_jwks_url(uri, self.remote.clone()).map_err(|err| {
                    tracing::warn!(error = %err, "a client's jwks_uri is not usable");
                    AssertionError::KeysUnavailable
                })?,
            ),
        };
        if sources.len() >= MAX_CLIENT_KEY_SOURCES {
            sources.clear();
        }
        let source = Arc::new(source);
        sources.insert(keys.clone(), Arc::clone(&source));
        Ok(source)
    }
}

/// An assertion refused, or the replay store unreachable.
#[derive(Debug, thiserror::Error)]
pub enum VerifyAssertionError {
    #[error(transparent)]
    Refused(#[from] AssertionError),
    #[error(transparent)]
    Store(StoreError),
}

async fn check_signature(
    jws: &CompactJws<'_>,
    source: &KeySource,
    kid: Option<&str>,
) -> Result<(), AssertionError> {
    let set = source.keys_for(kid).await?;
    match jws.verify_with(&set, &ASSERTION_ALGORITHMS) {
        Ok(()) => Ok(()),
        Err(JwsError::Algorithm) => Err(AssertionError::Algorithm),
        Err(JwsError::Malformed) => Err(AssertionError::Malformed),
        Err(_) if kid.is_none() => match source.refetch().await {
            Some(set) if jws.verify_with(&set, &ASSERTION_ALGORITHMS).is_ok() => Ok(()),
            _ => Err(AssertionError::Signature),
        },
        Err(_) => Err(AssertionError::Signature),
    }
}

fn text<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c str> {
    claims.get(name).and_then(Value::as_str)
}

/// `aud` (a string or an array of strings) names one of `accepted` (a trailing `/` aside).
fn names_any(claims: &Map<String, Value>, accepted: &[String]) -> bool {
    let matches = |aud: &str| {
        accepted
            .iter()
            .any(|a| a.trim_end_matches('/') == aud.trim_end_matches('/'))
    };
    match claims.get("aud") {
        Some(Value::String(aud)) => matches(aud),
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(matches),
        _ => false,
    }
}
