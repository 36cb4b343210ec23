//! Token exchange (RFC 8693): an API holding a caller's access token gets a token for another
//! API, on behalf of that caller. The authenticated client is the actor; the subject token must
//! be an active access token of this issuer meant for the actor's API (its one audience);
//! the target must be one the actor may exchange to. Nothing grows: the scope is within the
//! subject token's, the actor's and the target API's, the token lives no longer than the
//! subject token, the `sub` stays the subject's, and `act` names the actor (nesting the subject
//! token's own `act`).

use super::introspection::TokenLookup;
use super::{IssuedToken, Minter, TokenError, TokenParameters, api_takes, granted_scope};
use crate::domain::{Actor, Audience, Client, GrantType, ScopeSet, choose_exchange_target};

/// RFC 8693 §3: the token type of an access token (what is taken and what is issued).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Longest `act` chain issued; token-verifier refuses deeper ones.
const MAX_ACTORS: usize = 8;

pub(super) async fn issue(
    lookup: &TokenLookup,
    minter: &Minter,
    actor: &Client,
    params: &TokenParameters,
) -> Result<IssuedToken, TokenError> {
    let request = |why: &str| TokenError::InvalidRequest(why.to_owned());
    let subject_token = params
        .subject_token
        .as_deref()
        .filter(|token| !token.is_empty())
        .ok_or_else(|| request("subject_token is required"))?;
    match params.subject_token_type.as_deref() {
        Some(ACCESS_TOKEN_TYPE) => {}
        None => return Err(request("subject_token_type is required")),
        Some(_) => {
            return Err(request(
                "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
            ));
        }
    }
    if params.actor_token.is_some() || params.actor_token_type.is_some() {
        return Err(request(
            "actor_token is not accepted: the authenticated client is the actor",
        ));
    }
    if !matches!(
        params.requested_token_type.as_deref(),
        None | Some(ACCESS_TOKEN_TYPE)
    ) {
        return Err(request(
            "requested_token_type must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    let target = choose_exchange_target(actor, &params.target).ok_or(TokenError::InvalidTarget)?;
    api_takes(&target, GrantType::TokenExchange)?;

    // RFC 8693 §2.2.2: a subject token that is invalid or unacceptable is `invalid_request`.
    let subject = lookup
        .live_access_token(subject_token)
        .await?
        .ok_or_else(|| request("subject_token is not an active access token of this issuer"))?;
    // The actor's one audience is the API it is (admin.rs holds exchanging clients to one).
    if actor.audiences.first().map(Audience::as_str) != Some(subject.aud.as_str()) {
        return Err(request("subject_token is not meant for this client's API"));
    }
    // Its own token would turn `exchange_to` into more audiences for itself.
    if subject.sub == actor.id.as_str() {
        return Err(request("subject_token is this client's own token"));
    }
    let act = Actor {
        sub: actor.id.as_str().to_owned(),
        act: subject.act.map(Box::new),
    };
    if act.depth() > MAX_ACTORS {
        return Err(request("subject_token has too long a chain of actors"));
    }

    let subject_scope = ScopeSet::parse(&subject.scope)
        .map_err(|_| request("subject_token is not an active access token of this issuer"))?;
    // No wider than the subject token's, than the actor's, nor than what the target defines.
    let allowed = target.scopes_within(&subject_scope.intersection(&actor.scopes));
    let scope = granted_scope(params.scope.as_deref(), &allowed)?;
    if scope.is_empty() {
        return Err(TokenError::InvalidScope(
            "the subject token and this client have no scope in common".into(),
        ));
    }
    minter.mint_for_subject(&subject.sub, actor, &target, scope, subject.exp, act)
}
