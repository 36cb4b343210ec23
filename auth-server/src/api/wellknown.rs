//! Discovery: the JWKS (RFC 7517) and the authorization server metadata (RFC 8414).

use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use token_verifier::dpop::PROOF_ALGORITHMS;

use super::ApiTags;
use super::errors::Problem;
use crate::domain::GrantType;
use crate::grants::ASSERTION_ALGORITHMS;

/// What discovery publishes, kept in memory by the rest of the server.
pub trait Discovery: Send + Sync {
    /// The published key set, as JSON text.
    fn jwks(&self) -> Arc<String>;
    /// Every scope some client may be granted.
    fn scopes_supported(&self) -> Arc<Vec<String>>;
}

/// A public JSON Web Key (RFC 7517); which members appear depends on `kty`.
#[derive(Debug, Clone, Object, Deserialize)]
pub struct PublicJwk {
    /// `EC`, `OKP` or `RSA`.
    pub kty: String,
    /// RFC 7638 thumbprint of the key.
    pub kid: String,
    /// `ES256`, `EdDSA`, `RS256` or `PS256`: the only algorithm to accept with this key.
    pub alg: String,
    /// Always `sig`.
    #[oai(rename = "use")]
    #[serde(rename = "use")]
    pub key_use: String,
    #[oai(skip_serializing_if_is_none)]
    pub crv: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub x: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub y: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub n: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub e: Option<String>,
}

#[derive(Debug, Clone, Object, Deserialize)]
pub struct JsonWebKeySet {
    pub keys: Vec<PublicJwk>,
}

/// RFC 8414 authorization server metadata.
#[derive(Debug, Clone, Object)]
pub struct ServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Algorithms a `private_key_jwt` or federated client assertion may be signed with.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 9449 §5.1: algorithms a DPoP proof may be signed with.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Every scope some client may be granted.
    pub scopes_supported: Vec<String>,
    /// Empty: this server has no authorization endpoint.
    pub response_types_supported: Vec<String>,
    pub service_documentation: String,
}

fn auth_methods() -> Vec<String> {
    vec![
        "client_secret_basic".into(),
        "client_secret_post".into(),
        "private_key_jwt".into(),
    ]
}

#[derive(ApiResponse)]
pub enum JwksResponse {
    /// The keys that verify this server's tokens: the active key, the next one, and recently
    /// retired ones.
    #[oai(status = 200)]
    Ok(Json<JsonWebKeySet>, #[oai(header = "Cache-Control")] String),
    /// `server_error`.
    #[oai(status = 500, content_type = "application/problem+json")]
    ServerError(Json<Problem>),
}

#[derive(ApiResponse)]
pub enum MetadataResponse {
    #[oai(status = 200)]
    Ok(
        Json<Box<ServerMetadata>>,
        #[oai(header = "Cache-Control")] String,
    ),
}

pub struct WellKnownApi {
    pub discovery: Arc<dyn Discovery>,
    pub issuer: String,
    pub jwks_max_age_secs: u32,
}

impl WellKnownApi {
    fn metadata(&self) -> MetadataResponse {
        let issuer = &self.issuer;
        MetadataResponse::Ok(
            Json(Box::new(ServerMetadata {
                issuer: issuer.clone(),
                token_endpoint: format!("{issuer}/auth/token"),
                jwks_uri: format!("{issuer}/.well-known/jwks.json"),
                introspection_endpoint: format!("{issuer}/auth/introspect"),
                revocation_endpoint: format!("{issuer}/auth/revoke"),
                grant_types_supported: GrantType::ALL
                    .iter()
                    .map(|grant| grant.as_str().to_owned())
                    .collect(),
                token_endpoint_auth_methods_supported: auth_methods(),
                introspection_endpoint_auth_methods_supported: auth_methods(),
                revocation_endpoint_auth_methods_supported: auth_methods(),
                token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS
                    .iter()
                    .map(|a| a.name().to_owned())
                    .collect(),
                dpop_signing_alg_values_supported: PROOF_ALGORITHMS
                    .iter()
                    .map(|a| a.name().to_owned())
                    .collect(),
                scopes_supported: self.discovery.scopes_supported().as_ref().clone(),
                response_types_supported: Vec::new(),
                service_documentation: format!("{issuer}/docs"),
            })),
            format!("public, max-age={}", self.jwks_max_age_secs),
        )
    }
}

#[OpenApi(response_header(
    name = "X-Request-Id",
    ty = "String",
    description = "The request id (yours if you sent a sane one); quote it when reporting a problem."
))]
impl WellKnownApi {
    /// The JSON Web Key Set.
    ///
    /// Verify access tokens with the key whose `kid` the token names, and only with the `alg`
    /// that key names. Cache it for `max-age`; on an unknown `kid`, fetch it again.
    #[oai(
        path = "/.well-known/jwks.json",
        method = "get",
        tag = "ApiTags::Discovery",
        operation_id = "getJwks"
    )]
    async fn jwks(&self) -> JwksResponse {
        match serde_json::from_str::<JsonWebKeySet>(&self.discovery.jwks()) {
            Ok(set) => JwksResponse::Ok(
                Json(set),
                format!("public, max-age={}", self.jwks_max_age_secs),
            ),
            Err(err) => {
                tracing::error!(error = %err, "stored public keys do not parse");
                JwksResponse::ServerError(Json(Problem::internal()))
            }
        }
    }

    /// Authorization server metadata (RFC 8414).
    #[oai(
        path = "/.well-known/oauth-authorization-server",
        method = "get",
        tag = "ApiTags::Discovery",
        operation_id = "getServerMetadata"
    )]
    async fn oauth_metadata(&self) -> MetadataResponse {
        self.metadata()
    }

    /// The same metadata, where OpenID Connect discovery looks for it.
    #[oai(
        path = "/.well-known/openid-configuration",
        method = "get",
        tag = "ApiTags::Discovery",
        operation_id = "getOpenidConfiguration"
    )]
    async fn openid_configuration(&self) -> MetadataResponse {
        self.metadata()
    }
}
