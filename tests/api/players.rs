//! The players API end to end: the real resource-api on a free port, trusting the real
//! auth-server, over HTTP. Reads are open; writes need a `players:write` token.

use reqwest::Method;
use serde_json::{Value, json};

use crate::api_helpers::{
    RESOURCE_METADATA, ResourceApi, assert_invalid_token, challenge, new_player,
    spawn_resource_api, spawn_resource_api_with,
};
use crate::helpers::{AuthServer, READER_ID, READER_SECRET, TestDb, spawn_auth_server};

/// An auth-server and a players API that trusts it, each on a database of its own.
pub struct Services {
    pub auth: AuthServer,
    pub api: ResourceApi,
    pub _auth_db: TestDb,
}

pub async fn services() -> Services {
    let (auth, auth_db) = spawn_auth_server().await;
    let api = spawn_resource_api(&auth.address).await;
    Services {
        auth,
        api,
        _auth_db: auth_db,
    }
}

const MESSI_ID: &str = "acc433bf-d505-51fe-831e-45eb44c4d43c";

#[tokio::test]
async fn anyone_can_list_the_26_seeded_players_by_squad_number() {
    let Services {
        auth: _auth,
        api,
        _auth_db,
    } = services().await;

    let response = api.get("/players").await;

    assert_eq!(response.status(), 200);
    let players: Vec<Value> = response.json().await.unwrap();
    assert_eq!(players.len(), 26);
    let numbers: Vec<u64> = players
        .iter()
        .map(|p| p["squadNumber"].as_u64().unwrap())
        .collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(numbers, sorted);
    assert_eq!(
        players.iter().filter(|p| p["starting11"] == true).count(),
        11
    );
}

#[tokio::test]
async fn anyone_can_get_a_seeded_player_by_its_v5_id_and_by_squad_number() {
    let Services {
        auth: _auth,
        api,
        _auth_db,
    } = services().await;

    let by_id: Value = api
        .get(&format!("/players/{MESSI_ID}"))
        .await
        .json()
        .await
        .unwrap();
    let by_number = api.player(10).await.unwrap();

    assert_eq!(by_id, by_number);
    assert_eq!(
        by_id,
        json!({
            "id": MESSI_ID,
            "firstName": "Lionel",
            "middleName": "Andrés",
            "lastName": "Messi",
            "dateOfBirth": "1987-06-24",
            "squadNumber": 10,
            "position": "Right Winger",
            "abbrPosition": "RW",
            "team": "Paris Saint-Germain",
            "league": "Ligue 1",
            "starting11": true
        })
    );
    let molina = api.player(26).await.unwrap();
    assert!(
        molina.get("middleName").is_none_or(Value::is_null),
        "NULL middle names stay empty"
    );
}

#[tokio::test]
async fn an_unknown_player_is_a_404_problem_with_the_request_id() {
    let Services {
        auth: _auth,
        api,
        _auth_db,
    } = services().await;

    for path in [
        format!("/players/{}", uuid::Uuid::new_v4()),
        "/players/squadnumber/50".to_owned(),
        "/players/squadnumber/150".to_owned(),
    ] {
        let response = api.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "not_found", "{path}");
        assert_eq!(body["requestId"], request_id.as_str(), "{path}");
    }
}

#[tokio::test]
async fn a_malformed_id_or_unknown_route_is_a_json_problem_not_plain_text() {
    let Services {
        auth: _auth,
        api,
        _auth_db,
    } = services().await;

    for (path, status) in [
        ("/players/not-a-uuid", 400),
        ("/players/squadnumber/ten", 400),
        ("/no-such-route", 404),
    ] {
        let response = api.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status, "{path}");
        assert!(body["requestId"].is_string(), "{path}");
    }
}

#[tokio::test]
async fn a_sane_incoming_request_id_is_echoed_and_carried_by_errors() {
    let Services {
        auth: _auth,
        api,
        _auth_db,
    } = services().await;

    let response = api
        .request(Method::GET, "/players/squadnumber/77")
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["requestId"], "trace-abc-123");
}

