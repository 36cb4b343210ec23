//! Client secrets: argon2id hashing, and verification that stays cheap for a client that keeps
//! presenting the right secret.
//!
//! argon2id is slow on purpose (~15 ms per verification with the crate defaults), which would cap
//! the token endpoint at ~64 requests/s per core (the collapse Hydra's users saw, ory/hydra#1477).
//! A successful verification is remembered in memory under a keyed digest (HMAC-SHA-256 with a
//! per-process random key) of the stored hash and the presented secret:
//! - a rotated secret changes the stored hash, so the old secret is never accepted from memory;
//! - a wrong secret never matches an entry, so it always pays the full argon2id cost;
//! - the secret itself is never kept, and the digest is useless outside this process.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

/// Entries kept before the memory is cleared (each is 32 bytes).
const CACHE_CAPACITY: usize = 50_000;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("hashing failed")]
    Hash,
    #[error("the verification task failed")]
    Task,
}

/// Hashes a secret with argon2id and the crate's default parameters (PHC string).
pub fn hash_secret(secret: &str) -> Result<String, SecretError> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|_| SecretError::Hash)
}

/// True for a parseable argon2id PHC string.
pub fn is_argon2id_hash(value: &str) -> bool {
    value.starts_with("$argon2id$") && argon2::PasswordHash::new(value).is_ok()
}

/// A new random client secret: 32 bytes, base64url (43 characters).
pub fn generate_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Verifies `secret` against a PHC string, hashing into `memory` (grown once to the largest
/// `m_cost` seen) rather than a fresh 19 MiB allocation per call.
fn verify_in(memory: &mut Vec<Block>, secret: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        Params::try_from(&hash),
        Algorithm::try_from(hash.algorithm.as_str()),
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(secret, salt.as_ref(), &mut out, &mut memory[..blocks])
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// One argon2id verification: the stored hash, the presented secret, where to answer.
type Job = (Arc<str>, String, oneshot::Sender<bool>);

/// argon2id runs on a few threads of its own (one per core) rather than on tokio's blocking
/// pool: that pool grows to hundreds of threads under a flood of wrong secrets, and each keeps
/// its 19 MiB working area in its own allocator arena (1.3 GB resident, measured). Here memory
/// stays at a few working areas, and a full queue makes callers wait.
struct Argon2Workers {
    jobs: mpsc::Sender<Job>,
}

impl Argon2Workers {
    fn start(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>(256);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    // This thread's argon2 working area, allocated once and reused.
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        // One worker waits on the queue at a time; the others wait on the lock.
                        let job = queue.lock().expect("argon2 queue lock").blocking_recv();
                        let Some((hash, secret, answer)) = job else {
                            return;
                        };
                        let ok = verify_in(&mut memory, secret.as_bytes(), &hash);
                        let _ = answer.send(ok);
                    }
                });
            if let Err(err) = spawned {
                tracing::error!(error = %err, "cannot start an argon2 worker thread");
            }
        }
        Self { jobs }
    }

    async fn verify(&self, hash: Arc<str>, secret: String) -> Result<bool, SecretError> {
        let (answer, result) = oneshot::channel();
        self.jobs
            .send((hash, secret, answer))
            .await
            .map_err(|_| SecretError::Task)?;
        result.await.map_err(|_| SecretError::Task)
    }
}

pub struct SecretVerifier {
    cache: Option<Mutex<HashSet<[u8; 32]>>>,
    cache_key: [u8; 32],
    /// Verified against when the client is unknown, so that costs what a wrong secret costs.
    dummy_hash: Arc<str>,
    workers: Argon2Workers,
}

