//! Calling another API on behalf of the caller (RFC 8693 token exchange): the API, holding the
//! caller's access token, asks the issuer's token endpoint for a token for the other API,
//! authenticated as its own client. The answer keeps the caller as `sub` and names this API
//! in `act`; its scope and lifetime are never more than the caller's token allowed.
//!
//! ```no_run
//! # async fn demo(caller_token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use token_verifier::exchange::{TokenExchanger, ExchangerConfig};
//!
//! let exchanger = TokenExchanger::new(ExchangerConfig {
//!     token_url: "https://auth.example/auth/token".into(),
//!     client_id: "players-api".into(),
//!     client_secret: "…".into(),
//!     timeout: std::time::Duration::from_secs(5),
//! })?;
//! let token = exchanger.exchange(caller_token, "scouting-api", None).await?;
//! // Call the scouting API with `Authorization: Bearer {token.access_token}`.
//! # Ok(()) }
//! ```

use std::time::Duration;

use serde::Deserialize;

/// RFC 8693 §2.1.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: what is sent and what is asked for.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Where to exchange and as whom.
#[derive(Clone)]
pub struct ExchangerConfig {
    /// The issuer's token endpoint.
    pub token_url: String,
    /// This API's own client, allowed to exchange into the target (`exchange_to`).
    pub client_id: String,
    pub client_secret: String,
    /// Time limit of one exchange.
    pub timeout: Duration,
}

impl std::fmt::Debug for ExchangerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangerConfig")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Exchanges callers' tokens for tokens to other APIs.
#[derive(Clone, Debug)]
pub struct TokenExchanger {
    config: ExchangerConfig,
    http: reqwest::Client,
}

/// The token for the other API. Never log `access_token`.
#[derive(Clone, Deserialize)]
pub struct ExchangedToken {
    pub access_token: String,
    /// `Bearer` (or `DPoP` for a client whose tokens are bound).
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub scope: Option<String>,
}

impl std::fmt::Debug for ExchangedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangedToken")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why no token came back.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The issuer refused the caller's token for this exchange (400 `invalid_request`,
    /// `invalid_grant` or `invalid_scope`: revoked, expired, or without what the target
    /// needs): the caller may not be acted for there.
    #[error("the issuer refused the exchange: {error}")]
    Refused { error: String },
    /// The issuer refused this API's own client or what it asked for (401 `invalid_client`,
    /// `unauthorized_client`, `invalid_target`, …): a configuration problem on this side.
    #[error("the issuer refused this API's client: {error}")]
    ClientRefused { error: String },
    /// No answer, or not one of RFC 6749's.
    #[error("the token endpoint failed: {0}")]
    Unavailable(String),
}

/// RFC 6749 §5.2's error body, as far as it matters here.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

impl TokenExchanger {
    /// Fails only if the HTTP client cannot be built.
    pub fn new(config: ExchangerConfig) -> Result<Self, ExchangeError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| ExchangeError::Unavailable(err.to_string()))?;
        Ok(Self { config, http })
    }

    /// A token for `audience` (an API id or resource URI) on behalf of the subject of
    /// `subject_token`, with `scope` if given (else all the exchange allows).
    pub async fn exchange(
        &self,
        subject_token: &str,
        audience: &str,
        scope: Option<&str>,
    ) -> Result<ExchangedToken, ExchangeError> {
        let mut form = vec![
            ("grant_type", GRANT_TYPE),
            ("subject_token", subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("audience", audience),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let response = self
            .http
            .post(&self.config.token_url)
            .basic_auth(
                form_urlencode(&self.config.client_id),
                Some(form_urlencode(&self.config.client_secret)),
            )
            .form(&form)
            .send()
            .await
            .map_err(|err| ExchangeError::Unavailable(err.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json::<ExchangedToken>()
                .await
                .map_err(|_| ExchangeError::Unavailable("an unreadable token answer".into()));
        }
        let error = response
            .json::<ErrorBody>()
            .await
            .map(|body| body.error)
            .map_err(|_| ExchangeError::Unavailable(format!("HTTP {}", status.as_u16())))?;
        match (status.as_u16(), error.as_str()) {
            (400, "invalid_request" | "invalid_grant" | "invalid_scope") => {
                Err(ExchangeError::Refused { error })
            }
            (400 | 401, _) => Err(ExchangeError::ClientRefused { error }),
            (code, _) => Err(ExchangeError::Unavailable(format!("HTTP {code} {error}"))),
        }
    }
}

/// RFC 6749 §2.3.1: the client id and secret are form-urlencoded before HTTP Basic.
fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
