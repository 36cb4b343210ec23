//! Signing-key material: generation, RFC 7638 key ids, sealing private keys at rest, and the
//! signer built once per key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwe::{Dir, JweHeader};
use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::{ES256, EdDSA, JwsHeader, JwsSigner, JwsVerifier, PS256, RS256};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::AccessTokenClaims;

/// Asymmetric JWS algorithms the server can sign with. There is deliberately no HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    ES256,
    EdDSA,
    RS256,
    PS256,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 4] = [Self::ES256, Self::EdDSA, Self::RS256, Self::PS256];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == value)
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed: {0}")]
    Generate(josekit::JoseError),
    #[error("cannot seal the private key: {0}")]
    Seal(josekit::JoseError),
    #[error(
        "cannot unseal the private key of {kid}: wrong key_encryption_key, or the row was altered"
    )]
    Unseal { kid: String },
    #[error("stored key {kid} is unusable: {reason}")]
    Corrupt { kid: String, reason: String },
    #[error("signing failed: {0}")]
    Sign(josekit::JoseError),
}

/// The 32-byte key that encrypts private signing keys at rest (JWE `dir` + `A256GCM`).
#[derive(Clone)]
pub struct KeyEncryptionKey([u8; 32]);

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

impl KeyEncryptionKey {
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// A key file's contents: base64 text of 32 bytes (what `key_encryption_key_file` takes),
    /// or the 32 raw bytes that development key files held before.
    pub fn from_file_contents(contents: &[u8]) -> Option<Self> {
        if let Ok(text) = std::str::from_utf8(contents) {
            use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
            let text = text.trim();
            if let Some(key) = STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text))
                .ok()
                .and_then(|bytes| Self::from_bytes(&bytes))
            {
                return Some(key);
            }
        }
        Self::from_bytes(contents)
    }

    pub fn generate() -> Self {
        Self(rand::random())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A freshly generated key, ready to store: the sealed private JWK, the public JWK and the
/// row's authentication tag (see [`KeyRowAuthenticator`]).
#[derive(Debug, Clone)]
pub struct KeyMaterial {
    pub kid: String,
    pub alg: SigningAlgorithm,
    pub sealed_private_key: String,
    pub public_jwk: String,
    pub mac: String,
}

/// Authenticates what a signing-key row says about a key (kid, algorithm, sealed private part,
/// public part) under a key derived from the key-encryption key: someone who can write the
/// database but lacks the key-encryption key cannot add a key the server would publish.
#[derive(Clone)]
pub struct KeyRowAuthenticator([u8; 32]);

impl fmt::Debug for KeyRowAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyRowAuthenticator(..)")
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

impl KeyRowAuthenticator {
    /// HMAC-SHA256 keyed by the key-encryption key over a fixed label: a separate key for one
    /// purpose, never the key-encryption key itself.
    pub fn from_kek(kek: &KeyEncryptionKey) -> Self {
        use hmac::Mac as _;
        let mut derive = <HmacSha256 as hmac::Mac>::new_from_slice(kek.as_bytes())
            .expect("HMAC takes a key of any length");
        derive.update(b"auth-server signing-key row authentication v1");
        Self(derive.finalize().into_bytes().into())
    }

    fn tag(&self, kid: &str, alg: SigningAlgorithm, sealed: &str, public_jwk: &str) -> HmacSha256 {
        use hmac::Mac as _;
        let mut mac = <HmacSha256 as hmac::Mac>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        // Each field length-prefixed, so no two rows authenticate the same bytes.
        for field in [kid, alg.as_str(), sealed, public_jwk] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac
    }

    /// The tag to store with the row (base64url).
    pub fn mac(&self, kid: &str, alg: SigningAlgorithm, sealed: &str, public_jwk: &str) -> String {
        use hmac::Mac as _;
        URL_SAFE_NO_PAD.encode(
            self.tag(kid, alg, sealed, public_jwk)
                .finalize()
                .into_bytes(),
        )
    }

    /// True if `mac` is this row's tag (compared in constant time).
    pub fn verify(
        &self,
        kid: &str,
        alg: SigningAlgorithm,
        sealed: &str,
        public_jwk: &str,
        mac: &str,
    ) -> bool {
        use hmac::Mac as _;
        let Ok(tag) = URL_SAFE_NO_PAD.decode(mac) else {
            return false;
        };
        self.tag(kid, alg, sealed, public_jwk)
            .verify_slice(&tag)
            .is_ok()
    }
}

/// True if `sealed` opens under `kek` (which authenticates it and its kid) and `public_jwk` is
/// its public part: how a row stored before rows were authenticated is checked once.
pub fn key_pair_matches(
    kid: &str,
    alg: SigningAlgorithm,
    sealed: &str,
    public_jwk: &str,
    kek: &KeyEncryptionKey,
) -> bool {
    let (Ok(private), Ok(public)) = (
        UnsealedKey::open(kid, alg, sealed, kek),
        PublicKey::open(kid, alg, public_jwk),
    ) else {
        return false;
    };
    let probe = b"auth-server key pair probe";
    private
        .signer
        .sign(probe)
        .is_ok_and(|signature| public.verifier.verify(probe, &signature).is_ok())
}

impl KeyMaterial {
    pub fn generate(alg: SigningAlgorithm, kek: &KeyEncryptionKey) -> Result<Self, KeyError> {
        let mut private = match alg {
            SigningAlgorithm::ES256 => ES256.generate_key_pair().map(|k| k.to_jwk_key_pair()),
            SigningAlgorithm::EdDSA => EdDSA
                .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
                .map(|k| k.to_jwk_key_pair()),
            SigningAlgorithm::RS256 => RS256.generate_key_pair(2048).map(|k| k.to_jwk_key_pair()),
            SigningAlgorithm::PS256 => PS256.generate_key_pair(2048).map(|k| k.to_jwk_key_pair()),
        }
        .map_err(KeyError::Generate)?;
        let mut public = private.to_public_key().map_err(KeyError::Generate)?;
        let kid = thumbprint(&public).ok_or_else(|| KeyError::Corrupt {
            kid: String::new(),
            reason: "generated key has no thumbprint members".into(),
        })?;
        for jwk in [&mut private, &mut public] {
            jwk.set_key_id(&kid);
            jwk.set_algorithm(alg.as_str());
            jwk.set_key_use("sig");
        }
        let sealed_private_key = seal(&private, &kid, kek)?;
        let public_jwk = public.to_string();
        let mac =
            KeyRowAuthenticator::from_kek(kek).mac(&kid, alg, &sealed_private_key, &public_jwk);
        Ok(Self {
            kid,
            alg,
            sealed_private_key,
            public_jwk,
            mac,
        })
    }
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url): a stable, content-derived `kid`.
fn thumbprint(public: &Jwk) -> Option<String> {
    let member = |name: &str| public.parameter(name).and_then(|v| v.as_str());
    let canonical = match public.key_type() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            member("crv")?,
            member("x")?,
            member("y")?
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            member("crv")?,
            member("x")?
        ),
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            member("e")?,
            member("n")?
        ),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

