//! Tokens against a verifier that fetched a real JWKS over HTTP: what passes, and every way
//! a forged or misused token must fail.

mod support;

use josekit::jws::{HS256, JwsHeader};
use serde_json::{Value, json};
use support::{SigningKey, TestIssuer, now, raw_token};
use token_verifier::VerifyError;

/// A verifier of `issuer` and one key it publishes.
async fn verifier_of_one_key(kid: &str) -> (SigningKey, TestIssuer, token_verifier::TokenVerifier) {
    let key = SigningKey::es256(kid);
    let issuer = TestIssuer::start(&[&key]).await;
    let verifier = issuer.verifier().await;
    (key, issuer, verifier)
}

#[tokio::test]
async fn a_valid_token_yields_the_callers_subject_client_and_scopes() {
    let (key, issuer, verifier) = verifier_of_one_key("valid").await;

    let claims = verifier.verify(&key.sign(&issuer.claims())).await.unwrap();

    assert_eq!(claims.subject, "foobarbaz");
    assert_eq!(claims.client_id, "foobarbaz");
    assert_eq!(claims.scopes, ["players:write"]);
    assert!(claims.jti.is_some());
}

#[tokio::test]
async fn tokens_signed_with_each_asymmetric_algorithm_are_accepted() {
    let keys = [
        SigningKey::es256("alg-es"),
        SigningKey::eddsa("alg-ed"),
        SigningKey::rs256("alg-rs"),
        SigningKey::ps256("alg-ps"),
    ];
    let issuer = TestIssuer::start(&keys.iter().collect::<Vec<_>>()).await;
    let verifier = issuer.verifier().await;

    for key in &keys {
        let outcome = verifier.verify(&key.sign(&issuer.claims())).await;
        assert!(outcome.is_ok(), "{}: {outcome:?}", key.alg);
    }
}

#[tokio::test]
async fn the_jwks_url_is_discovered_from_the_issuer_metadata() {
    let key = SigningKey::es256("discovered");
    let issuer = TestIssuer::start(&[&key]).await;

    let verifier = issuer.verifier_with(|config| config.jwks_url = None).await;

    assert!(verifier.is_ready());
    assert_eq!(issuer.metadata_fetches(), 1);
    assert!(verifier.verify(&key.sign(&issuer.claims())).await.is_ok());
}

