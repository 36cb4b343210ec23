//! The key ring: the key lifecycle the README's "Keys" section describes (pending → active → retired → removed)
//! over the database every instance shares, and an in-memory snapshot for the hot path (the
//! active key's signer, built once, and the JWKS document, serialized once).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::Duration;

use crate::clock::now_secs;
use crate::crypto::{
    KeyEncryptionKey, KeyError, KeyMaterial, KeyRowAuthenticator, PublicKey, SigningAlgorithm,
    TokenSigner, UnsealedKey, key_pair_matches, verify_compact,
};
use crate::domain::AccessTokenClaims;
use crate::stores::{KeyRecord, KeyState, KeyStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("no active signing key")]
    NoActiveKey,
    #[error("a rotation is already pending; it activates on its own (or use --now)")]
    AlreadyPending,
    #[error("there is no signing key {0}")]
    UnknownKey(String),
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
    repo: Arc<dyn KeyStore>,
    kek: KeyEncryptionKey,
    rows: KeyRowAuthenticator,
    policy: KeyPolicy,
    /// Read on every token: an `ArcSwap`, so readers never write a shared cache line.
    snapshot: ArcSwap<Snapshot>,
}

impl KeyRing {
    /// Loads the keys, creating and activating the first one on an empty database.
    pub async fn open(
        repo: Arc<dyn KeyStore>,
        kek: KeyEncryptionKey,
        policy: KeyPolicy,
    ) -> Result<Self, KeyRingError> {
        let ring = Self {
            repo,
            rows: KeyRowAuthenticator::from_kek(&kek),
            kek,
            policy,
            snapshot: ArcSwap::default(),
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
                    Err(StoreError::Conflict) => {}
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
        self.authenticate_unauthenticated(&mut keys).await?;
        self.load(&keys)
    }

    /// Rows stored before rows were authenticated get their tag once their sealed private key
    /// opens under the key-encryption key and matches the public part (which someone without
    /// the key-encryption key cannot arrange); the others stay untrusted.
    async fn authenticate_unauthenticated(
        &self,
        keys: &mut [KeyRecord],
    ) -> Result<(), KeyRingError> {
        for key in keys
            .iter_mut()
            .filter(|k| k.mac.is_none() && k.state != KeyState::Revoked)
        {
            if key_pair_matches(
                &key.kid,
                key.alg,
                &key.sealed_private_key,
                &key.public_jwk,
                &self.kek,
            ) {
                let mac =
                    self.rows
                        .mac(&key.kid, key.alg, &key.sealed_private_key, &key.public_jwk);
                self.repo.set_mac(&key.kid, &mac).await?;
                tracing::info!(kid = key.kid, "signing key row authenticated");
                key.mac = Some(mac);
            }
        }
        Ok(())
    }

    /// True if the row is authentic; a row that is not is logged at ERROR and counted.
    fn is_authentic(&self, key: &KeyRecord) -> bool {
        let authentic = key.mac.as_deref().is_some_and(|mac| {
            self.rows.verify(
                &key.kid,
                key.alg,
                &key.sealed_private_key,
                &key.public_jwk,
                mac,
            )
        });
        if !authentic {
            metrics::counter!("signing_key_integrity_failures_total").increment(1);
            tracing::error!(
                kid = key.kid,
                state = key.state.as_str(),
                "a signing key row fails its integrity check: not published, not trusted,                  never used (was the database written without the key-encryption key?)"
            );
        }
        authentic
    }

    /// `keys revoke`: the key is unpublished and untrusted at every instance's next key
    /// refresh; if it was the active key, a new key signs in its place at once. Returns the
    /// new active kid, if one was made.
    pub async fn revoke(&self, kid: &str) -> Result<Option<String>, KeyRingError> {
        let now = now_secs();
        let keys = self.repo.list().await?;
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| KeyRingError::UnknownKey(kid.to_owned()))?;
        let replacement = if key.state == KeyState::Active {
            let material = self.generate()?;
            self.repo.insert_active(&material, now).await?;
            Some(material.kid)
        } else {
            None
        };
        if !self.repo.revoke(kid, now).await? {
            return Err(KeyRingError::UnknownKey(kid.to_owned()));
        }
        tracing::warn!(kid, "signing key revoked");
        let keys = self.repo.list().await?;
        self.load(&keys)?;
        Ok(replacement)
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
            Err(StoreError::Conflict) => Err(KeyRingError::AlreadyPending),
            Err(err) => Err(err.into()),
        }
    }

    fn current(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// Rebuilds the snapshot; the active key is unsealed only when it changed.
    fn load(&self, keys: &[KeyRecord]) -> Result<(), KeyRingError> {
        // An active key that fails its check is a wrong key-encryption key, or tampering: stop
        // (at start-up) or keep the keys loaded before (at a refresh), never sign with it.
        if let Some(active) = keys.iter().find(|k| k.state == KeyState::Active)
            && !self.is_authentic(active)
        {
            return Err(KeyError::Unseal {
                kid: active.kid.clone(),
            }
            .into());
        }
        let keys: Vec<&KeyRecord> = keys
            .iter()
            .filter(|k| k.state != KeyState::Revoked && self.is_authentic(k))
            .collect();
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
        for k in &keys {
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
        self.snapshot.store(Arc::new(Snapshot {
            loaded_at: Some(std::time::Instant::now()),
            active,
            public,
            jwks,
        }));
        Ok(())
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
        let _span = service_kit::trace_span!("sign", otel.name = "sign access token", kid = key.kid.as_str(), alg = ?key.alg)
            .entered();
        key.sign(claims)
    }

    fn verify(&self, token: &str) -> Option<AccessTokenClaims> {
        let snapshot = self.current();
        let payload = verify_compact(token, |kid| snapshot.public.get(kid).map(Arc::as_ref))?;
        serde_json::from_slice(&payload).ok()
    }
}
