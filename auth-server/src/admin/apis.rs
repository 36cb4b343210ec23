//! Registered APIs and what clients are granted of them: `auth-server apis …`, `auth-server
//! clients grant …` and `[[apis]]`.

use std::collections::BTreeSet;

use super::{Admin, AdminError, ClientSpec, Managed, invalid};
use crate::clock::now_secs;
use crate::config::BootstrapApi;
use crate::domain::{
    Api, Audience, Client, ClientId, GrantType, NewClient, ScopeSet, normalize_resource,
};
use crate::stores::StoreError;

/// An API as typed by an operator (command line or configuration).
#[derive(Debug, Clone, Default)]
pub struct ApiSpec {
    pub id: String,
    pub resource: Option<String>,
    /// `None`: undeclared (only an upgraded API is; see `m20261207_000011_apis`).
    pub scopes: Option<Vec<String>>,
    pub token_ttl_secs: Option<u32>,
    /// `None`: any grant.
    pub grant_types: Option<Vec<String>>,
}

impl From<&BootstrapApi> for ApiSpec {
    fn from(api: &BootstrapApi) -> Self {
        Self {
            id: api.id.clone(),
            resource: api.resource.clone(),
            scopes: Some(api.scopes.clone()),
            token_ttl_secs: api.token_ttl_secs,
            grant_types: api.grant_types.clone(),
        }
    }
}

/// What `apis update` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ApiUpdate {
    /// `Some(None)` removes the resource URI.
    pub resource: Option<Option<String>>,
    /// Replaces the scopes.
    pub scopes: Option<Vec<String>>,
    /// `Some(None)` removes the API's own limit.
    pub token_ttl_secs: Option<Option<u32>>,
    /// `Some(None)`: any grant.
    pub grant_types: Option<Option<Vec<String>>>,
}

/// What `clients grant` adds to a client.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// An API the client may get tokens for, with these of its scopes.
    pub api: Option<String>,
    pub scopes: Vec<String>,
    /// APIs it may exchange its callers' tokens into (RFC 8693).
    pub exchange_to: Vec<String>,
}

impl ApiSpec {
    fn parse(&self, prefix: &str) -> Result<Api, AdminError> {
        let field = |name: &str| format!("{prefix}{name}");
        let id = Audience::parse(&self.id).map_err(|e| invalid(field("id"), e))?;
        let resource = self
            .resource
            .as_deref()
            .map(normalize_resource)
            .transpose()
            .map_err(|e| invalid(field("resource"), e))?;
        let scopes = self
            .scopes
            .as_ref()
            .map(|scopes| ScopeSet::parse(&scopes.join(" ")))
            .transpose()
            .map_err(|e| invalid(field("scopes"), e))?;
        if let Some(ttl) = self.token_ttl_secs
            && !(1..=86_400).contains(&ttl)
        {
            return Err(invalid(
                field("token_ttl_secs"),
                "must be 1 to 86400 seconds",
            ));
        }
        let grant_types = self
            .grant_types
            .as_ref()
            .map(|grants| {
                grants
                    .iter()
                    .map(|g| g.parse::<GrantType>())
                    .collect::<Result<BTreeSet<_>, _>>()
            })
            .transpose()
            .map_err(|_| {
                invalid(
                    field("grant_types"),
                    "each must be client_credentials, password, refresh_token or token-exchange",
                )
            })?;
        if grant_types.as_ref().is_some_and(BTreeSet::is_empty) {
            return Err(invalid(
                field("grant_types"),
                "at least one grant (leave it unset for any)",
            ));
        }
        Ok(Api {
            id,
            resource,
            scopes,
            token_ttl_secs: self.token_ttl_secs,
            grant_types,
        })
    }

    fn of(api: &Api) -> Self {
        Self {
            id: api.id.as_str().to_owned(),
            resource: api.resource.clone(),
            scopes: api
                .scopes
                .as_ref()
                .map(|set| set.iter().map(|s| s.as_str().to_owned()).collect()),
            token_ttl_secs: api.token_ttl_secs,
            grant_types: api
                .grant_types
                .as_ref()
                .map(|grants| grants.iter().map(|g| g.as_str().to_owned()).collect()),
        }
    }
}

impl ClientSpec {
    /// The spec a stored client was made from (its secret hash is kept apart).
    fn of(client: &Client) -> Self {
        let names = |list: &[Audience]| list.iter().map(|a| a.as_str().to_owned()).collect();
        Self {
            client_id: client.id.to_string(),
            scopes: client
                .scopes
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            audiences: names(&client.audiences),
            grant_types: client
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            authentication: client.authentication.clone(),
            dpop_bound: client.dpop_bound,
            exchange_to: names(&client.exchange_to),
            token_ttl_secs: client.token_ttl_secs,
            claims: client.claims.as_map().clone(),
        }
    }
}