#[tokio::test]
async fn an_unsigned_token_with_alg_none_is_refused() {
    let (key, issuer, verifier) = verifier_of_one_key("none").await;
    let header = json!({"typ": "at+jwt", "alg": "none", "kid": key.kid});

    for signature in [&b""[..], b"x"] {
        let token = raw_token(&header, &issuer.claims(), signature);
        assert_eq!(
            verifier.verify(&token).await,
            Err(VerifyError::UnsupportedAlgorithm)
        );
    }
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_public_key_as_secret_is_refused() {
    let key = SigningKey::rs256("confusion");
    let issuer = TestIssuer::start(&[&key]).await;
    let verifier = issuer.verifier().await;
    let secrets = [
        key.public_pem.clone(),
        key.public_jwk().to_string().into_bytes(),
    ];

    for secret in secrets {
        let signer = HS256.signer_from_bytes(&secret).unwrap();
        let token = key.sign_full(&issuer.claims(), |_| {}, &signer);
        assert_eq!(
            verifier.verify(&token).await,
            Err(VerifyError::UnsupportedAlgorithm)
        );
    }
}

#[tokio::test]
async fn a_token_under_another_algorithm_than_its_key_names_is_refused() {
    let key = SigningKey::rs256("rs-only");
    let issuer = TestIssuer::start(&[&key]).await;
    let verifier = issuer.verifier().await;

    // The very same RSA key, but PS256: a good signature under an algorithm the JWK does not name.
    let token = key.sign_full(&issuer.claims(), |_| {}, key.signer("PS256").as_ref());

    assert_eq!(
        verifier.verify(&token).await,
        Err(VerifyError::AlgorithmMismatch)
    );
}

/// A change made to a token's header before signing.
type HeaderEdit<'a> = Box<dyn Fn(&mut JwsHeader) + 'a>;

#[tokio::test]
async fn headers_that_bring_their_own_key_are_refused_even_with_a_good_signature() {
    let (key, issuer, verifier) = verifier_of_one_key("attack-headers").await;
    let attacker = "https://attacker.example/jwks.json";
    let evil = SigningKey::es256("evil").jwk();

    let cases: Vec<(&str, HeaderEdit)> = vec![
        ("jku", Box::new(|header| header.set_jwk_set_url(attacker))),
        ("x5u", Box::new(|header| header.set_x509_url(attacker))),
        ("jwk", Box::new(|header| header.set_jwk(evil.clone()))),
        (
            "x5c",
            Box::new(|header| header.set_x509_certificate_chain(&vec![b"cert".to_vec()])),
        ),
    ];
    for (name, edit) in cases {
        let token = key.sign_with_header(&issuer.claims(), |header| edit(header));
        assert_eq!(
            verifier.verify(&token).await,
            Err(VerifyError::ForbiddenHeader(name)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_token_whose_type_is_not_at_jwt_is_refused() {
    let (key, issuer, verifier) = verifier_of_one_key("typ").await;

    for typ in ["JWT", "id_token+jwt", ""] {
        let token = key.sign_with_header(&issuer.claims(), |header| header.set_token_type(typ));
        assert_eq!(
            verifier.verify(&token).await,
            Err(VerifyError::WrongType),
            "{typ}"
        );
    }
    let token = key.sign_with_header(&issuer.claims(), |header| {
        header.set_claim("typ", None).unwrap();
    });
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::WrongType));
}

#[tokio::test]
async fn the_media_type_form_of_at_jwt_is_accepted() {
    let (key, issuer, verifier) = verifier_of_one_key("typ-media").await;

    let token = key.sign_with_header(&issuer.claims(), |header| {
        header.set_token_type("application/AT+JWT");
    });

    assert!(verifier.verify(&token).await.is_ok());
}

/// Signs the issuer's usual claims after `edit`, and verifies.
async fn verify_edited(
    edit: impl FnOnce(&mut Value),
) -> Result<token_verifier::VerifiedClaims, VerifyError> {
    let (key, issuer, verifier) = verifier_of_one_key("claims").await;
    let mut claims = issuer.claims();
    edit(&mut claims);
    verifier.verify(&key.sign(&claims)).await
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let outcome = verify_edited(|claims| claims["iss"] = json!("http://127.0.0.1:1")).await;
    assert_eq!(outcome, Err(VerifyError::WrongIssuer));
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let outcome = verify_edited(|claims| claims["aud"] = json!("billing-api")).await;
    assert_eq!(outcome, Err(VerifyError::WrongAudience));
}

#[tokio::test]
async fn an_audience_array_naming_us_is_accepted() {
    let outcome =
        verify_edited(|claims| claims["aud"] = json!(["billing-api", "players-api"])).await;
    assert!(outcome.is_ok());
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let outcome = verify_edited(|claims| claims["exp"] = json!(now() - 120)).await;
    assert_eq!(outcome, Err(VerifyError::Expired));
}

#[tokio::test]
async fn a_token_valid_only_in_the_future_is_refused() {
    let outcome = verify_edited(|claims| claims["nbf"] = json!(now() + 600)).await;
    assert_eq!(outcome, Err(VerifyError::NotYetValid));
}

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let outcome = verify_edited(|claims| {
        claims.as_object_mut().unwrap().remove("exp");
    })
    .await;
    assert_eq!(outcome, Err(VerifyError::MissingClaim("exp")));
}

#[tokio::test]
async fn a_tampered_payload_breaks_the_signature() {
    let (key, issuer, verifier) = verifier_of_one_key("tamper").await;
    let token = key.sign(&issuer.claims());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = issuer.claims();
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
    let (key, issuer, verifier) = verifier_of_one_key("big").await;
    let mut claims = issuer.claims();
    claims["padding"] = json!("x".repeat(9 * 1024));

    let outcome = verifier.verify(&key.sign(&claims)).await;

    assert_eq!(outcome, Err(VerifyError::TooLarge));
}

#[tokio::test]
async fn a_token_signed_by_a_key_the_issuer_never_published_is_refused() {
    let (_published, issuer, verifier) = verifier_of_one_key("published").await;
    let stranger = SigningKey::es256("never-published");

    let outcome = verifier.verify(&stranger.sign(&issuer.claims())).await;

    assert_eq!(outcome, Err(VerifyError::UnknownKey));
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_a_published_kid_is_refused() {
    let (published, issuer, verifier) = verifier_of_one_key("impostor").await;
    let impostor = SigningKey::es256(&published.kid);

    let outcome = verifier.verify(&impostor.sign(&issuer.claims())).await;

    assert_eq!(outcome, Err(VerifyError::BadSignature));
}

#[tokio::test]
async fn garbage_is_malformed() {
    let (_key, _issuer, verifier) = verifier_of_one_key("garbage").await;

    for token in ["garbage", "a.b.c", "....", "bm90IGpzb24.e30.c2ln"] {
        assert_eq!(
            verifier.verify(token).await,
            Err(VerifyError::Malformed),
            "{token}"
        );
    }
}
