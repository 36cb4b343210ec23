//! Stored hashes made otherwise than hashes are made now (a hash given in the configuration with
//! other argon2 parameters, say) answer at another speed than every other id and than the dummy
//! an unknown id is checked against: a timing oracle on which ids exist. After a successful
//! check the secret is at hand, so such a hash is replaced, in the background, by one with the
//! current parameters. The replacement is a compare-and-set on the old hash, so it never undoes
//! a rotation made meanwhile.

use std::sync::Arc;

use crate::clock::now_secs;
use crate::crypto::{hash_secret, needs_rehash};
use crate::domain::{Client, User};
use crate::stores::{ClientStore, UserStore};

/// Rehashes `client`'s secret if its stored hash is not made as hashes are now.
pub(super) fn client_secret(clients: &Arc<dyn ClientStore>, client: &Client, presented: &str) {
    if !needs_rehash(&client.secret_hash) {
        return;
    }
    let (clients, id, old) = (
        clients.clone(),
        client.id.clone(),
        client.secret_hash.clone(),
    );
    let presented = presented.to_owned();
    tokio::spawn(async move {
        let Some(new) = fresh_hash(presented).await else {
            return;
        };
        match clients
            .replace_secret_hash(&id, &old, &new, now_secs())
            .await
        {
            Ok(true) => tracing::info!(client_id = id.as_str(), "client secret rehashed"),
            Ok(false) => {}
            Err(err) => tracing::warn!(error = %err, "rehashing a client secret failed"),
        }
    });
}

/// Rehashes `user`'s password if its stored hash is not made as hashes are now.
pub(super) fn password(users: &Arc<dyn UserStore>, user: &User, presented: &str) {
    if !needs_rehash(&user.password_hash) {
        return;
    }
    let (users, name, old) = (
        users.clone(),
        user.username.clone(),
        user.password_hash.clone(),
    );
    let presented = presented.to_owned();
    tokio::spawn(async move {
        let Some(new) = fresh_hash(presented).await else {
            return;
        };
        match users
            .replace_password_hash(&name, &old, &new, now_secs())
            .await
        {
            Ok(true) => tracing::info!(username = name.as_str(), "password rehashed"),
            Ok(false) => {}
            Err(err) => tracing::warn!(error = %err, "rehashing a password failed"),
        }
    });
}

async fn fresh_hash(secret: String) -> Option<String> {
    match tokio::task::spawn_blocking(move || hash_secret(&secret)).await {
        Ok(Ok(hash)) => Some(hash),
        _ => {
            tracing::warn!("rehashing: hashing failed");
            None
        }
    }
}