fn seal(private: &Jwk, kid: &str, kek: &KeyEncryptionKey) -> Result<String, KeyError> {
    let encrypter = Dir
        .encrypter_from_bytes(kek.as_bytes())
        .map_err(KeyError::Seal)?;
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    // The kid sits in the authenticated header, so a sealed key cannot be moved to another row.
    header.set_key_id(kid);
    josekit::jwe::serialize_compact(private.to_string().as_bytes(), &header, &encrypter)
        .map_err(KeyError::Seal)
}

/// A stored key opened with the key-encryption key: its signer is built once, here.
#[derive(Debug)]
pub struct UnsealedKey {
    pub kid: String,
    pub alg: SigningAlgorithm,
    signer: Box<dyn JwsSigner>,
}

impl UnsealedKey {
    pub fn open(
        kid: &str,
        alg: SigningAlgorithm,
        sealed: &str,
        kek: &KeyEncryptionKey,
    ) -> Result<Self, KeyError> {
        let unseal = || KeyError::Unseal {
            kid: kid.to_owned(),
        };
        let decrypter = Dir
            .decrypter_from_bytes(kek.as_bytes())
            .map_err(|_| unseal())?;
        let (plain, header) =
            josekit::jwe::deserialize_compact(sealed, &decrypter).map_err(|_| unseal())?;
        if header.key_id() != Some(kid) {
            return Err(unseal());
        }
        let jwk = Jwk::from_bytes(&plain).map_err(|_| unseal())?;
        let corrupt = |e: josekit::JoseError| KeyError::Corrupt {
            kid: kid.to_owned(),
            reason: e.to_string(),
        };
        let signer: Box<dyn JwsSigner> = match alg {
            SigningAlgorithm::ES256 => Box::new(ES256.signer_from_jwk(&jwk).map_err(corrupt)?),
            SigningAlgorithm::EdDSA => Box::new(EdDSA.signer_from_jwk(&jwk).map_err(corrupt)?),
            SigningAlgorithm::RS256 => Box::new(RS256.signer_from_jwk(&jwk).map_err(corrupt)?),
            SigningAlgorithm::PS256 => Box::new(PS256.signer_from_jwk(&jwk).map_err(corrupt)?),
        };
        Ok(Self {
            kid: kid.to_owned(),
            alg,
            signer,
        })
    }