impl Admin {
    pub async fn list_apis(&self) -> Result<Vec<Api>, AdminError> {
        Ok(self.apis.list().await?)
    }

    /// Registers an API.
    pub async fn add_api(&self, spec: &ApiSpec) -> Result<Api, AdminError> {
        let api = spec.parse("")?;
        if self.apis.find(&api.id).await?.is_some() {
            return Err(AdminError::Exists {
                what: "api",
                name: api.id.as_str().to_owned(),
            });
        }
        self.check_resource_free(&api, "resource").await?;
        match self.apis.insert(&api, now_secs()).await {
            Ok(()) => Ok(api),
            // Registered meanwhile by someone else.
            Err(StoreError::Conflict) => Err(AdminError::Exists {
                what: "api",
                name: api.id.as_str().to_owned(),
            }),
            Err(err) => Err(err.into()),
        }
    }

    /// Changes what `update` names; the clients granted the API keep their grants, within the
    /// API's new scopes.
    pub async fn update_api(&self, id: &str, update: &ApiUpdate) -> Result<Api, AdminError> {
        let id = Audience::parse(id).map_err(|e| invalid("id", e))?;
        Managed::check(&self.managed.apis, "api", id.as_str())?;
        let stored = self
            .apis
            .find(&id)
            .await?
            .ok_or_else(|| AdminError::NotFound {
                what: "api",
                name: id.as_str().to_owned(),
            })?;
        let mut spec = ApiSpec::of(&stored);
        if let Some(resource) = &update.resource {
            spec.resource = resource.clone();
        }
        if let Some(scopes) = &update.scopes {
            spec.scopes = Some(scopes.clone());
        }
        if let Some(ttl) = update.token_ttl_secs {
            spec.token_ttl_secs = ttl;
        }
        if let Some(grants) = &update.grant_types {
            spec.grant_types = grants.clone();
        }
        let api = spec.parse("")?;
        self.check_resource_free(&api, "resource").await?;
        self.apis.upsert(&api, now_secs()).await?;
        // Scopes it no longer defines leave its clients (unless another of their APIs defines
        // them): no audience of theirs may carry them on.
        if let (Some(before), Some(after)) = (&stored.scopes, &api.scopes) {
            let dropped = before.difference(after);
            if !dropped.is_empty() {
                self.drop_scopes(&api.id, &dropped).await?;
            }
        }
        Ok(api)
    }

    async fn drop_scopes(&self, api: &Audience, dropped: &ScopeSet) -> Result<(), AdminError> {
        for client in self.clients.list().await? {
            if !client.audiences.contains(api) && !client.exchange_to.contains(api) {
                continue;
            }
            let elsewhere = |scope: &crate::domain::Scope| {
                client.apis.iter().any(|other| {
                    other.id != *api && other.scopes.as_ref().is_some_and(|s| s.contains(scope))
                })
            };
            let gone: Vec<_> = client
                .scopes
                .iter()
                .filter(|scope| dropped.contains(scope) && !elsewhere(scope))
                .collect();
            if gone.is_empty() {
                continue;
            }
            if self.managed.clients.iter().any(|m| m == client.id.as_str()) {
                // The configuration re-applies them; the start refuses a scope none of the
                // client's APIs declares.
                tracing::warn!(
                    client_id = %client.id,
                    api = api.as_str(),
                    "a client of the configuration holds scopes this API no longer declares: \
                     remove them from its [[clients]] entry"
                );
                continue;
            }
            let mut spec = ClientSpec::of(&client);
            spec.scopes
                .retain(|s| !gone.iter().any(|g| g.as_str() == s));
            let updated = spec.parse("", client.secret_hash.clone())?;
            self.set_grants(&updated).await?;
        }
        Ok(())
    }

    /// Deletes an API no client names any more.
    pub async fn remove_api(&self, id: &str) -> Result<(), AdminError> {
        let id = Audience::parse(id).map_err(|e| invalid("id", e))?;
        Managed::check(&self.managed.apis, "api", id.as_str())?;
        let users: Vec<String> = self
            .clients
            .list()
            .await?
            .into_iter()
            .filter(|c| c.audiences.contains(&id) || c.exchange_to.contains(&id))
            .map(|c| c.id.to_string())
            .collect();
        if !users.is_empty() {
            return Err(invalid(
                "id",
                format!(
                    "clients still name API {}: {}; take it back first \
                     (auth-server clients ungrant CLIENT --api/--exchange-to {0})",
                    id.as_str(),
                    users.join(", ")
                ),
            ));
        }
        if !self.apis.remove(&id).await? {
            return Err(AdminError::NotFound {
                what: "api",
                name: id.as_str().to_owned(),
            });
        }
        Ok(())
    }

