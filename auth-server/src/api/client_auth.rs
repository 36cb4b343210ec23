//! Client authentication as the OAuth endpoints receive it: HTTP Basic (`client_secret_basic`),
//! `client_id` + `client_secret` in the body (`client_secret_post`), or a signed JWT in
//! `client_assertion` (`private_key_jwt`, federated identities), exactly one of them; and the
//! request's source address for throttling.

use poem::Request;
use poem::http::header;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Basic;

use crate::grants::{
    AuthMethod, ClientAssertion, ClientCredentials, Credentials, JWT_BEARER, RequestSource,
};
use crate::net::TrustedProxies;

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

/// What the body says about client authentication.
#[derive(Clone, Copy, Default)]
pub struct BodyCredentials<'a> {
    pub client_id: Option<&'a str>,
    pub client_secret: Option<&'a str>,
    pub client_assertion: Option<&'a str>,
    pub client_assertion_type: Option<&'a str>,
}

/// The one set of credentials the request carries, or `None` if it carries none.
pub fn client_credentials(
    auth: ClientAuth,
    request: &Request,
    body: BodyCredentials<'_>,
) -> Result<Option<Credentials>, CredentialsError> {
    let BodyCredentials {
        client_id: body_client_id,
        client_secret: body_client_secret,
        client_assertion,
        client_assertion_type,
    } = body;
    match (client_assertion, client_assertion_type) {
        (None, None) => {}
        (Some(assertion), Some(JWT_BEARER)) => {
            if matches!(auth, ClientAuth::Basic(_))
                || body_client_secret.is_some()
                || request.headers().contains_key(header::AUTHORIZATION)
            {
                return Err(CredentialsError::Conflicting(
                    "use one client authentication method: a client_assertion, HTTP Basic or \
                     client_secret",
                ));
            }
            return Ok(Some(Credentials::Assertion(ClientAssertion {
                client_id: body_client_id.map(str::to_owned),
                assertion: assertion.to_owned(),
            })));
        }
        (Some(_), Some(_)) => {
            return Err(CredentialsError::Conflicting(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(CredentialsError::Conflicting(
                "client_assertion and client_assertion_type go together",
            ));
        }
    }
    secret_credentials(auth, request, body_client_id, body_client_secret)
        .map(|credentials| credentials.map(Credentials::Secret))
}

fn secret_credentials(
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

/// The client's address: the peer, or behind trusted proxies the first untrusted address in
/// `X-Forwarded-For`, walked from the right (see `crate::net`).
pub fn request_source(request: &Request, proxies: &TrustedProxies) -> RequestSource {
    let peer = request.remote_addr().as_socket_addr().map(|addr| addr.ip());
    let forwarded: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    RequestSource {
        address: proxies.client_address(peer, forwarded.into_iter()),
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