    /// Signs claims as an RFC 9068 access token: `typ: at+jwt`, this key's `kid` and `alg`.
    pub fn sign(&self, claims: &AccessTokenClaims) -> Result<String, KeyError> {
        let mut header = JwsHeader::new();
        header.set_token_type("at+jwt");
        header.set_key_id(&self.kid);
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Corrupt {
            kid: self.kid.clone(),
            reason: e.to_string(),
        })?;
        josekit::jws::serialize_compact(&payload, &header, self.signer.as_ref())
            .map_err(KeyError::Sign)
    }
}

/// A published key's verifier, built once per key.
#[derive(Debug)]
pub struct PublicKey {
    verifier: Box<dyn JwsVerifier>,
}

impl PublicKey {
    pub fn open(kid: &str, alg: SigningAlgorithm, public_jwk: &str) -> Result<Self, KeyError> {
        let corrupt = |e: josekit::JoseError| KeyError::Corrupt {
            kid: kid.to_owned(),
            reason: e.to_string(),
        };
        let jwk = Jwk::from_bytes(public_jwk.as_bytes()).map_err(corrupt)?;
        let verifier: Box<dyn JwsVerifier> = match alg {
            SigningAlgorithm::ES256 => Box::new(ES256.verifier_from_jwk(&jwk).map_err(corrupt)?),
            SigningAlgorithm::EdDSA => Box::new(EdDSA.verifier_from_jwk(&jwk).map_err(corrupt)?),
            SigningAlgorithm::RS256 => Box::new(RS256.verifier_from_jwk(&jwk).map_err(corrupt)?),
            SigningAlgorithm::PS256 => Box::new(PS256.verifier_from_jwk(&jwk).map_err(corrupt)?),
        };
        Ok(Self { verifier })
    }

    pub fn verifier(&self) -> &dyn JwsVerifier {
        self.verifier.as_ref()
    }
}

/// Checks a compact JWS against the key its `kid` names (and only that key's algorithm) and
/// returns the payload; `None` for anything that does not verify or is not `typ: at+jwt`.
pub fn verify_compact<'a>(
    token: &str,
    key_for: impl Fn(&str) -> Option<&'a PublicKey>,
) -> Option<Vec<u8>> {
    if token.len() > 8 * 1024 {
        return None;
    }
    let (payload, header) = josekit::jws::deserialize_compact_with_selector(token, |header| {
        Ok(header
            .key_id()
            .and_then(&key_for)
            .filter(|key| Some(key.verifier().algorithm().name()) == header.algorithm())
            .map(PublicKey::verifier))
    })
    .ok()?;
    (header.token_type() == Some("at+jwt")).then_some(payload)
}

/// The one way tokens are signed (and this server's own tokens read back, for introspection
/// and revocation): implemented by the key ring.
pub trait TokenSigner: Send + Sync {
    /// Signs claims with the active key.
    fn sign(&self, claims: &AccessTokenClaims) -> Result<String, KeyError>;
    /// The claims of an access token signed with a key still published, if the signature
    /// holds. Expiry, issuer and revocation are the caller's to check.
    fn verify(&self, token: &str) -> Option<AccessTokenClaims>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "http://localhost:9000".into(),
            sub: "c".into(),
            aud: "players-api".into(),
            client_id: "c".into(),
            scope: "players:write".into(),
            iat: 1,
            nbf: 1,
            exp: 2,
            jti: "j".into(),
            cnf: None,
            act: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn every_algorithm_generates_seals_opens_and_signs_with_its_own_kid() {
        let kek = KeyEncryptionKey::generate();
        for alg in SigningAlgorithm::ALL {
            let material = KeyMaterial::generate(alg, &kek).unwrap();
            let public: serde_json::Value = serde_json::from_str(&material.public_jwk).unwrap();
            assert_eq!(public["kid"], material.kid.as_str());
            assert_eq!(public["alg"], alg.as_str());
            assert_eq!(public["use"], "sig");
            assert!(
                public.get("d").is_none(),
                "public JWK must not carry the private part"
            );
            assert_eq!(
                material.sealed_private_key.split('.').count(),
                5,
                "sealed as JWE"
            );

            let key =
                UnsealedKey::open(&material.kid, alg, &material.sealed_private_key, &kek).unwrap();
            let token = key.sign(&claims()).unwrap();
            let header: serde_json::Value = serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(token.split('.').next().unwrap())
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(header["typ"], "at+jwt");
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(header["kid"], material.kid.as_str());
        }
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_kek_and_under_its_own_kid() {
        let kek = KeyEncryptionKey::generate();
        let material = KeyMaterial::generate(SigningAlgorithm::ES256, &kek).unwrap();
        let other = KeyEncryptionKey::generate();
        let alg = SigningAlgorithm::ES256;
        assert!(
            UnsealedKey::open(&material.kid, alg, &material.sealed_private_key, &other).is_err()
        );
        assert!(UnsealedKey::open("another-kid", alg, &material.sealed_private_key, &kek).is_err());
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() {
        // RFC 7638 §3.1's example key and thumbprint.
        let jwk = Jwk::from_bytes(
            br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
