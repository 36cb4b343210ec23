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
    /// Where callers find the scouting API's players: `{public_url}/players/{id}`.
    public_players_url: String,
    audience: String,
}

/// What the scouting API's create needs, and all the exchange asks for.
const SCOPE: &str = "players:write";

/// The scouting API's copy of a referred player.
#[derive(Debug)]
pub struct Referred {
    /// Its JSON, as the scouting API answered.
    pub player: Value,
    /// Where callers find it: `{public_url}/players/{id}`.
    pub location: String,
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
        let public = settings.public_url.as_deref().unwrap_or(&settings.url);
        Ok(Self {
            exchanger,
            http,
            players_url: url::Url::parse(&players_url).map_err(|err| err.to_string())?,
            public_players_url: format!("{}/players", public.trim_end_matches('/')),
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
            .exchange(caller_token, &self.audience, Some(SCOPE))
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
                let player = response.json::<Value>().await.map_err(|_| {
                    ReferralError::Upstream("scouting API: an unreadable answer".into())
                })?;
                // Its `Location` is for its own callers (and names an address behind the
                // gateway); ours names the copy under the public URL, by its id.
                let id = player
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| uuid::Uuid::parse_str(id).ok())
                    .ok_or_else(|| ReferralError::Upstream("scouting API: no player id".into()))?;
                let location = format!("{}/{id}", self.public_players_url);
                Ok(Referred { player, location })
            }
            409 => Err(ReferralError::Conflict),
            status => Err(ReferralError::Upstream(format!(
                "scouting API answered HTTP {status}"
            ))),
        }
    }
}