impl SecretVerifier {
    pub fn new(cache_enabled: bool) -> Result<Self, SecretError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            cache: cache_enabled.then(|| Mutex::new(HashSet::new())),
            cache_key: rand::random(),
            dummy_hash: hash_secret(&generate_secret())?.into(),
            workers: Argon2Workers::start(cores),
        })
    }

    /// Checks `presented` against `stored_hash`; `None` (unknown client) does the same work and
    /// fails. A success is remembered (see the module comment).
    pub async fn verify(
        &self,
        stored_hash: Option<&str>,
        presented: &str,
    ) -> Result<bool, SecretError> {
        self.check(stored_hash, presented, true).await
    }

    /// Like `verify`, but always pays the full argon2id cost, so its time says nothing about
    /// the answer (the password grant, where a user may be disabled).
    pub async fn verify_uncached(
        &self,
        stored_hash: Option<&str>,
        presented: &str,
    ) -> Result<bool, SecretError> {
        self.check(stored_hash, presented, false).await
    }

    async fn check(
        &self,
        stored_hash: Option<&str>,
        presented: &str,
        use_cache: bool,
    ) -> Result<bool, SecretError> {
        let cache = self.cache.as_ref().filter(|_| use_cache);
        let digest = stored_hash.map(|hash| self.digest(hash, presented));
        if let (Some(cache), Some(digest)) = (cache, &digest)
            && cache.lock().expect("cache lock").contains(digest)
        {
            return Ok(true);
        }

        let hash: Arc<str> = stored_hash.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let secret = presented.to_owned();
        let matches = self.workers.verify(hash, secret).await?;

        let verified = matches && stored_hash.is_some();
        if verified && let (Some(cache), Some(digest)) = (cache, digest) {
            let mut cache = cache.lock().expect("cache lock");
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(digest);
        }
        Ok(verified)
    }

    fn digest(&self, stored_hash: &str, presented: &str) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.cache_key).expect("HMAC takes any key length");
        mac.update(stored_hash.as_bytes());
        mac.update(&[0]);
        mac.update(presented.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_right_secret_verifies_and_a_wrong_one_does_not() {
        let verifier = SecretVerifier::new(true).unwrap();
        let hash = hash_secret("s3cret").unwrap();
        assert!(is_argon2id_hash(&hash));
        assert!(verifier.verify(Some(&hash), "s3cret").await.unwrap());
        assert!(
            verifier.verify(Some(&hash), "s3cret").await.unwrap(),
            "from memory"
        );
        assert!(!verifier.verify(Some(&hash), "wrong").await.unwrap());
        assert!(!verifier.verify(None, "s3cret").await.unwrap());
        assert!(
            verifier
                .verify_uncached(Some(&hash), "s3cret")
                .await
                .unwrap()
        );
        assert!(
            !verifier
                .verify_uncached(Some(&hash), "wrong")
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_remembered_secret_is_refused_once_the_stored_hash_changes() {
        let verifier = SecretVerifier::new(true).unwrap();
        let old = hash_secret("old").unwrap();
        assert!(verifier.verify(Some(&old), "old").await.unwrap());
        let rotated = hash_secret("new").unwrap();
        assert!(!verifier.verify(Some(&rotated), "old").await.unwrap());
        assert!(verifier.verify(Some(&rotated), "new").await.unwrap());
    }

    #[test]
    fn verifying_in_reused_memory_agrees_with_the_argon2_crate_for_any_parameters() {
        use argon2::CustomizedPasswordHasher;
        let mut memory = Vec::new();
        let small = Params::new(64, 1, 1, None).unwrap();
        let salt = b"0123456789abcdef";
        let custom = Argon2::default()
            .hash_password_customized(b"pw", salt, None, None, small)
            .unwrap()
            .to_string();
        let default = hash_secret("pw").unwrap();
        for phc in [&custom, &default, &custom] {
            assert!(verify_in(&mut memory, b"pw", phc), "{phc}");
            assert!(!verify_in(&mut memory, b"pW", phc), "{phc}");
        }
        assert!(!verify_in(&mut memory, b"pw", "$argon2id$not-a-hash"));
    }

    #[test]
    fn only_argon2id_phc_strings_count_as_hashes() {
        assert!(!is_argon2id_hash("plain"));
        assert!(!is_argon2id_hash(
            "$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA"
        ));
        assert_eq!(generate_secret().len(), 43);
    }
}
