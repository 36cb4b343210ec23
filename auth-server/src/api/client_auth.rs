//! Client authentication as the OAuth endpoints receive it: HTTP Basic (`client_secret_basic`)
//! or `client_id` + `client_secret` in the body (`client_secret_post`), never both; and the
//! request's source address for throttling.

use std::net::IpAddr;

use poem::Request;
use poem::http::header;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Basic;

use crate::grants::{AuthMethod, ClientCredentials, RequestSource};

/// `client_secret_basic`: `client_id:client_secret`, each form-urlencoded, then base64.
#[derive(SecurityScheme)]
#[oai(ty = "basic", rename = "client_secret_basic")]
pub struct ClientSecretBasic(Basic);

/// HTTP Basic, or credentials in the body (`client_secret_post`).
#[derive(SecurityScheme)]
pub enum ClientAuth {
    Basic(ClientSecretBasic),
    #[oai(fallback)]
    InBody,
}

/// Why the presented client credentials cannot even be tried.
pub enum CredentialsError {
    /// Two methods at once, or a body client_id that differs from the Basic one.
    Conflicting(&'static str),
    /// An Authorization header that is not valid Basic (refused rather than ignored).
    MalformedBasic,
}

/// The one set of credentials the request carries, or `None` if it carries none.
pub fn client_credentials(
    auth: ClientAuth,
    request: &Request,
    body_client_id: Option<&str>,
    body_client_secret: Option<&str>,
) -> Result<Option<ClientCredentials>, CredentialsError> {
    match auth {
        ClientAuth::Basic(ClientSecretBasic(basic)) => {
            if body_client_secret.is_some() {
                return Err(CredentialsError::Conflicting(
                    "use one client authentication method: HTTP Basic or client_secret in the body",
                ));
            }
            let (Some(id), Some(secret)) =
                (form_decode(&basic.username), form_decode(&basic.password))
            else {
                return Err(CredentialsError::MalformedBasic);
            };
            if body_client_id.is_some_and(|body_id| body_id != id) {
                return Err(CredentialsError::Conflicting(
                    "client_id differs from the HTTP Basic user",
                ));
            }
            Ok(Some(ClientCredentials {
                client_id: id,
                client_secret: secret,
                method: AuthMethod::Basic,
            }))
        }
        ClientAuth::InBody if request.headers().contains_key(header::AUTHORIZATION) => {
            Err(CredentialsError::MalformedBasic)
        }
        ClientAuth::InBody => match (body_client_id, body_client_secret) {
            (Some(id), Some(secret)) => Ok(Some(ClientCredentials {
                client_id: id.to_owned(),
                client_secret: secret.to_owned(),
                method: AuthMethod::Post,
            })),
            _ => Ok(None),
        },
    }
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The peer address, or with `trust_forwarded_for` the last `X-Forwarded-For` entry (the one
/// the trusted proxy appended).
pub fn request_source(request: &Request, trust_forwarded_for: bool) -> RequestSource {
    let forwarded = trust_forwarded_for
        .then(|| {
            request
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back()
        })
        .flatten();
    let peer = request.remote_addr().as_socket_addr().map(|addr| addr.ip());
    RequestSource {
        address: forwarded.or(peer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_url_decoded() {
        assert_eq!(form_decode("a%3Ab+c%25").unwrap(), "a:b c%");
        assert!(form_decode("%FF").is_none());
    }
}
