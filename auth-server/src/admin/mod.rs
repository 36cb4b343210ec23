//! The administrative operations on clients and users, with their rules: what the command line
//! does, and what the server applies at start-up from `[[clients]]` and `[[users]]`. Entries
//! declared in the configuration are managed there (re-applied at every start), so these
//! operations refuse to change them.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::clock::now_secs;
use crate::config::{
    BootstrapApi, BootstrapClient, BootstrapUser, ClientCredentialSource, SecretSource,
};
use crate::crypto::{self, SecretVerifier};
use crate::domain::{
    Audience, Client, ClientAuthentication, ClientId, ClientKeys, GrantType, NewClient, ScopeSet,
    StaticClaims, User, Username,
};
use crate::stores::{ApiStore, ClientStore, StoreError, TokenStore, UserStore};
use token_verifier::keys::PublicKeySet;

mod apis;

pub use apis::{ApiSpec, ApiUpdate, Grant};

/// Shortest password a user may be given.
pub const MIN_PASSWORD_CHARS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A value given for `field` is not valid.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{what} {name} already exists")]
    Exists { what: &'static str, name: String },
    #[error("no {what} {name}")]
    NotFound { what: &'static str, name: String },
    #[error(
        "{what} {name} is managed by the configuration file ({what}s[{index}]); change it there \
         and restart, or remove it from the file to manage it here"
    )]
    Managed {
        what: &'static str,
        name: String,
        index: usize,
    },
    #[error("no password given: type it at the prompt, or give it as the first line of stdin")]
    NoPassword,
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("hashing failed")]
    Hash,
}

fn invalid(field: impl Into<String>, reason: impl ToString) -> AdminError {
    AdminError::Invalid {
        field: field.into(),
        reason: reason.to_string(),
    }
}

/// What a client is allowed, as typed by an operator (command line or configuration).
#[derive(Debug, Clone, Default)]
pub struct ClientSpec {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub grant_types: Vec<String>,
    /// A secret (generated or configured), or a secretless method.
    pub authentication: ClientAuthentication,
    pub dpop_bound: bool,
    /// Token exchange targets (RFC 8693).
    pub exchange_to: Vec<String>,
    /// Its access tokens' longest lifetime, in seconds.
    pub token_ttl_secs: Option<u32>,
    /// Static claims of its access tokens.
    pub claims: std::collections::BTreeMap<String, serde_json::Value>,
}

