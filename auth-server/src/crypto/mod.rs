//! Cryptography behind small types: signing keys (josekit) and client-secret hashing (argon2id).

mod material;
mod secret;

pub use material::{
    KeyEncryptionKey, KeyError, KeyMaterial, KeyRowAuthenticator, PublicKey, SigningAlgorithm,
    TokenSigner, UnsealedKey, key_pair_matches, verify_compact,
};
pub use secret::{
    SecretError, SecretVerifier, generate_secret, hash_matches, hash_secret, is_argon2id_hash,
    needs_rehash,
};
