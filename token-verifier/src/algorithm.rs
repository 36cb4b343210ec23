//! The signature algorithms a token may use: asymmetric only, so that holding the public
//! keys never lets anyone mint tokens.

use std::fmt;

use josekit::{
    jwk::Jwk,
    jws::{ES256, ES384, EdDSA, JwsVerifier, PS256, PS384, PS512, RS256, RS384, RS512},
};

/// An accepted JWS algorithm (RFC 7518 §3, RFC 8037, RFC 9864's fully-specified `Ed25519`).
/// `none` and HMAC are not representable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Es256,
    Es384,
    EdDsa,
    /// EdDSA with Ed25519, by its fully-specified name (RFC 9864; what openid-client sends).
    Ed25519,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
}

impl Algorithm {
    /// Every accepted algorithm.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
        Algorithm::Ed25519,
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
    ];

    /// The `alg` name, exactly as JOSE spells it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Ed25519 => "Ed25519",
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
        }
    }

    /// The algorithm named `name` (case-sensitive, as RFC 7515 requires), if it is accepted.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// Whether `jwk` is a key of the type and size this algorithm signs with: EC P-256 for
    /// ES256, P-384 for ES384, OKP Ed25519 (or Ed448, for EdDSA) for EdDSA and Ed25519, RSA of
    /// at least 2048 bits for RS*/PS*.
    pub fn fits(self, jwk: &Jwk) -> bool {
        let member = |name: &str| jwk.parameter(name).and_then(|v| v.as_str());
        match self {
            Algorithm::Es256 => jwk.key_type() == "EC" && member("crv") == Some("P-256"),
            Algorithm::Es384 => jwk.key_type() == "EC" && member("crv") == Some("P-384"),
            Algorithm::EdDsa => {
                jwk.key_type() == "OKP" && matches!(member("crv"), Some("Ed25519" | "Ed448"))
            }
            Algorithm::Ed25519 => jwk.key_type() == "OKP" && member("crv") == Some("Ed25519"),
            Algorithm::Rs256
            | Algorithm::Rs384
            | Algorithm::Rs512
            | Algorithm::Ps256
            | Algorithm::Ps384
            | Algorithm::Ps512 => {
                jwk.key_type() == "RSA"
                    && member("n").is_some_and(|n| n.trim_end_matches('=').len() * 6 >= 2040)
            }
        }
    }

    /// Builds the (comparatively expensive) verifier for one key; `None` when the key does not
    /// fit the algorithm or is not a usable public key.
    pub fn verifier_from_jwk(self, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
        if !self.fits(jwk) {
            return None;
        }
        let verifier: Box<dyn JwsVerifier> = match self {
            Algorithm::Es256 => Box::new(ES256.verifier_from_jwk(jwk).ok()?),
            Algorithm::Es384 => Box::new(ES384.verifier_from_jwk(jwk).ok()?),
            Algorithm::EdDsa | Algorithm::Ed25519 => Box::new(EdDSA.verifier_from_jwk(jwk).ok()?),
            Algorithm::Rs256 => Box::new(RS256.verifier_from_jwk(jwk).ok()?),
            Algorithm::Rs384 => Box::new(RS384.verifier_from_jwk(jwk).ok()?),
            Algorithm::Rs512 => Box::new(RS512.verifier_from_jwk(jwk).ok()?),
            Algorithm::Ps256 => Box::new(PS256.verifier_from_jwk(jwk).ok()?),
            Algorithm::Ps384 => Box::new(PS384.verifier_from_jwk(jwk).ok()?),
            Algorithm::Ps512 => Box::new(PS512.verifier_from_jwk(jwk).ok()?),
        };
        Some(verifier)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_hmac_are_not_accepted_algorithms() {
        for name in ["none", "None", "HS256", "HS384", "HS512", "es256", ""] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn every_accepted_algorithm_round_trips_through_its_name() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
    }
}