impl ClientSpec {
    /// Validates every field; `prefix` names where it came from (`clients[2].` or empty).
    fn parse(&self, prefix: &str, secret_hash: String) -> Result<NewClient, AdminError> {
        let field = |name: &str| format!("{prefix}{name}");
        let id = ClientId::parse(&self.client_id).map_err(|e| invalid(field("client_id"), e))?;
        let scopes =
            ScopeSet::parse(&self.scopes.join(" ")).map_err(|e| invalid(field("scopes"), e))?;
        let audiences = self
            .audiences
            .iter()
            .map(|a| Audience::parse(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(field("audiences"), e))?;
        if audiences.is_empty() {
            return Err(invalid(
                field("audiences"),
                "at least one audience is required",
            ));
        }
        let grant_types = self
            .grant_types
            .iter()
            .map(|g| g.parse::<GrantType>())
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(|_| {
                invalid(
                    field("grant_types"),
                    "each must be client_credentials, password, refresh_token or \
                     urn:ietf:params:oauth:grant-type:token-exchange",
                )
            })?;
        let exchange_to = self
            .exchange_to
            .iter()
            .map(|a| Audience::parse(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(field("exchange_to"), e))?;
        // Either both or neither: a grant with nowhere to exchange to, or targets without the
        // grant, is a configuration mistake that would fail only at the first request.
        if grant_types.contains(&GrantType::TokenExchange) == exchange_to.is_empty() {
            return Err(invalid(
                field("exchange_to"),
                "token exchange needs both the grant type \
                 urn:ietf:params:oauth:grant-type:token-exchange and at least one exchange_to API",
            ));
        }
        // An exchanging client is an API's own identity: its one audience is the API whose
        // callers' tokens it may exchange, and it may not exchange into that same API.
        if !exchange_to.is_empty() {
            if audiences.len() != 1 {
                return Err(invalid(
                    field("audiences"),
                    "a client that exchanges tokens has exactly one audience: the API it is",
                ));
            }
            if exchange_to.contains(&audiences[0]) {
                return Err(invalid(
                    field("exchange_to"),
                    "may not name the client's own API (its audience)",
                ));
            }
        }
        if let Some(ttl) = self.token_ttl_secs
            && !(1..=86_400).contains(&ttl)
        {
            return Err(invalid(
                field("token_ttl_secs"),
                "must be 1 to 86400 seconds",
            ));
        }
        let claims =
            StaticClaims::parse(self.claims.clone()).map_err(|e| invalid(field("claims"), e))?;
        let authentication = check_authentication(&self.authentication, &field)?;
        Ok(NewClient {
            id,
            secret_hash,
            scopes,
            audiences,
            grant_types,
            authentication,
            dpop_bound: self.dpop_bound,
            exchange_to,
            token_ttl_secs: self.token_ttl_secs,
            claims,
        })
    }
}

/// Checks a secretless method: a JWKS of public keys only, an `https` (or loopback) URL, a
/// federated identity with both parts.
fn check_authentication(
    authentication: &ClientAuthentication,
    field: &dyn Fn(&str) -> String,
) -> Result<ClientAuthentication, AdminError> {
    match authentication {
        ClientAuthentication::Secret => {}
        ClientAuthentication::PrivateKeyJwt(ClientKeys::Jwks(jwks)) => {
            let set =
                PublicKeySet::parse(jwks.as_bytes()).map_err(|e| invalid(field("jwks"), e))?;
            if set.is_empty() {
                return Err(invalid(
                    field("jwks"),
                    "holds no usable public signing key (RSA, EC P-256/P-384 or Ed25519)",
                ));
            }
        }
        ClientAuthentication::PrivateKeyJwt(ClientKeys::JwksUri(uri)) => {
            token_verifier::remote::RemoteKeys::from_jwks_url(uri, Default::default())
                .map_err(|e| invalid(field("jwks_uri"), e))?;
        }
        ClientAuthentication::Federated { issuer, subject } => {
            if url::Url::parse(issuer).is_err() {
                return Err(invalid(field("federated_issuer"), "must be a URL"));
            }
            if subject.is_empty() || subject.len() > 512 {
                return Err(invalid(
                    field("federated_subject"),
                    "must be 1 to 512 characters",
                ));
            }
        }
    }
    Ok(authentication.clone())
}

/// The clients and users the configuration manages, by name: the CLI may not change them.
#[derive(Debug, Clone, Default)]
pub struct Managed {
    pub apis: Vec<String>,
    pub clients: Vec<String>,
    pub users: Vec<String>,
}

impl Managed {
    pub fn of(apis: &[BootstrapApi], clients: &[BootstrapClient], users: &[BootstrapUser]) -> Self {
        Self {
            apis: apis.iter().map(|a| a.id.clone()).collect(),
            clients: clients.iter().map(|c| c.client_id.clone()).collect(),
            users: users.iter().map(|u| u.username.clone()).collect(),
        }
    }

    fn check(list: &[String], what: &'static str, name: &str) -> Result<(), AdminError> {
        match list.iter().position(|n| n == name) {
            Some(index) => Err(AdminError::Managed {
                what,
                name: name.to_owned(),
                index,
            }),
            None => Ok(()),
        }
    }
}

pub struct Admin {
    apis: Arc<dyn ApiStore>,
    clients: Arc<dyn ClientStore>,
    users: Arc<dyn UserStore>,
    tokens: Arc<dyn TokenStore>,
    managed: Managed,
}

impl Admin {
    pub fn new(
        apis: Arc<dyn ApiStore>,
        clients: Arc<dyn ClientStore>,
        users: Arc<dyn UserStore>,
        tokens: Arc<dyn TokenStore>,
        managed: Managed,
    ) -> Self {
        Self {
            apis,
            clients,
            users,
            tokens,
            managed,
        }
    }

    /// Registers a client; one that authenticates with a secret gets a generated one, returned
    /// here (shown once).
    pub async fn add_client(&self, spec: &ClientSpec) -> Result<Option<String>, AdminError> {
        let (secret, hash) = match spec.authentication {
            ClientAuthentication::Secret => {
                let secret = crypto::generate_secret();
                let hash = crypto::hash_secret(&secret).map_err(|_| AdminError::Hash)?;
                (Some(secret), hash)
            }
            _ => (None, String::new()),
        };
        let client = spec.parse("", hash)?;
        self.check_scopes_defined(&client, "").await?;
        match self.clients.insert(&client, now_secs()).await {
            Ok(()) => Ok(secret),
            Err(StoreError::Conflict) => Err(AdminError::Exists {
                what: "client",
                name: client.id.to_string(),
            }),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>, AdminError> {
        Ok(self.clients.list().await?)
    }

    /// Revokes a client's refresh tokens and deletes it, so that a client registered later under
    /// the same id cannot use them. Revoking first: if that fails, the client is still there
    /// and the command can be run again.
    pub async fn remove_client(&self, client_id: &str) -> Result<(), AdminError> {
        let id = ClientId::parse(client_id).map_err(|e| invalid("client_id", e))?;
        Managed::check(&self.managed.clients, "client", id.as_str())?;
        if self.clients.find(&id).await?.is_none() {
            return Err(AdminError::NotFound {
                what: "client",
                name: id.to_string(),
            });
        }
        self.tokens.revoke_client(id.as_str(), now_secs()).await?;
        if !self.clients.remove(&id).await? {
            return Err(AdminError::NotFound {
                what: "client",
                name: id.to_string(),
            });
        }
        Ok(())
    }

    /// Gives a client a new generated secret; returns it (shown once).
    pub async fn rotate_client_secret(&self, client_id: &str) -> Result<String, AdminError> {
        let id = ClientId::parse(client_id).map_err(|e| invalid("client_id", e))?;
        Managed::check(&self.managed.clients, "client", id.as_str())?;
        if let Some(client) = self.clients.find(&id).await?
            && client.authentication != ClientAuthentication::Secret
        {
            return Err(invalid(
                "client_id",
                format!(
                    "client {id} authenticates with {} and has no secret",
                    client.authentication.method_name()
                ),
            ));
        }
        let secret = crypto::generate_secret();
        let hash = crypto::hash_secret(&secret).map_err(|_| AdminError::Hash)?;
        if !self.clients.set_secret_hash(&id, &hash, now_secs()).await? {
            return Err(AdminError::NotFound {
                what: "client",
                name: id.to_string(),
            });
        }
        Ok(secret)
    }

    pub async fn add_user(
        &self,
        username: &str,
        scopes: &[String],
        password: &str,
    ) -> Result<(), AdminError> {
        let username = Username::parse(username).map_err(|e| invalid("username", e))?;
        let scopes = ScopeSet::parse(&scopes.join(" ")).map_err(|e| invalid("scopes", e))?;
        if password.is_empty() {
            return Err(AdminError::NoPassword);
        }
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AdminError::PasswordTooShort);
        }
        let user = User {
            username,
            password_hash: crypto::hash_secret(password).map_err(|_| AdminError::Hash)?,
            scopes,
            active: true,
        };
        match self.users.insert(&user, now_secs()).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => Err(AdminError::Exists {
                what: "user",
                name: user.username.to_string(),
            }),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn list_users(&self) -> Result<Vec<User>, AdminError> {
        Ok(self.users.list().await?)
    }

    /// Enables or disables a user; disabling revokes every refresh token of theirs (and the
    /// access tokens issued with them). Returns how many refresh tokens were revoked.
    pub async fn set_user_active(&self, username: &str, active: bool) -> Result<u64, AdminError> {
        let name = Username::parse(username).map_err(|e| invalid("username", e))?;
        Managed::check(&self.managed.users, "user", name.as_str())?;
        let now = now_secs();
        if !self.users.set_active(&name, active, now).await? {
            return Err(AdminError::NotFound {
                what: "user",
                name: name.to_string(),
            });
        }
        if active {
            return Ok(0);
        }
        Ok(self.tokens.revoke_user(name.as_str(), now).await?)
    }

    /// Deletes a user and revokes their tokens.
    pub async fn remove_user(&self, username: &str) -> Result<(), AdminError> {
        let name = Username::parse(username).map_err(|e| invalid("username", e))?;
        Managed::check(&self.managed.users, "user", name.as_str())?;
        self.tokens.revoke_user(name.as_str(), now_secs()).await?;
        if !self.users.remove(&name).await? {
            return Err(AdminError::NotFound {
                what: "user",
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Makes the stored clients match `[[clients]]`. A plain-text secret keeps its stored hash
    /// when that still matches, so restarts do not rehash.
    pub async fn apply_clients(
        &self,
        entries: &[BootstrapClient],
        secrets: &SecretVerifier,
    ) -> Result<(), AdminError> {
        for (i, entry) in entries.iter().enumerate() {
            let prefix = format!("clients[{i}].");
            let id = ClientId::parse(&entry.client_id)
                .map_err(|e| invalid(format!("{prefix}client_id"), e))?;
            let credentials = entry
                .credentials(i)
                .map_err(|e| invalid(format!("{prefix}client_secret"), e))?;
            let (authentication, hash) = match credentials {
                ClientCredentialSource::Secret(secret) => {
                    let hash = self
                        .stored_hash_for(secret, &prefix, "client_secret", secrets, async || {
                            Ok(self.clients.find(&id).await?.map(|c| c.secret_hash.clone()))
                        })
                        .await?;
                    (ClientAuthentication::Secret, hash)
                }
                ClientCredentialSource::Jwks(jwks) => (
                    ClientAuthentication::PrivateKeyJwt(ClientKeys::Jwks(jwks)),
                    String::new(),
                ),
                ClientCredentialSource::JwksUri(uri) => (
                    ClientAuthentication::PrivateKeyJwt(ClientKeys::JwksUri(uri)),
                    String::new(),
                ),
                ClientCredentialSource::Federated { issuer, subject } => (
                    ClientAuthentication::Federated { issuer, subject },
                    String::new(),
                ),
            };
            let spec = ClientSpec {
                client_id: entry.client_id.clone(),
                scopes: entry.scopes.clone(),
                audiences: entry.audiences.clone(),
                grant_types: entry.grant_types.clone(),
                authentication,
                dpop_bound: entry.dpop_bound,
                exchange_to: entry.exchange_to.clone(),
                token_ttl_secs: entry.token_ttl_secs,
                claims: entry.claims.clone(),
            };
            let client = spec.parse(&prefix, hash)?;
            self.check_scopes_defined(&client, &prefix).await?;
            self.clients.upsert(&client, now_secs()).await?;
            tracing::info!(client_id = %client.id, "bootstrap client ready");
        }
        Ok(())
    }

    /// Makes the stored users match `[[users]]`.
    pub async fn apply_users(
        &self,
        entries: &[BootstrapUser],
        secrets: &SecretVerifier,
    ) -> Result<(), AdminError> {
        for (i, entry) in entries.iter().enumerate() {
            let prefix = format!("users[{i}].");
            let username = Username::parse(&entry.username)
                .map_err(|e| invalid(format!("{prefix}username"), e))?;
            let scopes = ScopeSet::parse(&entry.scopes.join(" "))
                .map_err(|e| invalid(format!("{prefix}scopes"), e))?;
            let password = entry
                .password(i)
                .map_err(|e| invalid(format!("{prefix}password"), e))?;
            let password_hash = self
                .stored_hash_for(password, &prefix, "password", secrets, async || {
                    Ok(self.users.find(&username).await?.map(|u| u.password_hash))
                })
                .await?;
            let previous = self.users.find(&username).await?;
            let user = User {
                username,
                password_hash,
                scopes,
                active: entry.active,
            };
            let now = now_secs();
            self.users.upsert(&user, now).await?;
            // A user disabled, or given a new password, in the configuration loses every
            // session started before.
            if let Some(previous) = previous
                && ((previous.active && !user.active)
                    || previous.password_hash != user.password_hash)
            {
                let revoked = self.tokens.revoke_user(user.username.as_str(), now).await?;
                tracing::info!(username = %user.username, revoked, "bootstrap user changed; refresh tokens revoked");
            }
            tracing::info!(username = %user.username, active = user.active, "bootstrap user ready");
        }
        Ok(())
    }

    /// The hash to store for a configured secret: a given hash as is; a plain secret's stored
    /// hash when it still matches, else a new hash.
    async fn stored_hash_for(
        &self,
        source: SecretSource,
        prefix: &str,
        field: &str,
        secrets: &SecretVerifier,
        stored: impl AsyncFnOnce() -> Result<Option<String>, AdminError>,
    ) -> Result<String, AdminError> {
        match source {
            SecretSource::Hash(hash) if crypto::is_argon2id_hash(&hash) => Ok(hash),
            SecretSource::Hash(_) => Err(invalid(
                format!("{prefix}{field}_hash"),
                "must be an argon2id PHC string",
            )),
            SecretSource::Inline(secret) | SecretSource::File(secret) => {
                if let Some(hash) = stored().await?
                    && secrets.verify(Some(&hash), &secret).await.unwrap_or(false)
                {
                    return Ok(hash);
                }
                crypto::hash_secret(&secret).map_err(|_| AdminError::Hash)
            }
        }
    }
}
