//! Tokens against a verifier that fetched a real JWKS over HTTP: what passes, and every way
//! a forged or misused token must fail.

mod support;

use josekit::jws::{HS256, PS256};
use serde_json::{Value, json};
use support::{SigningKey, TestIssuer, now, raw_token, signed_by, valid};
use token_verifier::{Algorithm, TokenVerifier, VerifyError};

/// An issuer with one key, and a verifier of its tokens.
async fn verifier_of_one_key() -> (TestIssuer, TokenVerifier) {
    let issuer = support::issuer().await;
    let verifier = support::verifier(&issuer).await;
    (issuer, verifier)
}

#[tokio::test]
async fn a_valid_token_yields_the_callers_subject_client_and_scopes() {
    let (issuer, verifier) = verifier_of_one_key().await;

    let claims = verifier.verify(&valid(&issuer).mint()).await.unwrap();

    assert_eq!(claims.subject, "foobarbaz");
    assert_eq!(claims.client_id, "foobarbaz");
    assert_eq!(claims.scopes, ["players:write"]);
    assert!(claims.jti.is_some());
}

#[tokio::test]
async fn tokens_signed_with_each_asymmetric_algorithm_are_accepted() {
    let keys = [
        SigningKey::generate(Algorithm::Es256),
        SigningKey::generate(Algorithm::EdDsa),
        SigningKey::generate(Algorithm::Rs256),
        SigningKey::generate(Algorithm::Ps256),
    ];
    let issuer = support::issuer().await;
    for key in &keys {
        issuer.publish(key);
    }
    let verifier = support::verifier(&issuer).await;

    for key in &keys {
        let outcome = verifier.verify(&valid(&issuer).signed_by(key).mint()).await;
        assert!(outcome.is_ok(), "{}: {outcome:?}", key.algorithm());
    }
}

#[tokio::test]
async fn the_jwks_url_is_discovered_from_the_issuer_metadata() {
    let issuer = support::issuer().await;

    let verifier = support::verifier_with(&issuer, |config| config.jwks_url = None).await;

    assert!(verifier.is_ready());
    assert_eq!(issuer.metadata_fetches(), 1);
    assert!(verifier.verify(&valid(&issuer).mint()).await.is_ok());
}