#[tokio::test]
async fn writes_without_a_token_are_401_with_a_bare_bearer_challenge() {
    let Services {
        auth: _auth,
        api,
        _auth_db,
    } = services().await;

    let responses = [
        api.create(None, &new_player(30)).await,
        api.replace(None, 10, &new_player(10)).await,
        api.delete(None, 10).await,
    ];

    for response in responses {
        assert_eq!(response.status(), 401);
        assert_eq!(
            challenge(&response),
            format!(r#"Bearer realm="players-api"{RESOURCE_METADATA}"#)
        );
    }
    assert_eq!(api.player(10).await.unwrap()["lastName"], "Messi");
    assert!(api.player(30).await.is_none());
}

/// A client that knows only the API finds its issuer: the metadata the challenges name
/// (RFC 9728) lists the auth-server, whose own metadata (RFC 8414) gives the token endpoint
/// that issues tokens the API accepts.
#[tokio::test]
async fn the_protected_resource_metadata_leads_a_client_to_the_issuer() {
    let Services {
        auth,
        api,
        _auth_db,
    } = services().await;

    let response = api.get("/.well-known/oauth-protected-resource").await;
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["resource"], "http://localhost:9001");
    assert_eq!(document["scopes_supported"], json!(["players:write"]));
    assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    let issuer = document["authorization_servers"][0].as_str().unwrap();
    assert_eq!(
        document["authorization_servers"].as_array().unwrap().len(),
        1
    );

    let metadata = auth
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(metadata["issuer"], issuer);
    let token_endpoint = metadata["token_endpoint"].as_str().unwrap();
    assert!(token_endpoint.ends_with("/auth/token"), "{token_endpoint}");
    let token = auth.access_token().await;
    assert_eq!(
        api.create(Some(&token), &new_player(33)).await.status(),
        201
    );
}

#[tokio::test]
async fn the_token_is_checked_before_the_body() {
    let Services {
        auth: _auth,
        api,
        _auth_db,
    } = services().await;

    let response = api
        .request(Method::POST, "/players")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_garbage_token_is_401_invalid_token() {
    let Services {
        auth: _auth,
        api,
        _auth_db,
    } = services().await;

    for token in ["garbage", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"] {
        let response = api.create(Some(token), &new_player(31)).await;
        assert_invalid_token(response, token).await;
    }
    assert!(api.player(31).await.is_none());
}

#[tokio::test]
async fn a_token_without_players_write_is_403_insufficient_scope() {
    let Services {
        auth,
        api,
        _auth_db,
    } = services().await;
    let token = auth.access_token_for(READER_ID, READER_SECRET, &[]).await;

    let responses = [
        api.create(Some(&token), &new_player(32)).await,
        api.replace(Some(&token), 10, &new_player(10)).await,
        api.delete(Some(&token), 10).await,
    ];

    for response in responses {
        assert_eq!(response.status(), 403);
        assert_eq!(
            challenge(&response),
            format!(
                r#"Bearer realm="players-api", error="insufficient_scope", scope="players:write"{RESOURCE_METADATA}"#
            )
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope");
    }
    assert_eq!(api.player(10).await.unwrap()["lastName"], "Messi");
}

#[tokio::test]
async fn a_valid_token_creates_replaces_and_deletes_a_player() {
    let Services {
        auth,
        api,
        _auth_db,
    } = services().await;
    let token = auth.access_token().await;

    // Create: 201, Location, a v4 id.
    let created = api.create(Some(&token), &new_player(33)).await;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = created.json().await.unwrap();
    let id = uuid::Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 4);
    assert_eq!(location, format!("/players/{id}"));
    let fetched: Value = api.get(&location).await.json().await.unwrap();
    assert_eq!(fetched, body);

    // Replace: 204, and the change is there.
    let mut changed = new_player(33);
    changed["team"] = json!("Club Atlético River Plate");
    changed["starting11"] = json!(true);
    let replaced = api.replace(Some(&token), 33, &changed).await;
    assert_eq!(replaced.status(), 204);
    let after = api.player(33).await.unwrap();
    assert_eq!(after["team"], "Club Atlético River Plate");
    assert_eq!(after["starting11"], true);
    assert_eq!(after["id"], body["id"], "the id survives a replace");

    // Delete: 204, and it is gone.
    let deleted = api.delete(Some(&token), 33).await;
    assert_eq!(deleted.status(), 204);
    assert!(api.player(33).await.is_none());
    assert_eq!(api.delete(Some(&token), 33).await.status(), 404);
}

#[tokio::test]
async fn a_taken_squad_number_is_409() {
    let Services {
        auth,
        api,
        _auth_db,
    } = services().await;
    let token = auth.access_token().await;

    let response = api.create(Some(&token), &new_player(10)).await;

    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "squad_number_taken");
    assert_eq!(body["field"], "squadNumber");
    assert_eq!(api.player(10).await.unwrap()["lastName"], "Messi");
}

#[tokio::test]
async fn two_concurrent_creates_with_one_squad_number_get_one_201_and_one_409() {
    let Services {
        auth,
        api,
        _auth_db,
    } = services().await;
    let token = auth.access_token().await;

    for number in 40..45 {
        let player = new_player(number);
        let (first, second) = tokio::join!(
            api.create(Some(&token), &player),
            api.create(Some(&token), &player)
        );
        let mut statuses = [first.status().as_u16(), second.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "squad number {number}");
    }
}

