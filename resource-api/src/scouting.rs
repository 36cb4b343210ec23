//! The scouting API, called on the caller's behalf: the caller's token is exchanged at the
//! issuer (RFC 8693) for one to the scouting API, which then sees the caller as `sub` and this
//! API as `act`. No web-framework types here; `api::scouting` answers over HTTP.

use std::time::Duration;

use serde_json::Value;
use token_verifier::exchange::{ExchangeError, ExchangerConfig, TokenExchanger};

use crate::config::ScoutingSettings;

/// Refers players to the scouting API.
#[derive(Clone, Debug)]
pub struct ScoutingClient {
    exchanger: TokenExchanger,
    http: reqwest::Client,
    players_url: url::Url,
    audience: String,
}

/// The scouting API's copy of a referred player.
#[derive(Debug)]
pub struct Referred {
    /// Its JSON, as the scouting API answered.
    pub player: Value,
    /// Where it is at the scouting API: an absolute URL (the scouting API's `Location`
    /// resolved against its URL).
    pub location: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReferralError {
    /// The issuer would not exchange the caller's token for the scouting API (`error` is the
    /// RFC 6749 code).
    #[error("the issuer refused the exchange: {0}")]
    Refused(String),
    /// The scouting API already has a player with this squad number.
    #[error("the scouting API already has this squad number")]
    Conflict,
    /// The issuer or the scouting API failed, or refused this API itself (its client, or the
    /// exchanged token): logged, answered as a bad gateway.
    #[error("{0}")]
    Upstream(String),
}

impl ScoutingClient {
    pub fn new(settings: &ScoutingSettings, default_token_url: String) -> Result<Self, String> {
        let timeout = Duration::from_secs(settings.timeout_secs);
        let exchanger = TokenExchanger::new(ExchangerConfig {
            token_url: settings.token_url.clone().unwrap_or(default_token_url),
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            timeout,
        })
        .map_err(|err| err.to_string())?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| err.to_string())?;
        let players_url = format!("{}/players", settings.url.trim_end_matches('/'));
        Ok(Self {
            exchanger,
            http,
            players_url: url::Url::parse(&players_url).map_err(|err| err.to_string())?,
            audience: settings.audience.clone(),
        })
    }

    /// Creates `player` (a `PlayerInput` JSON) at the scouting API on behalf of the subject of
    /// `caller_token`.
    pub async fn refer(
        &self,
        caller_token: &str,
        player: &Value,
    ) -> Result<Referred, ReferralError> {
        let token = self
            .exchanger
            .exchange(caller_token, &self.audience, None)
            .await
            .map_err(|err| match err {
                ExchangeError::Refused { error } => ReferralError::Refused(error),
                other => ReferralError::Upstream(other.to_string()),
            })?;
        if !token.token_type.eq_ignore_ascii_case("bearer") {
            return Err(ReferralError::Upstream(format!(
                "the exchange gave a {} token; this API's client must not be DPoP-bound",
                token.token_type
            )));
        }
        let response = self
            .http
            .post(self.players_url.clone())
            .bearer_auth(&token.access_token)
            .json(player)
            .send()
            .await
            .map_err(|err| {
                ReferralError::Upstream(format!("scouting API: {}", err.without_url()))
            })?;
        match response.status().as_u16() {
            201 => {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| self.players_url.join(value).ok())
                    .map(String::from);
                let player = response.json::<Value>().await.map_err(|_| {
                    ReferralError::Upstream("scouting API: an unreadable answer".into())
                })?;
                Ok(Referred { player, location })
            }
            409 => Err(ReferralError::Conflict),
            status => Err(ReferralError::Upstream(format!(
                "scouting API answered HTTP {status}"
            ))),
        }
    }
}