    /// Grants a client an API (with some of its scopes) and exchange targets, keeping what it
    /// had. The APIs must be registered and the scopes the API's own.
    pub async fn grant(&self, client_id: &str, grant: &Grant) -> Result<(), AdminError> {
        if grant.api.is_none() && !grant.scopes.is_empty() {
            return Err(invalid("scope", "scopes are granted with an API (--api)"));
        }
        let client = self.client_to_change(client_id, grant).await?;
        let mut spec = ClientSpec::of(&client);
        if let Some(name) = &grant.api {
            let api = self.registered(name, "api").await?;
            let Some(defined) = &api.scopes else {
                return Err(invalid(
                    "api",
                    format!(
                        "API {0} has not declared its scopes yet (it was registered by the \
                         upgrade); declare them first: auth-server apis update {0} --scope …",
                        api.id.as_str()
                    ),
                ));
            };
            let scopes =
                ScopeSet::parse(&grant.scopes.join(" ")).map_err(|e| invalid("scope", e))?;
            let foreign: Vec<&str> = scopes
                .iter()
                .filter(|s| !defined.contains(s))
                .map(|s| s.as_str())
                .collect();
            if !foreign.is_empty() {
                return Err(invalid(
                    "scope",
                    format!(
                        "{} not defined by API {} (its scopes: {defined})",
                        foreign.join(", "),
                        api.id.as_str(),
                    ),
                ));
            }
            if !spec.audiences.iter().any(|a| a == api.id.as_str()) {
                spec.audiences.push(api.id.as_str().to_owned());
            }
            for scope in scopes.iter() {
                if !spec.scopes.iter().any(|s| s == scope.as_str()) {
                    spec.scopes.push(scope.as_str().to_owned());
                }
            }
        }
        for name in &grant.exchange_to {
            let api = self.registered(name, "exchange_to").await?;
            if !spec.exchange_to.iter().any(|a| a == api.id.as_str()) {
                spec.exchange_to.push(api.id.as_str().to_owned());
            }
        }
        if !spec.exchange_to.is_empty()
            && !spec
                .grant_types
                .iter()
                .any(|g| g.parse() == Ok(GrantType::TokenExchange))
        {
            spec.grant_types
                .push(GrantType::TokenExchange.as_str().to_owned());
        }
        let updated = spec.parse("", client.secret_hash.clone())?;
        self.check_scopes_defined(&updated, "").await?;
        self.set_grants(&updated).await?;
        Ok(())
    }

    /// Takes back an API (with the scopes only it defined among the client's APIs) or exchange
    /// targets; the client keeps at least one API.
    pub async fn ungrant(&self, client_id: &str, grant: &Grant) -> Result<(), AdminError> {
        let client = self.client_to_change(client_id, grant).await?;
        let id = &client.id;
        let mut spec = ClientSpec::of(&client);
        let held = |list: &[String], name: &str, field: &str| {
            if list.iter().any(|a| a == name) {
                Ok(())
            } else {
                Err(invalid(field, format!("client {id} is not granted {name}")))
            }
        };
        for name in &grant.exchange_to {
            held(&spec.exchange_to, name, "exchange_to")?;
            spec.exchange_to.retain(|a| a != name);
        }
        if spec.exchange_to.is_empty() {
            spec.grant_types
                .retain(|g| g.parse() != Ok(GrantType::TokenExchange));
        }
        if let Some(name) = &grant.api {
            held(&spec.audiences, name, "api")?;
            spec.audiences.retain(|a| a != name);
            if spec.audiences.is_empty() {
                return Err(invalid(
                    "api",
                    format!("{name} is client {id}'s only API; remove the client instead"),
                ));
            }
        }
        // The scopes the taken APIs declare go too, unless an API the client keeps declares
        // them (one with undeclared scopes would carry them on: they go all the same).
        let taken: Vec<&Api> = client
            .apis
            .iter()
            .map(AsRef::as_ref)
            .filter(|api| {
                grant.api.as_deref() == Some(api.id.as_str())
                    || grant.exchange_to.iter().any(|a| a == api.id.as_str())
            })
            .collect();
        let kept: Vec<&Api> = client
            .apis
            .iter()
            .map(AsRef::as_ref)
            .filter(|api| {
                spec.audiences.iter().any(|a| a == api.id.as_str())
                    || spec.exchange_to.iter().any(|a| a == api.id.as_str())
            })
            .collect();
        let declares = |api: &Api, scope: &str| {
            api.scopes
                .as_ref()
                .is_some_and(|s| s.iter().any(|d| d.as_str() == scope))
        };
        spec.scopes.retain(|scope| {
            !taken.iter().any(|api| declares(api, scope))
                || kept.iter().any(|api| declares(api, scope))
        });
        let updated = spec.parse("", client.secret_hash.clone())?;
        self.set_grants(&updated).await?;
        Ok(())
    }

