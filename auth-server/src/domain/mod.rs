//! Domain types and rules of the authorization server: no web framework, no database.

mod client;
mod scope;
mod token;

pub use client::{Audience, Client, ClientId, GrantType, InvalidName, NewClient};
pub use scope::{InvalidScope, Scope, ScopeSet};
pub use token::{AccessTokenClaims, TokenRequestTarget, choose_audience};
