//! The key ring: the key lifecycle of `shared/DESIGN.md` (pending → active → retired → removed)
//! over the database every instance shares, and an in-memory snapshot for the hot path (the
//! active key's signer, built once, and the JWKS document, serialized once).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::crypto::{
    KeyEncryptionKey, KeyError, KeyMaterial, PublicKey, SigningAlgorithm, TokenSigner, UnsealedKey,
    verify_compact,
};
use crate::domain::AccessTokenClaims;
use crate::storage::{KeyRecord, KeyRepository, KeyState, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("no active signing key")]
    NoActiveKey,
    #[error("a rotation is already pending; it activates on its own (or use --now)")]
    AlreadyPending,
}

/// How keys are made and rotated.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    pub alg: SigningAlgorithm,
    pub publish_ahead_secs: i64,
    pub rotation_secs: i64,
    /// A retired key stays published this long (the longest a token it signed can live).
    pub retired_grace_secs: i64,
    /// An instance that could not re-read the keys for this long stops signing: another
    /// instance may have retired its key, which would then be removed under it.
    pub stale_after: Duration,
}

#[derive(Default)]
struct Snapshot {
    /// When the key table was last read successfully.
    loaded_at: Option<std::time::Instant>,
    active: Option<Arc<UnsealedKey>>,
    /// Verifiers of every published key, by kid.
    public: HashMap<String, Arc<PublicKey>>,
    /// The JWKS document, serialized once per change.
    jwks: Arc<String>,
}

