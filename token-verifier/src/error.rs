//! Why a token was refused. The `Display` text is short, fixed and safe to put on the wire
//! (`error_description`): it never contains the token or anything taken from it.

/// A token that did not pass verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("token is too large")]
    TooLarge,
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not accepted")]
    UnsupportedAlgorithm,
    #[error("token header parameter {0} is not accepted")]
    ForbiddenHeader(&'static str),
    #[error("token type must be at+jwt")]
    WrongType,
    #[error("token has no key id")]
    MissingKeyId,
    #[error("token signing key is unknown")]
    UnknownKey,
    #[error("token algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token issuer is not trusted")]
    WrongIssuer,
    #[error("token is not meant for this audience")]
    WrongAudience,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token claim {0} is missing")]
    MissingClaim(&'static str),
    #[error("token claim {0} is invalid")]
    InvalidClaim(&'static str),
    #[error("token is DPoP-bound: send it with the DPoP scheme and a proof")]
    DpopBound,
    #[error("token is not DPoP-bound")]
    NotDpopBound,
}
