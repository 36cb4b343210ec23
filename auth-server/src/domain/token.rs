//! RFC 9068 access-token claims and the choice of the audience they are issued for.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::api::Api;
use super::client::{Audience, Client, ClientId, GrantType};
use super::scope::ScopeSet;

/// The claims of a JWT access token (RFC 9068 §2.2). Times are whole seconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// RFC 9449 §6.1: the thumbprint of the client's DPoP key, for a DPoP-bound token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// RFC 8693 §4.1: who acts for `sub` (a token made by a token exchange), the actors before
    /// it nested inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The client's static claims (a tenant id, say), none of them a registered name.
    #[serde(flatten)]
    pub extra: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The `act` claim: the acting party, and the one that acted before it (a chain of exchanges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// How many actors the chain names (this one included).
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |before| before.depth())
    }
}

/// The `cnf` claim of a DPoP-bound token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

impl AccessTokenClaims {
    /// Claims for a token issued now (`now`, seconds) that lives `ttl_secs`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        issuer: &str,
        subject: &str,
        audience: &Audience,
        client_id: &ClientId,
        scopes: &ScopeSet,
        now: i64,
        ttl_secs: i64,
        jti: String,
    ) -> Self {
        Self {
            iss: issuer.to_owned(),
            sub: subject.to_owned(),
            aud: audience.as_str().to_owned(),
            client_id: client_id.as_str().to_owned(),
            scope: scopes.to_string(),
            iat: now,
            nbf: now,
            exp: now + ttl_secs,
            jti,
            cnf: None,
            act: None,
            extra: Default::default(),
        }
    }
}

/// Where the client asked the token to be usable: RFC 8707 `resource` or the common `audience`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequestTarget {
    pub resource: Option<String>,
    pub audience: Option<String>,
}

/// The API a token is for: one of the client's audiences, with the policy of the registered
/// API of that name (none for an audience registered before APIs were).
#[derive(Debug, Clone)]
pub struct Target {
    pub audience: Audience,
    pub api: Option<Arc<Api>>,
    /// For an audience without declared scopes: the scopes the client's other APIs declare,
    /// which are theirs, not this one's.
    others: ScopeSet,
}

impl Target {
    /// What of `scopes` a token for this API may carry: those the API defines; for an
    /// audience without declared scopes, all but those the client's other APIs declare.
    pub fn scopes_within(&self, scopes: &ScopeSet) -> ScopeSet {
        match self.api.as_ref().and_then(|api| api.scopes.as_ref()) {
            Some(defined) => scopes.intersection(defined),
            None => scopes.difference(&self.others),
        }
    }

    /// Whether a token for this API may come from `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.api.as_ref().is_none_or(|api| api.allows(grant))
    }

    /// The API's own limit on its tokens' lifetime.
    pub fn token_ttl_secs(&self) -> Option<u32> {
        self.api.as_ref().and_then(|api| api.token_ttl_secs)
    }
}

/// Picks the token's audience among the client's: the one requested (by id, or by a registered
/// API's resource URI), or the client's first. `None` when the request names an API the client
/// may not have, when `resource` and `audience` name two different ones, or when the client
/// has none.
pub fn choose_audience(client: &Client, target: &TokenRequestTarget) -> Option<Target> {
    choose(client, &client.audiences, target)
}

/// Picks a token exchange's target among the APIs the client may exchange to, the same way.
pub fn choose_exchange_target(client: &Client, target: &TokenRequestTarget) -> Option<Target> {
    choose(client, &client.exchange_to, target)
}