pub struct KeyRing {
    repo: KeyRepository,
    kek: KeyEncryptionKey,
    policy: KeyPolicy,
    snapshot: RwLock<Arc<Snapshot>>,
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl KeyRing {
    /// Loads the keys, creating and activating the first one on an empty database.
    pub async fn open(
        repo: KeyRepository,
        kek: KeyEncryptionKey,
        policy: KeyPolicy,
    ) -> Result<Self, KeyRingError> {
        let ring = Self {
            repo,
            kek,
            policy,
            snapshot: RwLock::new(Arc::default()),
        };
        ring.maintain().await?;
        Ok(ring)
    }

    /// One maintenance pass: activate a due pending key, schedule the periodic rotation, remove
    /// keys whose tokens have all expired, make sure one key is active, and reload.
    pub async fn maintain(&self) -> Result<(), KeyRingError> {
        let now = now_secs();
        if let Some(kid) = self.repo.promote_due(now).await? {
            tracing::info!(kid, "activated pending signing key");
        }
        let mut keys = self.repo.list().await?;
        let active = keys.iter().find(|k| k.state == KeyState::Active);
        match active {
            None => {
                let material = self.generate()?;
                match self.repo.insert_first_active(&material, now).await {
                    Ok(()) => {
                        tracing::info!(kid = material.kid, alg = %material.alg, "created the first signing key")
                    }
                    // Another instance created one first: use theirs.
                    Err(StorageError::Conflict) => {}
                    Err(err) => return Err(err.into()),
                }
                keys = self.repo.list().await?;
            }
            Some(active) => {
                let due_for_rotation = active.activated_at.unwrap_or(active.created_at)
                    + self.policy.rotation_secs
                    <= now;
                let has_pending = keys.iter().any(|k| k.state == KeyState::Pending);
                if due_for_rotation && !has_pending {
                    match self.schedule_rotation(now).await {
                        Ok(kid) => tracing::info!(kid, "scheduled the periodic key rotation"),
                        // Another instance scheduled it first.
                        Err(KeyRingError::AlreadyPending) => {}
                        Err(err) => return Err(err),
                    }
                    keys = self.repo.list().await?;
                }
            }
        }
        let removed = self
            .repo
            .delete_retired_before(now - self.policy.retired_grace_secs)
            .await?;
        if removed > 0 {
            tracing::info!(removed, "removed retired signing keys");
            keys = self.repo.list().await?;
        }
        self.load(&keys)
    }

    /// `keys rotate`: a new key, published now, signing after the publish-ahead delay; with
    /// `now`, signing at once (the previous key is retired but stays published).
    pub async fn rotate(&self, immediately: bool) -> Result<String, KeyRingError> {
        let now = now_secs();
        let kid = if immediately {
            let material = self.generate()?;
            self.repo.insert_active(&material, now).await?;
            material.kid
        } else {
            self.schedule_rotation(now).await?
        };
        let keys = self.repo.list().await?;
        self.load(&keys)?;
        Ok(kid)
    }

    pub async fn list(&self) -> Result<Vec<KeyRecord>, KeyRingError> {
        Ok(self.repo.list().await?)
    }

    /// The published key set as JSON text.
    pub fn jwks(&self) -> Arc<String> {
        self.current().jwks.clone()
    }

    /// The active kid, if the keys are loaded and fresh (see `KeyPolicy::stale_after`).
    pub fn active_kid(&self) -> Option<String> {
        let snapshot = self.current();
        if !self.is_fresh(&snapshot) {
            return None;
        }
        snapshot.active.as_ref().map(|k| k.kid.clone())
    }

    fn is_fresh(&self, snapshot: &Snapshot) -> bool {
        snapshot
            .loaded_at
            .is_some_and(|t| t.elapsed() <= self.policy.stale_after)
    }

    /// Runs `maintain` every `every` until the returned task is aborted.
    pub fn spawn_maintenance(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let ring = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                if let Err(err) = ring.maintain().await {
                    tracing::warn!(error = %err, "key maintenance failed; keeping the current keys");
                }
            }
        })
    }

    fn generate(&self) -> Result<KeyMaterial, KeyError> {
        KeyMaterial::generate(self.policy.alg, &self.kek)
    }

    async fn schedule_rotation(&self, now: i64) -> Result<String, KeyRingError> {
        let material = self.generate()?;
        match self
            .repo
            .insert_pending_once(&material, now, now + self.policy.publish_ahead_secs)
            .await
        {
            Ok(()) => Ok(material.kid),
            Err(StorageError::Conflict) => Err(KeyRingError::AlreadyPending),
            Err(err) => Err(err.into()),
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("key snapshot lock").clone()
    }

    /// Rebuilds the snapshot; the active key is unsealed only when it changed.
    fn load(&self, keys: &[KeyRecord]) -> Result<(), KeyRingError> {
        let previous = self.current();
        let active = match keys.iter().find(|k| k.state == KeyState::Active) {
            Some(record) => match &previous.active {
                Some(key) if key.kid == record.kid => Some(key.clone()),
                _ => Some(Arc::new(UnsealedKey::open(
                    &record.kid,
                    record.alg,
                    &record.sealed_private_key,
                    &self.kek,
                )?)),
            },
            None => None,
        };
        let mut public = HashMap::new();
        for k in keys {
            let key = match previous.public.get(&k.kid) {
                Some(key) => key.clone(),
                None => Arc::new(PublicKey::open(&k.kid, k.alg, &k.public_jwk)?),
            };
            public.insert(k.kid.clone(), key);
        }
        let published: Vec<serde_json::Value> = keys
            .iter()
            .filter_map(|k| serde_json::from_str(&k.public_jwk).ok())
            .collect();
        let jwks = serde_json::json!({ "keys": published }).to_string();
        let jwks = if *previous.jwks == jwks {
            previous.jwks.clone()
        } else {
            Arc::new(jwks)
        };
        *self.snapshot.write().expect("key snapshot lock") = Arc::new(Snapshot {
            loaded_at: Some(std::time::Instant::now()),
            active,
            public,
            jwks,
        });
        Ok(())
    }
}

impl KeyRing {
    /// The claims of an access token this server signed with a key it still publishes, if the
    /// signature holds. Expiry and revocation are the caller's to check.
    pub fn verify(&self, token: &str) -> Option<AccessTokenClaims> {
        let snapshot = self.current();
        let payload = verify_compact(token, |kid| snapshot.public.get(kid).map(Arc::as_ref))?;
        serde_json::from_slice(&payload).ok()
    }
}

impl TokenSigner for KeyRing {
    fn sign(&self, claims: &AccessTokenClaims) -> Result<String, KeyError> {
        let snapshot = self.current();
        if !self.is_fresh(&snapshot) {
            return Err(KeyError::Corrupt {
                kid: String::new(),
                reason: "the key table could not be read recently; not signing with a key \
                         that may have been retired"
                    .into(),
            });
        }
        let key = snapshot.active.as_ref().ok_or_else(|| KeyError::Corrupt {
            kid: String::new(),
            reason: KeyRingError::NoActiveKey.to_string(),
        })?;
        key.sign(claims)
    }
}
