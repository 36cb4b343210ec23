//! The signature algorithms a token may use: asymmetric only, so that holding the public
//! keys never lets anyone mint tokens.

use std::fmt;

use josekit::{
    jwk::Jwk,
    jws::{ES256, ES384, EdDSA, JwsVerifier, PS256, PS384, PS512, RS256, RS384, RS512},
};

/// An accepted JWS algorithm (RFC 7518 §3, RFC 8037). `none` and HMAC are not representable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Es256,
    Es384,
    EdDsa,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
}

impl Algorithm {
    /// Every accepted algorithm.
    pub const ALL: [Algorithm; 9] = [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
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

    /// Builds the (comparatively expensive) verifier for one published key.
    pub(crate) fn verifier_from_jwk(
        self,
        jwk: &Jwk,
    ) -> Result<Box<dyn JwsVerifier>, josekit::JoseError> {
        Ok(match self {
            Algorithm::Es256 => Box::new(ES256.verifier_from_jwk(jwk)?),
            Algorithm::Es384 => Box::new(ES384.verifier_from_jwk(jwk)?),
            Algorithm::EdDsa => Box::new(EdDSA.verifier_from_jwk(jwk)?),
            Algorithm::Rs256 => Box::new(RS256.verifier_from_jwk(jwk)?),
            Algorithm::Rs384 => Box::new(RS384.verifier_from_jwk(jwk)?),
            Algorithm::Rs512 => Box::new(RS512.verifier_from_jwk(jwk)?),
            Algorithm::Ps256 => Box::new(PS256.verifier_from_jwk(jwk)?),
            Algorithm::Ps384 => Box::new(PS384.verifier_from_jwk(jwk)?),
            Algorithm::Ps512 => Box::new(PS512.verifier_from_jwk(jwk)?),
        })
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
