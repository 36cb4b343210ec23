//! Access tokens with any claims and any header, signed by the issuer's active key unless
//! told otherwise.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value};

use super::{IssuerState, SigningKey};

static NEXT_JTI: AtomicU64 = AtomicU64::new(1);

/// A token being made: starts as a valid RFC 9068 access token of the issuer, for its default
/// audience, with no scope; each method changes one thing; [`mint`](Self::mint) signs it.
///
/// [`dpop_bound`](Self::dpop_bound) binds the token to a client's DPoP key (RFC 9449:
/// `cnf: {"jkt": …}`).
#[must_use = "a token builder does nothing until `mint`"]
pub struct TokenBuilder<'a> {
    issuer: &'a IssuerState,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    key: Option<SigningKey>,
}

impl<'a> TokenBuilder<'a> {
    pub(crate) fn new(issuer: &'a IssuerState) -> Self {
        let now = unix_now();
        let jti = NEXT_JTI.fetch_add(1, Ordering::Relaxed);
        let mut claims = Map::new();
        claims.insert("iss".into(), issuer.url.clone().into());
        claims.insert("sub".into(), "test-client".into());
        claims.insert("aud".into(), issuer.audience.clone().into());
        claims.insert("client_id".into(), "test-client".into());
        claims.insert("iat".into(), now.into());
        claims.insert("nbf".into(), now.into());
        claims.insert("exp".into(), (now + 300).into());
        claims.insert("jti".into(), format!("test-jti-{jti}-{now}").into());
        let mut header = Map::new();
        header.insert("typ".into(), "at+jwt".into());
        Self {
            issuer,
            header,
            claims,
            key: None,
        }
    }

    /// The one audience the token is for (`aud`).
    pub fn audience(self, audience: &str) -> Self {
        self.claim("aud", audience)
    }

    /// Several audiences (`aud` as an array).
    pub fn audiences(self, audiences: &[&str]) -> Self {
        self.claim("aud", audiences.to_vec())
    }

    /// The space-separated `scope` claim, e.g. `"players:write players:read"`.
    pub fn scope(self, scope: &str) -> Self {
        self.claim("scope", scope)
    }

    /// `sub`: the user, or the client for client credentials (default `test-client`).
    pub fn subject(self, subject: &str) -> Self {
        self.claim("sub", subject)
    }

    /// `client_id` (default `test-client`).
    pub fn client_id(self, client_id: &str) -> Self {
        self.claim("client_id", client_id)
    }

    /// Expires `lifetime` after now (default 300 s).
    pub fn expires_in(self, lifetime: Duration) -> Self {
        let exp = unix_now().saturating_add(secs(lifetime));
        self.claim("exp", exp)
    }

    /// Issued two hours ago and expired an hour ago: past any sane leeway.
    pub fn expired(self) -> Self {
        let now = unix_now();
        self.claim("iat", now - 7200)
            .claim("nbf", now - 7200)
            .claim("exp", now - 3600)
    }

    /// Valid only from an hour from now (`nbf`).
    pub fn not_yet_valid(self) -> Self {
        self.claim("nbf", unix_now() + 3600)
    }

    /// Bound to `key` (`cnf.jkt`): accepted only as `DPoP` with a proof signed by it.
    pub fn dpop_bound(self, key: &super::DpopKey) -> Self {
        self.claim("cnf", serde_json::json!({"jkt": key.thumbprint()}))
    }

    /// Sets any claim (replacing the default, if any).
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Leaves a claim out, default or not.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets any header parameter; `alg` and `kid` set here win over the signing key's, and
    /// a JSON `null` leaves the parameter out.
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.into(), value.into());
        self
    }

    /// Leaves a header parameter out (`typ`, or the key's `alg` or `kid`).
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.insert(name.into(), Value::Null);
        self
    }

    /// Names another key in the header (`kid`) than the one that signs: a made-up `kid`.
    pub fn kid(self, kid: &str) -> Self {
        self.header("kid", kid)
    }

    /// Signs with `key` instead of the issuer's active key: a key the issuer never
    /// published makes a forged token; one it published but does not sign with yet makes a
    /// token from a rotation seen early.
    pub fn signed_by(mut self, key: &SigningKey) -> Self {
        self.key = Some(key.clone());
        self
    }

    /// The compact JWS.
    pub fn mint(self) -> String {
        let key = self.key.unwrap_or_else(|| self.issuer.active_key());
        let mut header = Map::new();
        header.insert("alg".into(), key.algorithm().name().into());
        header.insert("kid".into(), key.kid().into());
        for (name, value) in self.header {
            if value.is_null() {
                header.remove(&name);
            } else {
                header.insert(name, value);
            }
        }
        let payload = Value::Object(self.claims).to_string();
        key.sign_compact(&header, payload.as_bytes())
    }
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Whole seconds: josekit would write floats, which many verifiers refuse.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, secs)
}