    /// Makes the stored APIs match `[[apis]]`.
    pub async fn apply_apis(&self, entries: &[BootstrapApi]) -> Result<(), AdminError> {
        for (i, entry) in entries.iter().enumerate() {
            let prefix = format!("apis[{i}].");
            let api = ApiSpec::from(entry).parse(&prefix)?;
            self.check_resource_free(&api, &format!("{prefix}resource"))
                .await?;
            let stored = self.apis.find(&api.id).await?;
            self.apis.upsert(&api, now_secs()).await?;
            if let Some(before) = stored.and_then(|stored| stored.scopes) {
                let dropped = api
                    .scopes
                    .as_ref()
                    .map_or_else(ScopeSet::default, |after| before.difference(after));
                if !dropped.is_empty() {
                    self.drop_scopes(&api.id, &dropped).await?;
                }
            }
            tracing::info!(api = api.id.as_str(), "bootstrap api ready");
        }
        for api in self.apis.list().await? {
            if api.scopes.is_none() {
                tracing::warn!(
                    api = api.id.as_str(),
                    "this API's scopes are undeclared (registered by the upgrade from a client's \
                     audience): its tokens carry every scope of the client asking; declare them \
                     with `auth-server apis update {} --scope …` or in [[apis]]",
                    api.id.as_str()
                );
            }
        }
        Ok(())
    }

    /// Refuses a client scope that none of its registered APIs defines: no token would carry
    /// it. (A client naming an unregistered audience, or an API whose scopes are undeclared,
    /// gets its scopes there as before APIs were registered.)
    pub(super) async fn check_scopes_defined(
        &self,
        client: &NewClient,
        prefix: &str,
    ) -> Result<(), AdminError> {
        let mut defined = ScopeSet::default();
        for name in client.audiences.iter().chain(&client.exchange_to) {
            match self.apis.find(name).await?.and_then(|api| api.scopes) {
                Some(scopes) => defined = defined.union(&scopes),
                None => return Ok(()),
            }
        }
        let undefined: Vec<&str> = client
            .scopes
            .iter()
            .filter(|s| !defined.contains(s))
            .map(|s| s.as_str())
            .collect();
        if undefined.is_empty() {
            return Ok(());
        }
        Err(invalid(
            format!("{prefix}scopes"),
            format!(
                "{} defined by none of the client's APIs; add it to an API's scopes \
                 (auth-server apis update … --scope, or [[apis]]) first",
                undefined.join(", ")
            ),
        ))
    }

    /// Writes a client's new grants (not its secret: a rotation meanwhile stays).
    async fn set_grants(&self, client: &NewClient) -> Result<(), AdminError> {
        if self.clients.set_grants(client, now_secs()).await? {
            Ok(())
        } else {
            Err(AdminError::NotFound {
                what: "client",
                name: client.id.to_string(),
            })
        }
    }

    /// The client a grant or ungrant changes: one the CLI manages, and a change that names
    /// something.
    async fn client_to_change(
        &self,
        client_id: &str,
        grant: &Grant,
    ) -> Result<std::sync::Arc<Client>, AdminError> {
        let id = ClientId::parse(client_id).map_err(|e| invalid("client_id", e))?;
        Managed::check(&self.managed.clients, "client", id.as_str())?;
        if grant.api.is_none() && grant.exchange_to.is_empty() {
            return Err(invalid("api", "name an API (--api) or an exchange target"));
        }
        self.clients
            .find(&id)
            .await?
            .ok_or_else(|| AdminError::NotFound {
                what: "client",
                name: id.to_string(),
            })
    }

    async fn registered(&self, name: &str, field: &str) -> Result<Api, AdminError> {
        let id = Audience::parse(name).map_err(|e| invalid(field, e))?;
        self.apis
            .find(&id)
            .await?
            .ok_or_else(|| AdminError::NotFound {
                what: "api",
                name: name.to_owned(),
            })
    }

    /// A resource URI names one API, and no API's id is another's resource URI (`resource`
    /// and `audience` name APIs by either).
    async fn check_resource_free(&self, api: &Api, field: &str) -> Result<(), AdminError> {
        for other in self.apis.list().await? {
            if other.id == api.id {
                continue;
            }
            if let Some(resource) = &api.resource
                && (other.resource.as_ref() == Some(resource) || other.id.as_str() == resource)
            {
                return Err(invalid(
                    field,
                    format!("{resource} already names API {}", other.id.as_str()),
                ));
            }
            if other.resource.as_deref() == Some(api.id.as_str()) {
                return Err(invalid(
                    field,
                    format!(
                        "the id {} is API {}'s resource URI",
                        api.id.as_str(),
                        other.id.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }
}
