//! Scouting notes: anyone reads them; writing one needs a token with `scouting:write`.
//! Kept in memory: the point of the example is the token check, not storage.

use std::sync::{Arc, RwLock};

use axum::{
    Json,
    extract::{FromRef, Path, State, rejection::JsonRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use token_verifier::{
    TokenVerifier,
    axum::{Scope, Scoped},
};

/// The scope a token needs to write notes.
pub const WRITE_SCOPE: &str = "scouting:write";

pub struct WriteNotes;
impl Scope for WriteNotes {
    const NAME: &'static str = WRITE_SCOPE;
}

/// Longest player name and note text accepted, in characters.
const MAX_PLAYER: usize = 100;
const MAX_TEXT: usize = 2000;

#[derive(Clone)]
pub struct AppState {
    notes: Arc<RwLock<Vec<Note>>>,
    verifier: TokenVerifier,
}

impl AppState {
    pub fn new(verifier: TokenVerifier) -> Self {
        Self {
            notes: Arc::default(),
            verifier,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Note>> {
        self.notes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The extractors find the verifier in the state.
impl FromRef<AppState> for TokenVerifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

#[derive(Clone, Serialize)]
pub struct Note {
    id: u64,
    player: String,
    text: String,
    /// The `sub` of the token that wrote it.
    author: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    player: String,
    text: String,
}

pub async fn list(State(state): State<AppState>) -> Json<Vec<Note>> {
    Json(state.read().clone())
}

pub async fn one(State(state): State<AppState>, Path(id): Path<u64>) -> Response {
    match state.read().iter().find(|note| note.id == id) {
        Some(note) => Json(note.clone()).into_response(),
        None => problem(StatusCode::NOT_FOUND, "not_found", "no note with this id"),
    }
}

/// 201 with the note and its `Location`. The token is checked before the body is read.
pub async fn add(
    caller: Scoped<WriteNotes>,
    State(state): State<AppState>,
    input: Result<Json<NoteInput>, JsonRejection>,
) -> Response {
    let Json(input) = match input {
        Ok(input) => input,
        Err(rejection) => {
            return problem(rejection.status(), "invalid_body", &rejection.body_text());
        }
    };
    let (player, text) = (input.player.trim(), input.text.trim());
    if player.is_empty() || player.chars().count() > MAX_PLAYER {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "player must be 1 to 100 characters",
        );
    }
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "text must be 1 to 2000 characters",
        );
    }
    let note = {
        let mut notes = state
            .notes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let note = Note {
            id: notes.last().map_or(1, |last| last.id + 1),
            player: player.to_owned(),
            text: text.to_owned(),
            author: caller.subject.clone(),
        };
        notes.push(note.clone());
        note
    };
    tracing::info!(id = note.id, author = %note.author, "note added");
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/notes/{}", note.id)) {
        headers.insert(header::LOCATION, location);
    }
    (StatusCode::CREATED, headers, Json(note)).into_response()
}

/// 200 once the issuer's keys were fetched, else 503.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.verifier.is_ready() {
        Json(json!({"status": "ok", "issuerKeys": "ok"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "issuerKeys": "not fetched yet"})),
        )
            .into_response()
    }
}

/// A JSON problem body: `{status, error, message}`.
fn problem(status: StatusCode, error: &str, message: &str) -> Response {
    let body = json!({"status": status.as_u16(), "error": error, "message": message});
    (status, Json(body)).into_response()
}
