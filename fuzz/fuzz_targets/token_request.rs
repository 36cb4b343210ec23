//! The token endpoint's parse phase (`auth_server::api::parse_token_request`): content type,
//! form or JSON body, HTTP Basic client authentication, and the checks before a grant runs.
//!
//! Input: `<Content-Type>\n<Authorization>\n<body>`; an empty line means no such header
//! (header values that HTTP cannot carry are dropped, as no server would receive them).
//! Beyond "no panic": a refusal is a 400 or a 401 (never a 5xx), and what is accepted is
//! what the endpoint promises the grants.
#![no_main]

use std::sync::OnceLock;

use auth_server::api::{TokenResponse, parse_token_request};
use auth_server::grants::{AuthMethod, Credentials};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fn header(line: &[u8]) -> Option<&str> {
    let line = std::str::from_utf8(line).ok()?;
    (!line.is_empty()).then_some(line)
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let content_type = parts.next().and_then(header);
    let authorization = parts.next().and_then(header);
    let body = parts.next().unwrap_or_default().to_vec();

    let outcome = runtime().block_on(parse_token_request(content_type, authorization, body));
    match outcome {
        Ok(parsed) => {
            assert!(
                !parsed.params.grant_type.is_empty(),
                "an empty grant_type got through"
            );
            match parsed.credentials {
                Some(Credentials::Secret(credentials)) => match credentials.method {
                    AuthMethod::Basic => {
                        assert!(
                            authorization.is_some(),
                            "Basic credentials without the header"
                        )
                    }
                    AuthMethod::Post => {
                        assert!(!credentials.client_id.is_empty());
                        assert!(!credentials.client_secret.is_empty());
                    }
                    AuthMethod::Assertion => panic!("a secret presented as an assertion"),
                },
                Some(Credentials::Assertion(assertion)) => {
                    assert!(!assertion.assertion.is_empty(), "an empty client_assertion");
                    assert!(authorization.is_none(), "an assertion with an Authorization header");
                }
                None => {}
            }
        }
        Err(TokenResponse::BadRequest(..)) | Err(TokenResponse::Unauthorized(..)) => {}
        Err(_) => panic!("the parse phase answered neither 400 nor 401"),
    }
});