#[tokio::test]
async fn an_invalid_field_is_422_naming_the_field() {
    let Services {
        auth,
        api,
        _auth_db,
    } = services().await;
    let token = auth.access_token().await;
    let cases: [(&str, Value); 7] = [
        ("firstName", json!("")),
        ("lastName", Value::Null),
        ("squadNumber", json!(100)),
        ("squadNumber", json!(0)),
        ("dateOfBirth", json!("24/06/1994")),
        ("dateOfBirth", json!("")),
        ("starting11", json!("yes")),
    ];

    for (field, value) in cases {
        let mut player = new_player(34);
        player[field] = value;
        let response = api.create(Some(&token), &player).await;
        assert_eq!(response.status(), 422, "{field}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "validation_failed");
        assert_eq!(body["field"], field);
    }
    assert!(api.player(34).await.is_none());
}

#[tokio::test]
async fn a_replace_whose_body_names_another_squad_number_is_400() {
    let Services {
        auth,
        api,
        _auth_db,
    } = services().await;
    let token = auth.access_token().await;

    let response = api.replace(Some(&token), 10, &new_player(11)).await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "squad_number_mismatch");
    assert_eq!(api.player(10).await.unwrap()["lastName"], "Messi");
    assert_eq!(api.player(11).await.unwrap()["lastName"], "Di María");
}

#[tokio::test]
async fn replacing_or_deleting_an_unknown_squad_number_is_404() {
    let Services {
        auth,
        api,
        _auth_db,
    } = services().await;
    let token = auth.access_token().await;

    assert_eq!(
        api.replace(Some(&token), 35, &new_player(35))
            .await
            .status(),
        404
    );
    assert_eq!(api.delete(Some(&token), 35).await.status(), 404);
    assert_eq!(api.delete(Some(&token), 500).await.status(), 404);
}

#[tokio::test]
async fn bodies_that_are_not_json_are_answered_without_a_500() {
    let Services {
        auth,
        api,
        _auth_db,
    } = services().await;
    let token = auth.access_token().await;
    let post = |content_type: &'static str, body: Vec<u8>| {
        api.request(Method::POST, "/players")
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let malformed = post("application/json", b"{\"firstName\": ".to_vec())
        .await
        .unwrap();
    let not_json = post("text/plain", b"hello".to_vec()).await.unwrap();
    let huge = post("application/json", vec![b' '; 2 * 1024 * 1024])
        .await
        .unwrap();
    let array = post("application/json", b"[1,2]".to_vec()).await.unwrap();

    assert_eq!(malformed.status(), 400);
    assert_eq!(not_json.status(), 415);
    assert_eq!(huge.status(), 413);
    assert_eq!(array.status(), 422);
    for response in [malformed, not_json, huge, array] {
        let body: Value = response.json().await.unwrap();
        assert!(body["requestId"].is_string());
    }
}

#[tokio::test]
async fn readiness_metrics_docs_and_spec_are_served() {
    let Services {
        auth,
        api,
        _auth_db,
    } = services().await;

    let ready: Value = api.get("/health/ready").await.json().await.unwrap();
    assert_eq!(ready["status"], "ok");
    assert_eq!(api.get("/health/live").await.status(), 200);

    api.get("/players").await;
    let metrics = api.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .contains(r#"http_requests_total{method="GET",operation="listPlayers",status="200"}"#),
        "{metrics}"
    );
    assert!(metrics.contains("issuer_keys_ready 1"), "{metrics}");

    let docs = api.get("/docs").await;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));

    let spec: Value = api.get("/openapi.json").await.json().await.unwrap();
    let scheme = &spec["components"]["securitySchemes"]["oauth2"];
    assert_eq!(scheme["type"], "oauth2");
    assert_eq!(
        scheme["flows"]["clientCredentials"]["tokenUrl"],
        format!("{}/auth/token", auth.address)
    );
    let secured: Vec<String> = [
        "post /players",
        "put /players/squadnumber/{squadNumber}",
        "delete /players/squadnumber/{squadNumber}",
        "post /players/squadnumber/{squadNumber}/scouting",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let name = format!("{method} {path}");
            let security = operation.get("security");
            if secured.contains(&name) {
                assert_eq!(
                    security,
                    Some(&json!([{"oauth2": ["players:write"]}])),
                    "{name}"
                );
            } else {
                // Open, and saying so: an explicit empty requirement (OpenAPI linters ask it).
                assert_eq!(security, Some(&json!([])), "{name} must be open");
            }
        }
    }
}

#[tokio::test]
async fn a_second_instance_needs_only_configuration_to_trust_the_issuer() {
    let Services {
        auth,
        api: _first,
        _auth_db,
    } = services().await;
    let token = auth.access_token().await;
    let second = spawn_resource_api_with(&auth.address, |settings| {
        settings.jwks_url = Some(format!("{}/.well-known/jwks.json", auth.address));
    })
    .await;

    assert_eq!(
        second.create(Some(&token), &new_player(36)).await.status(),
        201
    );
}
