//! Client authentication, throttled per client id and source address. An unknown client costs
//! the same work as a wrong secret: no timing oracle on client ids.

use std::sync::Arc;

use super::assertion::{AssertionVerifier, VerifyAssertionError};
use super::{AuthMethod, ClientCredentials, Credentials, RequestSource, TokenError};
use crate::crypto::SecretVerifier;
use crate::domain::{Client, ClientAuthentication, ClientId};
use crate::stores::ClientStore;
use crate::throttle::{Throttle, ThrottleKey};

pub struct ClientAuthenticator {
    clients: Arc<dyn ClientStore>,
    secrets: Arc<SecretVerifier>,
    throttle: Arc<Throttle>,
    assertions: Arc<AssertionVerifier>,
}

impl ClientAuthenticator {
    pub fn new(
        clients: Arc<dyn ClientStore>,
        secrets: Arc<SecretVerifier>,
        throttle: Arc<Throttle>,
        assertions: Arc<AssertionVerifier>,
    ) -> Self {
        Self {
            clients,
            secrets,
            throttle,
            assertions,
        }
    }

    /// The client, if the credentials prove it: a secret (see `authenticate_secret`) or an
    /// assertion (`private_key_jwt`, federated). A client authenticates only by its own method.
    pub async fn authenticate(
        &self,
        credentials: Option<Credentials>,
        source: RequestSource,
    ) -> Result<Arc<Client>, TokenError> {
        match credentials {
            Some(Credentials::Assertion(assertion)) => {
                self.authenticate_assertion(&assertion.assertion, assertion.client_id, source)
                    .await
            }
            Some(Credentials::Secret(credentials)) => {
                self.authenticate_secret(Some(credentials), source).await
            }
            None => self.authenticate_secret(None, source).await,
        }
    }

    /// RFC 7523 §2.2: the client named by `client_id`, or else by the assertion's `sub` (when
    /// `iss` is the same), proven by the assertion.
    ///
    /// A signature cannot be guessed, so failures are throttled per source address only, to
    /// bound what a stream of forged assertions costs (a signature check each, a key fetch for
    /// an unknown `kid`); a count per client id would let anyone who can reach the endpoint lock
    /// a keyed client out.
    async fn authenticate_assertion(
        &self,
        assertion: &str,
        client_id: Option<String>,
        source: RequestSource,
    ) -> Result<Arc<Client>, TokenError> {
        let keys = source.keys(None);
        self.throttle
            .check(&keys)
            .await
            .map_err(|retry_after| TokenError::Throttled { retry_after })?;
        let result = self.verify_assertion(assertion, client_id).await;
        if matches!(result, Err(TokenError::InvalidClient { .. })) {
            self.throttle.record_failure(&keys).await;
        }
        result
    }

    async fn verify_assertion(
        &self,
        assertion: &str,
        client_id: Option<String>,
    ) -> Result<Arc<Client>, TokenError> {
        let refused = || TokenError::InvalidClient {
            method: Some(AuthMethod::Assertion),
        };
        let id = client_id
            .or_else(|| AssertionVerifier::claimed_client_id(assertion))
            .and_then(|id| ClientId::parse(&id).ok())
            .ok_or_else(refused)?;
        let Some(client) = self.clients.find(&id).await? else {
            tracing::debug!(client_id = %id, "client assertion for an unknown client");
            return Err(refused());
        };
        match self
            .assertions
            .verify(&client, assertion, crate::clock::now_secs())
            .await
        {
            Ok(()) => Ok(client),
            Err(VerifyAssertionError::Store(err)) => Err(err.into()),
            Err(VerifyAssertionError::Refused(why)) => {
                tracing::debug!(client_id = %id, reason = %why, "client assertion refused");
                Err(refused())
            }
        }
    }

    /// The client, if the credentials prove it. A secret verified before is answered from
    /// memory without throttling (the client has proven itself); anything else (an unknown id, a
    /// secret not remembered) is an unproven attempt: throttled per client id and address, and
    /// checked with argon2id, against a dummy hash for unknown ids.
    async fn authenticate_secret(
        &self,
        credentials: Option<ClientCredentials>,
        source: RequestSource,
    ) -> Result<Arc<Client>, TokenError> {
        let credentials = credentials.ok_or(TokenError::InvalidClient { method: None })?;
        let id = ClientId::parse(&credentials.client_id).ok();
        let client = match &id {
            Some(id) => self.clients.find(id).await?,
            None => None,
        }
        // A secretless client has no secret to prove: checked against the dummy hash, like an
        // unknown id.
        .filter(|client| client.authentication == ClientAuthentication::Secret);
        if let Some(client) = &client
            && self
                .secrets
                .is_remembered(&client.secret_hash, &credentials.client_secret)
        {
            return Ok(client.clone());
        }

        let keys = source.keys(
            id.as_ref()
                .map(|id| ThrottleKey::Client(id.as_str().to_owned(), source.bucket())),
        );
        self.throttle
            .check(&keys)
            .await
            .map_err(|retry_after| TokenError::Throttled { retry_after })?;
        let verified = self
            .secrets
            .verify(
                client.as_ref().map(|c| c.secret_hash.as_str()),
                &credentials.client_secret,
            )
            .await
            .map_err(TokenError::internal)?;
        match client {
            Some(client) if verified => {
                if let Some(key) = keys.iter().find(|k| matches!(k, ThrottleKey::Client(..))) {
                    self.throttle.record_success(key).await;
                }
                super::rehash::client_secret(&self.clients, &client, &credentials.client_secret);
                Ok(client)
            }
            _ => {
                self.throttle.record_failure(&keys).await;
                // Only a well-formed id is logged: the raw value is attacker-controlled.
                tracing::debug!(
                    client_id = id.as_ref().map(ClientId::as_str),
                    "client authentication failed"
                );
                Err(TokenError::InvalidClient {
                    method: Some(credentials.method),
                })
            }
        }
    }
}
