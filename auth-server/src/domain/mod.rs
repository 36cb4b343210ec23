//! Domain types and rules of the authorization server: no web framework, no database.

mod client;
mod scope;
mod token;
mod user;

pub use client::{
    Audience, Client, ClientAuthentication, ClientId, ClientKeys, GrantType, InvalidClaims,
    InvalidName, NewClient, StaticClaims, TOKEN_EXCHANGE,
};
pub use scope::{InvalidScope, Scope, ScopeSet};
pub use token::{AccessTokenClaims, Actor, Confirmation, TokenRequestTarget, choose_audience};
pub use user::{User, Username};
