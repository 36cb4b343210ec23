//! The committed OpenAPI specs are what the code generates (a snapshot: drift fails the tests).

fn committed(name: &str) -> serde_json::Value {
    let path = format!("{}/../openapi/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_committed_auth_server_spec_matches_the_code() {
    let generated = crate::helpers::cli(&auth_server::Settings::default(), &["openapi"])
        .await
        .unwrap();
    let generated: serde_json::Value = serde_json::from_str(&generated).unwrap();

    assert!(
        generated == committed("auth-server.json"),
        "openapi/auth-server.json is stale: run `make openapi` and commit the result"
    );
}

#[tokio::test]
async fn the_committed_resource_api_spec_matches_the_code() {
    let generated = resource_api::api::spec_document(&resource_api::Settings::default());
    let generated: serde_json::Value = serde_json::from_str(&generated).unwrap();

    assert!(
        generated == committed("resource-api.json"),
        "openapi/resource-api.json is stale: run `make openapi` and commit the result"
    );
}