#[tokio::test]
async fn an_unsigned_token_with_alg_none_is_refused() {
    let (issuer, verifier) = verifier_of_one_key().await;
    let header = json!({"typ": "at+jwt", "alg": "none", "kid": issuer.active_key().kid()});

    for signature in [&b""[..], b"x"] {
        let token = raw_token(&header, &support::claims(&issuer), signature);
        assert_eq!(
            verifier.verify(&token).await,
            Err(VerifyError::UnsupportedAlgorithm)
        );
    }
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_public_key_as_secret_is_refused() {
    let issuer = support::issuer_with(Algorithm::Rs256).await;
    let verifier = support::verifier(&issuer).await;
    let key = issuer.active_key();
    let secrets = [
        key.public_key_pem().to_vec(),
        key.public_jwk().to_string().into_bytes(),
    ];
    let header = json!({"typ": "at+jwt", "alg": "HS256", "kid": key.kid()});

    for secret in secrets {
        let signer = HS256.signer_from_bytes(&secret).unwrap();
        let token = signed_by(&header, &support::claims(&issuer), &signer);
        assert_eq!(
            verifier.verify(&token).await,
            Err(VerifyError::UnsupportedAlgorithm)
        );
    }
}

#[tokio::test]
async fn a_token_under_another_algorithm_than_its_key_names_is_refused() {
    let issuer = support::issuer_with(Algorithm::Rs256).await;
    let verifier = support::verifier(&issuer).await;
    let key = issuer.active_key();

    // The very same RSA key, but PS256: a good signature under an algorithm the JWK does not name.
    let signer = PS256.signer_from_der(key.private_key_der()).unwrap();
    let header = json!({"typ": "at+jwt", "alg": "PS256", "kid": key.kid()});
    let token = signed_by(&header, &support::claims(&issuer), &signer);

    assert_eq!(
        verifier.verify(&token).await,
        Err(VerifyError::AlgorithmMismatch)
    );
}

#[tokio::test]
async fn headers_that_bring_their_own_key_are_refused_even_with_a_good_signature() {
    let (issuer, verifier) = verifier_of_one_key().await;
    let attacker = "https://attacker.example/jwks.json";
    let evil = SigningKey::generate(Algorithm::Es256).public_jwk();

    let cases: [(&str, Value); 4] = [
        ("jku", json!(attacker)),
        ("x5u", json!(attacker)),
        ("jwk", evil),
        ("x5c", json!(["Y2VydA=="])),
    ];
    for (name, value) in cases {
        let token = valid(&issuer).header(name, value).mint();
        assert_eq!(
            verifier.verify(&token).await,
            Err(VerifyError::ForbiddenHeader(name)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_token_whose_type_is_not_at_jwt_is_refused() {
    let (issuer, verifier) = verifier_of_one_key().await;

    for typ in ["JWT", "id_token+jwt", ""] {
        let token = valid(&issuer).header("typ", typ).mint();
        assert_eq!(
            verifier.verify(&token).await,
            Err(VerifyError::WrongType),
            "{typ}"
        );
    }
    let token = valid(&issuer).without_header("typ").mint();
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::WrongType));
}

#[tokio::test]
async fn the_media_type_form_of_at_jwt_is_accepted() {
    let (issuer, verifier) = verifier_of_one_key().await;

    let token = valid(&issuer).header("typ", "application/AT+JWT").mint();

    assert!(verifier.verify(&token).await.is_ok());
}

/// Signs the issuer's usual claims after `edit`, and verifies.
async fn verify_edited(
    edit: impl for<'a> FnOnce(support::TokenBuilder<'a>) -> support::TokenBuilder<'a>,
) -> Result<token_verifier::VerifiedClaims, VerifyError> {
    let (issuer, verifier) = verifier_of_one_key().await;
    verifier.verify(&edit(valid(&issuer)).mint()).await
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let outcome = verify_edited(|token| token.claim("iss", "http://127.0.0.1:1")).await;
    assert_eq!(outcome, Err(VerifyError::WrongIssuer));
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let outcome = verify_edited(|token| token.audience("billing-api")).await;
    assert_eq!(outcome, Err(VerifyError::WrongAudience));
}

#[tokio::test]
async fn an_audience_array_naming_us_is_accepted() {
    let outcome = verify_edited(|token| token.audiences(&["billing-api", "players-api"])).await;
    assert!(outcome.is_ok());
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let outcome = verify_edited(|token| token.claim("exp", now() - 120)).await;
    assert_eq!(outcome, Err(VerifyError::Expired));
    let outcome = verify_edited(|token| token.expired()).await;
    assert_eq!(outcome, Err(VerifyError::Expired));
}

#[tokio::test]
async fn a_token_valid_only_in_the_future_is_refused() {
    let outcome = verify_edited(|token| token.claim("nbf", now() + 600)).await;
    assert_eq!(outcome, Err(VerifyError::NotYetValid));
    let outcome = verify_edited(|token| token.not_yet_valid()).await;
    assert_eq!(outcome, Err(VerifyError::NotYetValid));
}

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let outcome = verify_edited(|token| token.without_claim("exp")).await;
    assert_eq!(outcome, Err(VerifyError::MissingClaim("exp")));
}

#[tokio::test]
async fn a_tampered_payload_breaks_the_signature() {
    let (issuer, verifier) = verifier_of_one_key().await;
    let token = valid(&issuer).mint();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = support::claims(&issuer);
    claims["scope"] = json!("players:write admin");
    parts[1] = raw_token(&json!({}), &claims, b"")
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();

    let outcome = verifier.verify(&parts.join(".")).await;

    assert_eq!(outcome, Err(VerifyError::BadSignature));
}

#[tokio::test]
async fn an_oversized_token_is_refused() {
    let (issuer, verifier) = verifier_of_one_key().await;

    let token = valid(&issuer).claim("padding", "x".repeat(9 * 1024)).mint();

    assert_eq!(verifier.verify(&token).await, Err(VerifyError::TooLarge));
}

#[tokio::test]
async fn a_token_signed_by_a_key_the_issuer_never_published_is_refused() {
    let (issuer, verifier) = verifier_of_one_key().await;
    let stranger = SigningKey::generate(Algorithm::Es256);

    let outcome = verifier
        .verify(&valid(&issuer).signed_by(&stranger).mint())
        .await;

    assert_eq!(outcome, Err(VerifyError::UnknownKey));
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_a_published_kid_is_refused() {
    let (issuer, verifier) = verifier_of_one_key().await;
    let impostor = SigningKey::generate(Algorithm::Es256).with_kid(issuer.active_key().kid());

    let outcome = verifier
        .verify(&valid(&issuer).signed_by(&impostor).mint())
        .await;

    assert_eq!(outcome, Err(VerifyError::BadSignature));
}

#[tokio::test]
async fn garbage_is_malformed() {
    let (_issuer, verifier) = verifier_of_one_key().await;

    for token in ["garbage", "a.b.c", "....", "bm90IGpzb24.e30.c2ln"] {
        assert_eq!(
            verifier.verify(token).await,
            Err(VerifyError::Malformed),
            "{token}"
        );
    }
}