fn choose(client: &Client, among: &[Audience], target: &TokenRequestTarget) -> Option<Target> {
    let resolve = |name: &str| -> Option<Audience> {
        if let Some(direct) = among.iter().find(|a| a.as_str() == name) {
            return Some(direct.clone());
        }
        let api = client.apis.iter().find(|api| api.is_named(name))?;
        among.contains(&api.id).then(|| api.id.clone())
    };
    let audience = match (&target.resource, &target.audience) {
        (Some(resource), Some(audience)) => {
            let chosen = resolve(resource)?;
            (resolve(audience)? == chosen).then_some(chosen)?
        }
        (Some(name), None) | (None, Some(name)) => resolve(name)?,
        (None, None) => among.first()?.clone(),
    };
    let api = client.apis.iter().find(|api| api.id == audience).cloned();
    let others = match api.as_ref().and_then(|api| api.scopes.as_ref()) {
        Some(_) => ScopeSet::default(),
        None => client
            .apis
            .iter()
            .filter_map(|api| api.scopes.as_ref())
            .fold(ScopeSet::default(), |all, scopes| all.union(scopes)),
    };
    Some(Target {
        audience,
        api,
        others,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn client(audiences: &[&str]) -> Client {
        Client {
            id: ClientId::parse("c").unwrap(),
            secret_hash: String::new(),
            authentication: Default::default(),
            dpop_bound: false,
            scopes: ScopeSet::parse("a b").unwrap(),
            audiences: audiences
                .iter()
                .map(|a| Audience::parse(a).unwrap())
                .collect(),
            grant_types: BTreeSet::from([GrantType::ClientCredentials]),
            exchange_to: Vec::new(),
            token_ttl_secs: None,
            claims: Default::default(),
            apis: Vec::new(),
        }
    }

    fn target(resource: Option<&str>, audience: Option<&str>) -> TokenRequestTarget {
        TokenRequestTarget {
            resource: resource.map(str::to_owned),
            audience: audience.map(str::to_owned),
        }
    }

    #[test]
    fn without_a_request_the_first_audience_is_chosen() {
        let c = client(&["players-api", "scouting-api"]);
        assert_eq!(
            choose_audience(&c, &target(None, None))
                .unwrap()
                .audience
                .as_str(),
            "players-api"
        );
    }

    #[test]
    fn resource_or_audience_selects_one_of_the_clients_audiences() {
        let c = client(&["players-api", "scouting-api"]);
        let by_resource = choose_audience(&c, &target(Some("scouting-api"), None));
        let by_audience = choose_audience(&c, &target(None, Some("scouting-api")));
        assert_eq!(by_resource.unwrap().audience.as_str(), "scouting-api");
        assert_eq!(by_audience.unwrap().audience.as_str(), "scouting-api");
    }

    #[test]
    fn an_audience_the_client_lacks_or_two_different_ones_select_nothing() {
        let c = client(&["players-api", "scouting-api"]);
        assert!(choose_audience(&c, &target(Some("billing-api"), None)).is_none());
        assert!(choose_audience(&c, &target(Some("players-api"), Some("scouting-api"))).is_none());
        assert!(choose_audience(&client(&[]), &target(None, None)).is_none());
    }

    fn api(id: &str, resource: &str, scopes: Option<&str>) -> Arc<Api> {
        Arc::new(Api {
            id: Audience::parse(id).unwrap(),
            resource: Some(resource.into()),
            scopes: scopes.map(|s| ScopeSet::parse(s).unwrap()),
            token_ttl_secs: Some(60),
            grant_types: None,
        })
    }

    #[test]
    fn a_registered_api_is_chosen_by_its_uri_and_bounds_the_scopes() {
        let mut c = client(&["players-api", "scouting-api"]);
        c.apis = vec![
            api("players-api", "https://players.example", None),
            api("scouting-api", "https://scouting.example", Some("b")),
        ];
        let scouting = choose_audience(&c, &target(Some("https://scouting.example/"), None));
        let scouting = scouting.unwrap();
        assert_eq!(scouting.audience.as_str(), "scouting-api");
        assert_eq!(scouting.token_ttl_secs(), Some(60));
        assert_eq!(scouting.scopes_within(&c.scopes).to_string(), "b");
        // Undeclared: every scope of the client's but those its other APIs declare.
        let players = choose_audience(&c, &target(None, None)).unwrap();
        assert_eq!(players.scopes_within(&c.scopes).to_string(), "a");
        // The same API by URI and by id agrees; two APIs do not.
        let both = target(Some("https://players.example"), Some("players-api"));
        assert!(choose_audience(&c, &both).is_some());
        let two = target(Some("https://players.example"), Some("scouting-api"));
        assert!(choose_audience(&c, &two).is_none());
        // A registered API the client is not granted is not chosen through its URI either.
        c.audiences.truncate(1);
        assert!(choose_audience(&c, &target(Some("https://scouting.example"), None)).is_none());
    }

    #[test]
    fn claims_carry_whole_second_times_and_the_space_separated_scope() {
        let c = client(&["players-api"]);
        let claims = AccessTokenClaims::new(
            "http://localhost:9000",
            "c",
            &c.audiences[0],
            &c.id,
            &c.scopes,
            1_700_000_000,
            3600,
            "jti-1".into(),
        );
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["exp"], serde_json::json!(1_700_003_600));
        assert_eq!(json["nbf"], json["iat"]);
        assert_eq!(json["scope"], "a b");
        assert_eq!(json["aud"], "players-api");
        assert_eq!(json["client_id"], "c");
    }
}
