//! Verifies RFC 9068 JWT access tokens against an issuer's published keys (JWKS), and answers
//! refusals as RFC 6750 §3 says, for poem / poem-openapi and for axum / tower APIs.
//!
//! The core has no web framework in it: [`TokenVerifier`] fetches and caches the keys and
//! checks a token's header and claims; [`TokenVerifier::authenticate`] takes a framework-free
//! view of a request ([`RequestParts`]) and returns the caller's [`VerifiedClaims`] or a
//! [`BearerRejection`] (status, error code, description, `WWW-Authenticate` challenge).
//! The adapters are cargo features:
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `poem` | on | `openapi`: the `OAuth2Bearer<S>` poem-openapi security scheme, `authenticate`, `with_token_url`, `ResponseError` for [`BearerRejection`] |
//! | `axum` | off | `axum`: a tower layer (`BearerLayer`), extractors (`Bearer`, `Scoped<S>`), `IntoResponse` for [`BearerRejection`]; no poem in the build |
//! | `test-issuer` | off | `test_issuer`: an in-process issuer for tests (discovery, JWKS, tokens with any claims, key rotation) |
//!
//! ```no_run
//! # async fn demo() -> Result<(), token_verifier::ConfigError> {
//! use token_verifier::{TokenVerifier, VerifierConfig};
//!
//! let config = VerifierConfig::new("http://localhost:9000", "players-api");
//! let verifier = TokenVerifier::start(config)?;
//! // poem: `.data(verifier)` and `OAuth2Bearer<YourScopes>` in operations.
//! // axum: `.with_state(verifier)` and `Scoped<YourScope>` in handlers.
//! # Ok(()) }
//! ```
//!
//! # Unknown key ids: rotation and floods
//!
//! A token whose `kid` is not among the cached keys may mean the issuer has just rotated
//! (`auth-server keys rotate --now`), or that someone is sending made-up `kid`s to make every
//! API hammer the issuer. The verifier refetches the JWKS for such a token under these rules:
//!
//! - **The first unknown `kid` after a quiet spell refetches at once.** The start-up fetch and
//!   the scheduled refreshes do not count: an emergency rotation costs no refusals, only the
//!   wait for one fetch by the requests that name the new key (they share that one fetch).
//! - **No two unknown-`kid` refetches start less than
//!   [`unknown_kid_min_interval`](VerifierConfig::unknown_kid_min_interval) apart** (default
//!   1 s). Tokens that arrive while the limit holds are refused with `invalid_token` ("token
//!   signing key is unknown") without waiting.
//! - **Refetches that find nothing new back off.** After each one that did not find the `kid`
//!   it was made for, the wait doubles (1 s, 2 s, 4 s, …) up to
//!   [`unknown_kid_cooldown`](VerifierConfig::unknown_kid_cooldown) (default 5 s). A refetch that
//!   finds its `kid`, or two cooldowns without any unknown-`kid` refetch, start over at the
//!   minimum interval.
//! - Requests that named the key before a fetch began use that fetch's result instead of
//!   asking again.
//!
//! With the defaults, a flood of made-up `kid`s costs the issuer one JWKS fetch at once, then
//! fetches at 1 s, 3 s, 7 s, 12 s, 17 s, …: one per 5 s per verifier instance for as long as
//! it lasts. An emergency rotation costs nothing when no unknown `kid` was refetched in the
//! second before it; at worst (a flood under way) the new key is picked up within one
//! cooldown. A cooldown of zero lifts the limit (for tests).
//!
//! # DPoP-bound tokens (RFC 9449)
//!
//! A token with `cnf.jkt` is bound to its client's key. It is accepted only as
//! `Authorization: DPoP <token>` with exactly one `DPoP` header: a proof signed by that key,
//! `typ: dpop+jwt`, an asymmetric `alg`, `htm` = the request's method, `htu` =
//! [`public_url`](VerifierConfig::public_url) + the request's path (query left out), `ath` =
//! the token's SHA-256, `iat` within [`dpop_max_age`](VerifierConfig::dpop_max_age), and a
//! `jti` this process has not seen for that URL. Refusals are 401 with a `DPoP` challenge
//! (`error="invalid_dpop_proof"` or `"invalid_token"`, and the accepted `algs`); a bound token
//! sent as `Bearer` is refused, so a stolen token is useless without its key.
//! [`require_dpop`](VerifierConfig::require_dpop) refuses unbound tokens too.
//!
//! Proofs are remembered per process: behind several replicas a captured proof could be
//! replayed once on each other replica within `dpop_max_age`, for the same method, URL and
//! token, by someone who already holds that token and proof. Keep `dpop_max_age` short where
//! that matters. Resource-server nonces (RFC 9449 §9) are not issued.
//!
//! # Transport
//!
//! Keys are fetched over `https`, or plain `http` only from loopback hosts (`localhost`,
//! `127.0.0.0/8`, `[::1]`) unless
//! [`allow_insecure_jwks_url`](VerifierConfig::allow_insecure_jwks_url) is set: whoever can
//! rewrite the JWKS in transit can mint tokens. This holds for the issuer (whose metadata is
//! fetched when no `jwks_url` is configured), the configured `jwks_url`, and the `jwks_uri`
//! the metadata names. Redirects are followed only within the origin first asked (same
//! scheme, host and port; at most 5).

mod algorithm;
mod claims;
mod config;
pub mod dpop;
mod error;
pub mod exchange;
mod fetch;
mod header;
mod jwks;
pub mod keys;
mod refetch;
mod rejection;
pub mod remote;
mod request;
pub mod resource_metadata;
mod verifier;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "poem")]
pub mod openapi;
#[cfg(feature = "test-issuer")]
pub mod test_issuer;

pub use algorithm::Algorithm;
pub use claims::VerifiedClaims;
pub use config::{ConfigError, VerifierConfig, is_loopback};
pub use error::VerifyError;
#[cfg(feature = "poem")]
pub use openapi::OAuth2Bearer;
pub use rejection::{BearerRejection, RejectionReason};
pub use request::{RequestParts, Scheme};
pub use resource_metadata::ProtectedResourceMetadata;
pub use verifier::{TokenVerifier, VerifierStats};
