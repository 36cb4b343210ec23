//! Cryptography behind small types: signing keys (josekit) and client-secret hashing (argon2id).

mod material;
mod secret;

pub use material::{
    KeyEncryptionKey, KeyError, KeyMaterial, PublicKey, SigningAlgorithm, TokenSigner, UnsealedKey,
    verify_compact,
};
pub use secret::{SecretError, SecretVerifier, generate_secret, hash_secret, is_argon2id_hash};
