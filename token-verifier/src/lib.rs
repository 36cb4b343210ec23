//! Verifies RFC 9068 JWT access tokens against an issuer's published keys (JWKS), and
//! plugs that check into poem / poem-openapi APIs as an OAuth2 bearer security scheme.
//!
//! ```no_run
//! # async fn demo() -> Result<(), token_verifier::ConfigError> {
//! use token_verifier::{TokenVerifier, VerifierConfig};
//!
//! let config = VerifierConfig::new("http://localhost:9000", "players-api");
//! let verifier = TokenVerifier::start(config)?;
//! // Give it to poem with `.data(verifier)` and take `OAuth2Bearer<YourScopes>` in operations.
//! # Ok(()) }
//! ```

mod algorithm;
mod claims;
mod config;
mod error;
mod fetch;
mod header;
mod jwks;
pub mod openapi;
mod verifier;

pub use algorithm::Algorithm;
pub use claims::VerifiedClaims;
pub use config::{ConfigError, VerifierConfig};
pub use error::VerifyError;
pub use openapi::{BearerRejection, OAuth2Bearer, RejectionReason};
pub use verifier::TokenVerifier;
