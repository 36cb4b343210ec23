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

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

/// 32 MiB of argon2 blocks (1 KiB each): glibc's largest mmap threshold.
const ALWAYS_MAPPED_BLOCKS: usize = 32 * 1024;

/// Entries kept before the memory is cleared (each is 32 bytes).
const CACHE_CAPACITY: usize = 50_000;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("hashing failed")]
    Hash,
    #[error("the verification task failed")]
    Task,
}

/// The parameters every hash is made with now, and the dummy hash too: an unknown id then costs
/// what a known one does, once stored hashes are brought to these (see `needs_rehash`).
fn current_params() -> Params {
    Params::default()
}

/// Whether a stored hash was made otherwise than `hash_secret` makes one now (another
/// algorithm, version or parameters, e.g. a hash given in the configuration). After a
/// successful check such a hash is replaced by a fresh one, so that the id answers in the time
/// every other id (and the dummy an unknown id is checked against) takes.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let current = current_params();
    let same_params = Params::try_from(&hash).is_ok_and(|p| {
        (p.m_cost(), p.t_cost(), p.p_cost())
            == (current.m_cost(), current.t_cost(), current.p_cost())
    });
    hash.algorithm.as_str() != "argon2id"
        || hash.version != Some(u32::from(Version::V0x13))
        || !same_params
        || hash.hash.is_none_or(|h| h.len() != 32)
}

/// Hashes a secret with argon2id and the current parameters (PHC string).
pub fn hash_secret(secret: &str) -> Result<String, SecretError> {
    let params = current_params();
    let salt: [u8; 16] = rand::random();
    let mut output = [0u8; 32];
    let mut memory = Vec::new();
    reserve_blocks(&mut memory, params.block_count());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(secret.as_bytes(), &salt, &mut output, &mut memory)
        .map_err(|_| SecretError::Hash)?;
    Ok(phc_string(&params, &salt, &output))
}

/// `$argon2id$v=19$m=…,t=…,p=…$salt$hash`, base64 without padding (the PHC string format).
fn phc_string(params: &Params, salt: &[u8], output: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(output)
    )
}

/// Makes `memory` hold `blocks` argon2 blocks, with at least 32 MiB of capacity (only the blocks
/// used are ever touched): glibc always serves that size straight from the system and gives it
/// back on free, whereas a smaller area allocated after a first free would stay resident in the
/// thread's arena (glibc raises its mmap threshold to the size last freed).
fn reserve_blocks(memory: &mut Vec<Block>, blocks: usize) {
    if memory.len() < blocks {
        if memory.capacity() < blocks {
            *memory = Vec::with_capacity(blocks.max(ALWAYS_MAPPED_BLOCKS));
        }
        memory.resize(blocks, Block::default());
    }
}

