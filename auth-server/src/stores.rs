//! What the use cases need from storage, as small traits: the grants, the key ring and the
//! administrative operations depend on these, never on a database. `storage` implements them
//! over sea-orm.

use std::sync::Arc;

use async_trait::async_trait;

use crate::crypto::{KeyMaterial, SigningAlgorithm};
use crate::domain::{Api, Audience, Client, ClientId, NewClient, User, Username};

/// Why a store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The id or name is taken.
    #[error("already exists")]
    Conflict,
    /// The database cannot be reached now (connection refused, pool exhausted, time-out):
    /// worth answering 503 and retrying later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A stored row does not hold what it must.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Anything else the database said.
    #[error("database error: {0}")]
    Failed(String),
}

/// Registered clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn find(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError>;
    /// Every client, by id.
    async fn list(&self) -> Result<Vec<Client>, StoreError>;
    /// Every scope some client may be granted.
    async fn scopes_in_use(&self) -> Result<Vec<String>, StoreError>;
    /// `Conflict` if the id is taken.
    async fn insert(&self, client: &NewClient, now: i64) -> Result<(), StoreError>;
    /// Creates the client or makes the stored one match (clients managed by configuration).
    async fn upsert(&self, client: &NewClient, now: i64) -> Result<(), StoreError>;
    /// False if there was no such client.
    async fn remove(&self, id: &ClientId) -> Result<bool, StoreError>;
    /// Writes what a client is granted (scopes, APIs, grants, exchange targets) and nothing
    /// else, so that a secret rotated meanwhile stays rotated. False if there was no such client.
    async fn set_grants(&self, client: &NewClient, now: i64) -> Result<bool, StoreError>;
    /// False if there was no such client.
    async fn set_secret_hash(
        &self,
        id: &ClientId,
        secret_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Replaces the secret hash only if it is still `old` (a rehash must never undo a rotation
    /// made meanwhile); false if it was not. A store that cannot compare and set says false.
    async fn replace_secret_hash(
        &self,
        _id: &ClientId,
        _old: &str,
        _new: &str,
        _now: i64,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// Registered APIs. Every write is logged as a change, so that every instance reloads the
/// clients it holds (they carry their APIs).
#[async_trait]
pub trait ApiStore: Send + Sync {
    async fn find(&self, id: &Audience) -> Result<Option<Api>, StoreError>;
    /// Every API, by id.
    async fn list(&self) -> Result<Vec<Api>, StoreError>;
    /// `Conflict` if the id or the resource URI is taken.
    async fn insert(&self, api: &Api, now: i64) -> Result<(), StoreError>;
    /// Makes the stored API match (an API managed by the configuration, or an update);
    /// `Conflict` if the resource URI is another API's.
    async fn upsert(&self, api: &Api, now: i64) -> Result<(), StoreError>;
    /// False if there was no such API.
    async fn remove(&self, id: &Audience) -> Result<bool, StoreError>;
}

/// Single-use identifiers (client-assertion `jti`s, DPoP proof `jti`s), remembered until they
/// expire so that a replay is refused on every instance sharing the store.
#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records `key` (a SHA-256 of what must be single-use, scoped by its issuer) as used until
    /// `expires_at` (Unix seconds). True on its first use; false if it was recorded before and
    /// has not expired.
    async fn first_use(
        &self,
        key: &[u8; 32],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// Users of the password grant.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn find(&self, username: &Username) -> Result<Option<User>, StoreError>;
    async fn list(&self) -> Result<Vec<User>, StoreError>;
    /// `Conflict` if the username is taken.
    async fn insert(&self, user: &User, now: i64) -> Result<(), StoreError>;
    /// Creates the user or makes the stored one match (users managed by configuration).
    async fn upsert(&self, user: &User, now: i64) -> Result<(), StoreError>;
    /// False if there was no such user.
    async fn set_active(
        &self,
        username: &Username,
        active: bool,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// False if there was no such user.
    async fn remove(&self, username: &Username) -> Result<bool, StoreError>;
    /// Replaces the password hash only if it is still `old` (see
    /// `ClientStore::replace_secret_hash`).
    async fn replace_password_hash(
        &self,
        _username: &Username,
        _old: &str,
        _new: &str,
        _now: i64,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// A stored refresh token (never its value: `token_hash` is its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub chain_id: String,
    pub client_id: String,
    pub username: String,
    pub scope: String,
    pub audience: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub chain_expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The access token issued together with this refresh token, revoked with the chain.
    pub access_jti: Option<String>,
    pub access_expires_at: Option<i64>,
}

/// The outcome of exchanging a refresh token for a new one.
#[derive(Debug, PartialEq, Eq)]
pub enum Exchange {
    /// The old token is now used and the new one stored.
    Rotated,
    /// The old token was already used or revoked: the chain is now revoked.
    Reused,
}

/// Refresh tokens and revoked access tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn find_refresh(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshTokenRecord>, StoreError>;
    async fn insert_refresh(&self, record: &RefreshTokenRecord) -> Result<(), StoreError>;
    /// Marks `old_hash` used and stores `new`, atomically; if `old_hash` was used or revoked
    /// meanwhile (reuse, or a concurrent exchange), revokes the whole chain instead.
    async fn exchange_refresh(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: i64,
    ) -> Result<Exchange, StoreError>;
    /// Revokes every refresh token of the chain and the access tokens issued with them;
    /// returns how many refresh tokens were live.
    async fn revoke_chain(&self, chain_id: &str, now: i64) -> Result<u64, StoreError>;
    /// The same for every chain of a user.
    async fn revoke_user(&self, username: &str, now: i64) -> Result<u64, StoreError>;
    /// The same for every chain of a client.
    async fn revoke_client(&self, client_id: &str, now: i64) -> Result<u64, StoreError>;
    /// Remembers a revoked access token until it expires.
    async fn revoke_access(&self, jti: &str, expires_at: i64) -> Result<(), StoreError>;
    async fn is_access_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Deletes what can no longer matter; returns how many rows went.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError>;
}

/// Where a signing key is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Pending,
    Active,
    Retired,
    /// Compromised (`keys revoke`): never published or trusted again.
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            KeyState::Pending,
            KeyState::Active,
            KeyState::Retired,
            KeyState::Revoked,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

/// A stored signing key.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: SigningAlgorithm,
    pub state: KeyState,
    pub sealed_private_key: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub activate_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    /// The row's authentication tag; `None` for a row stored before rows were authenticated.
    pub mac: Option<String>,
}

/// The signing-key table, with the lifecycle transitions that must be atomic across
/// instances.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every stored key, oldest first.
    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Stores the very first key as active; `Conflict` if another instance stored one first.
    async fn insert_first_active(&self, key: &KeyMaterial, now: i64) -> Result<(), StoreError>;
    /// Adds a key that signs from `activate_at` on; `Conflict` if a rotation is already
    /// pending.
    async fn insert_pending_once(
        &self,
        key: &KeyMaterial,
        now: i64,
        activate_at: i64,
    ) -> Result<(), StoreError>;
    /// Makes `key` the active key at once, retiring the current one.
    async fn insert_active(&self, key: &KeyMaterial, now: i64) -> Result<(), StoreError>;
    /// Activates the earliest due pending key, retiring the active one; the new kid, or `None`.
    async fn promote_due(&self, now: i64) -> Result<Option<String>, StoreError>;
    /// Stores the authentication tag of a row that had none.
    async fn set_mac(&self, kid: &str, mac: &str) -> Result<(), StoreError>;
    /// Marks a key revoked (whatever its state); false if there is no such key.
    async fn revoke(&self, kid: &str, now: i64) -> Result<bool, StoreError>;
    /// Removes keys retired before `cutoff`.
    async fn delete_retired_before(&self, cutoff: i64) -> Result<u64, StoreError>;
}

/// Clients changed after a point of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedClients {
    /// The ids changed (added, updated, removed), oldest change first.
    pub client_ids: Vec<String>,
    /// The sequence number of the last change read.
    pub through: i64,
    /// False when changes may be missing (purged, or more than were read): forget everything.
    pub complete: bool,
}

/// The log of changes every write to the clients table adds in the same transaction, so that
/// every instance learns what changed.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// The newest change's sequence number (0 when there is none): one cheap round trip, which
    /// doubles as the database's health probe (it does not wait for a closed breaker).
    async fn latest(&self) -> Result<i64, StoreError>;
    /// The clients changed after `seq`, at most `limit` changes.
    async fn clients_changed_since(
        &self,
        seq: i64,
        limit: u64,
    ) -> Result<ChangedClients, StoreError>;
    /// Deletes changes older than `before` (seconds since the epoch).
    async fn purge_before(&self, before: i64) -> Result<u64, StoreError>;
}
