//! The client credentials grant (RFC 6749 §4.4): the client is the subject. No refresh token
//! (RFC 6749 §4.4.3): the client can always ask again.

use super::{IssuedToken, Minter, TokenError, TokenParameters, api_takes, granted_scope};
use crate::domain::{Client, GrantType, choose_audience};

pub(super) fn issue(
    minter: &Minter,
    client: &Client,
    params: &TokenParameters,
) -> Result<IssuedToken, TokenError> {
    let target = choose_audience(client, &params.target).ok_or(TokenError::InvalidTarget)?;
    api_takes(&target, GrantType::ClientCredentials)?;
    let scope = granted_scope(
        params.scope.as_deref(),
        &target.scopes_within(&client.scopes),
    )?;
    minter.mint(client.id.as_str(), client, &target, scope)
}
