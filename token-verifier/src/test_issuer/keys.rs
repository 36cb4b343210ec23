//! Key pairs the test issuer signs with and publishes.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use josekit::{
    jwk::{Jwk, alg::ed::EdCurve},
    jws::{ES256, ES384, EdDSA, JwsSigner, PS256, PS384, PS512, RS256, RS384, RS512},
};
use serde_json::{Map, Value};

use crate::Algorithm;

/// RSA keys for tests: big enough for every RSA algorithm, small enough to generate quickly.
const RSA_BITS: u32 = 2048;

static NEXT_KID: AtomicU64 = AtomicU64::new(1);

/// A private key with its `kid` and algorithm, and its public half as the JWKS shows it.
/// Cheap to clone.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    signer: Arc<dyn JwsSigner>,
    private_der: Arc<[u8]>,
    public_jwk: Arc<Map<String, Value>>,
    public_pem: Arc<[u8]>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key pair for `alg`, with a `kid` unique in this process.
    pub fn generate(alg: Algorithm) -> Self {
        let serial = NEXT_KID.fetch_add(1, Ordering::Relaxed);
        let kid = format!("test-{serial}-{}", alg.name().to_ascii_lowercase());
        let (private_der, public_jwk, public_pem) = generate(alg);
        let signer = signer(alg, &private_der);
        let mut key = Self {
            kid: String::new(),
            alg,
            signer: Arc::from(signer),
            private_der: Arc::from(private_der),
            public_jwk: Arc::new(public_jwk.as_ref().clone()),
            public_pem: Arc::from(public_pem),
        };
        key.set_kid(kid);
        key
    }

    /// The same key under another `kid` (an impostor key under a published `kid`, say).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.set_kid(kid.into());
        self
    }

    fn set_kid(&mut self, kid: String) {
        let mut jwk = (*self.public_jwk).clone();
        jwk.insert("kid".into(), Value::String(kid.clone()));
        jwk.insert("alg".into(), Value::String(self.alg.name().into()));
        jwk.insert("use".into(), Value::String("sig".into()));
        self.public_jwk = Arc::new(jwk);
        self.kid = kid;
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public key as a JWK with `kid`, `alg` and `use: sig`, as the JWKS publishes it.
    pub fn public_jwk(&self) -> Value {
        Value::Object((*self.public_jwk).clone())
    }

    /// The public key in PEM (SubjectPublicKeyInfo).
    pub fn public_key_pem(&self) -> &[u8] {
        &self.public_pem
    }

    /// The private key in DER (PKCS#8), for tests that sign in ways the issuer would not.
    pub fn private_key_der(&self) -> &[u8] {
        &self.private_der
    }

    /// A compact JWS of `payload` under exactly `header` (nothing added or corrected).
    pub(crate) fn sign_compact(&self, header: &Map<String, Value>, payload: &[u8]) -> String {
        let header = Value::Object(header.clone()).to_string();
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = self
            .signer
            .sign(input.as_bytes())
            .expect("a generated key signs");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// (private DER, public JWK, public PEM) of a new key pair.
fn generate(alg: Algorithm) -> (Vec<u8>, Jwk, Vec<u8>) {
    macro_rules! parts {
        ($pair:expr) => {{
            let pair = $pair.expect("key generation works");
            (
                pair.to_der_private_key(),
                pair.to_jwk_public_key(),
                pair.to_pem_public_key(),
            )
        }};
    }
    match alg {
        Algorithm::Es256 => parts!(ES256.generate_key_pair()),
        Algorithm::Es384 => parts!(ES384.generate_key_pair()),
        Algorithm::EdDsa | Algorithm::Ed25519 => parts!(EdDSA.generate_key_pair(EdCurve::Ed25519)),
        Algorithm::Rs256 => parts!(RS256.generate_key_pair(RSA_BITS)),
        Algorithm::Rs384 => parts!(RS384.generate_key_pair(RSA_BITS)),
        Algorithm::Rs512 => parts!(RS512.generate_key_pair(RSA_BITS)),
        Algorithm::Ps256 => parts!(PS256.generate_key_pair(RSA_BITS)),
        Algorithm::Ps384 => parts!(PS384.generate_key_pair(RSA_BITS)),
        Algorithm::Ps512 => parts!(PS512.generate_key_pair(RSA_BITS)),
    }
}

fn signer(alg: Algorithm, der: &[u8]) -> Box<dyn JwsSigner> {
    fn boxed<S: JwsSigner + 'static>(signer: Result<S, josekit::JoseError>) -> Box<dyn JwsSigner> {
        Box::new(signer.expect("a generated key makes a signer"))
    }
    match alg {
        Algorithm::Es256 => boxed(ES256.signer_from_der(der)),
        Algorithm::Es384 => boxed(ES384.signer_from_der(der)),
        Algorithm::EdDsa | Algorithm::Ed25519 => boxed(EdDSA.signer_from_der(der)),
        Algorithm::Rs256 => boxed(RS256.signer_from_der(der)),
        Algorithm::Rs384 => boxed(RS384.signer_from_der(der)),
        Algorithm::Rs512 => boxed(RS512.signer_from_der(der)),
        Algorithm::Ps256 => boxed(PS256.signer_from_der(der)),
        Algorithm::Ps384 => boxed(PS384.signer_from_der(der)),
        Algorithm::Ps512 => boxed(PS512.signer_from_der(der)),
    }
}