/// An argon2id PHC string with the parameters `hash_secret` uses and a random salt and output:
/// verifying anything against it costs exactly what a real verification costs, and fails. Made
/// without running argon2id (which would leave a 19 MiB working area behind at start-up).
fn dummy_hash() -> String {
    let salt: [u8; 16] = rand::random();
    let output: [u8; 32] = rand::random();
    phc_string(&current_params(), &salt, &output)
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

/// True if `phc` is a hash of `secret` (blocking: a full argon2 verification).
pub fn hash_matches(secret: &str, phc: &str) -> bool {
    verify_in(&mut Vec::new(), secret.as_bytes(), phc)
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
    reserve_blocks(memory, blocks);
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
                    // This thread's argon2 working area, reused while jobs keep coming and
                    // given back to the system (19 MiB) as soon as none is waiting: an idle
                    // server holds none.
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        // One worker waits on the queue at a time; the others wait on the lock.
                        // A worker about to wait (the queue is empty, or another worker is
                        // already waiting on it) has nothing to do: it gives its area back.
                        let job = {
                            let mut queue = match queue.try_lock() {
                                Ok(queue) => queue,
                                Err(_) => {
                                    memory = Vec::new();
                                    queue.lock().expect("argon2 queue lock")
                                }
                            };
                            match queue.try_recv() {
                                Ok(job) => Some(job),
                                Err(mpsc::error::TryRecvError::Empty) => {
                                    memory = Vec::new();
                                    queue.blocking_recv()
                                }
                                Err(mpsc::error::TryRecvError::Disconnected) => None,
                            }
                        };
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

/// The digests of verified (stored hash, secret) pairs, in shards so that the token path's
/// lookups on different cores rarely wait for each other.
#[derive(Default)]
struct VerifiedDigests {
    shards: [Mutex<HashSet<[u8; 32]>>; 16],
}

impl VerifiedDigests {
    fn shard(&self, digest: &[u8; 32]) -> &Mutex<HashSet<[u8; 32]>> {
        &self.shards[usize::from(digest[0] & 15)]
    }

    fn contains(&self, digest: &[u8; 32]) -> bool {
        self.shard(digest)
            .lock()
            .expect("cache lock")
            .contains(digest)
    }

    fn insert(&self, digest: [u8; 32]) {
        let mut shard = self.shard(&digest).lock().expect("cache lock");
        if shard.len() >= CACHE_CAPACITY / 16 {
            shard.clear();
        }
        shard.insert(digest);
    }
}

pub struct SecretVerifier {
    cache: Option<VerifiedDigests>,
    /// HMAC-SHA-256 keyed with a per-process random key, the key already absorbed.
    cache_mac: Hmac<Sha256>,
    /// Verified against when the client is unknown, so that costs what a wrong secret costs.
    dummy_hash: Arc<str>,
    workers: Argon2Workers,
}

impl SecretVerifier {
    pub fn new(cache_enabled: bool) -> Result<Self, SecretError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            cache: cache_enabled.then(VerifiedDigests::default),
            cache_mac: Hmac::<Sha256>::new_from_slice(&rand::random::<[u8; 32]>())
                .expect("HMAC takes any key length"),
            dummy_hash: dummy_hash().into(),
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

    /// Whether `presented` was verified against `stored_hash` before (and is remembered): the
    /// token path's fast answer, one HMAC and no argon2id. A client proven this way is not
    /// throttled: only unproven attempts are.
    pub fn is_remembered(&self, stored_hash: &str, presented: &str) -> bool {
        let Some(cache) = &self.cache else {
            return false;
        };
        let digest = self.digest(stored_hash, presented);
        cache.contains(&digest)
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
            && cache.contains(digest)
        {
            return Ok(true);
        }

        let hash: Arc<str> = stored_hash.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let secret = presented.to_owned();
        let matches = tracing::Instrument::instrument(
            self.workers.verify(hash, secret),
            service_kit::trace_span!("argon2id", otel.name = "argon2id verify"),
        )
        .await?;

        let verified = matches && stored_hash.is_some();
        if verified && let (Some(cache), Some(digest)) = (cache, digest) {
            cache.insert(digest);
        }
        Ok(verified)
    }

    fn digest(&self, stored_hash: &str, presented: &str) -> [u8; 32] {
        let mut mac = self.cache_mac.clone();
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
    fn the_dummy_hash_has_the_parameters_of_real_hashes_and_matches_nothing() {
        let dummy = dummy_hash();
        assert!(is_argon2id_hash(&dummy), "{dummy}");
        let real = hash_secret("pw").unwrap();
        let params = |phc: &str| Params::try_from(&PasswordHash::new(phc).unwrap()).unwrap();
        assert_eq!(params(&dummy), params(&real));
        let mut memory = Vec::new();
        assert!(!verify_in(&mut memory, b"pw", &dummy));
        assert!(!verify_in(&mut memory, b"", &dummy));
    }

    #[test]
    fn our_hashes_are_standard_phc_strings_the_argon2_crate_verifies() {
        use argon2::PasswordVerifier;
        let hash = hash_secret("correct horse").unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
    }

    #[test]
    fn hashes_made_otherwise_than_now_need_a_rehash() {
        use argon2::CustomizedPasswordHasher;
        let salt = b"0123456789abcdef";
        let cheaper = Argon2::default()
            .hash_password_customized(
                b"pw",
                salt,
                None,
                None,
                Params::new(8192, 1, 1, None).unwrap(),
            )
            .unwrap()
            .to_string();
        assert!(needs_rehash(&cheaper), "{cheaper}");
        assert!(!needs_rehash(&hash_secret("pw").unwrap()));
        assert!(!needs_rehash(&dummy_hash()), "the dummy is in step");
        assert!(!needs_rehash("not a hash"));
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
