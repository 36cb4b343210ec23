//! The players operations: reads for anyone, writes for tokens with `players:write`.

use poem_openapi::{ApiResponse, OAuthScopes, OpenApi, Tags, param::Path, payload::Json};
use token_verifier::{BearerRejection, OAuth2Bearer, VerifiedClaims};
use uuid::Uuid;

use super::{
    body::{BodyError, PlayerBody},
    dto::{PlayerDto, player_details},
    problem::Problem,
};
use crate::{
    domain::{SquadNumber, ValidationError},
    storage::{PlayerRepository, StorageError},
};

#[derive(Tags)]
enum ApiTags {
    /// The squad.
    Players,
}

/// What a token may allow here.
#[derive(OAuthScopes)]
pub enum PlayerScope {
    /// Create, replace and delete players.
    #[oai(rename = "players:write")]
    Write,
}

pub(super) type Bearer = OAuth2Bearer<PlayerScope>;

/// The scopes this API's operations ask for (its RFC 9728 `scopes_supported`).
pub fn scopes() -> Vec<String> {
    PlayerScope::meta()
        .into_iter()
        .map(|scope| scope.name.to_owned())
        .collect()
}

pub struct PlayersApi {
    pub players: PlayerRepository,
}

#[OpenApi(tag = "ApiTags::Players")]
impl PlayersApi {
    /// List every player, by squad number.
    #[oai(path = "/players", method = "get", operation_id = "listPlayers")]
    async fn list_players(&self) -> ListPlayersResponse {
        match self.players.list().await {
            Ok(players) => {
                ListPlayersResponse::Ok(Json(players.into_iter().map(Into::into).collect()))
            }
            Err(err) => ListPlayersResponse::InternalError(internal(err)),
        }
    }

    /// Get one player by id.
    #[oai(path = "/players/:id", method = "get", operation_id = "getPlayer")]
    async fn get_player(&self, #[oai(name = "id")] id: Path<Uuid>) -> GetPlayerResponse {
        match self.players.find_by_id(id.0).await {
            Ok(Some(player)) => GetPlayerResponse::Ok(Json(player.into())),
            Ok(None) => GetPlayerResponse::NotFound(Json(no_player_with("id", &id.0))),
            Err(err) => GetPlayerResponse::InternalError(internal(err)),
        }
    }

    /// Get one player by squad number.
    #[oai(
        path = "/players/squadnumber/:squadNumber",
        method = "get",
        operation_id = "getPlayerBySquadNumber"
    )]
    async fn get_player_by_squad_number(
        &self,
        #[oai(name = "squadNumber")] squad_number: Path<i64>,
    ) -> GetPlayerResponse {
        let Ok(number) = SquadNumber::try_from(squad_number.0) else {
            return GetPlayerResponse::NotFound(Json(no_player_with(
                "squad number",
                &squad_number.0,
            )));
        };
        match self.players.find_by_squad_number(number).await {
            Ok(Some(player)) => GetPlayerResponse::Ok(Json(player.into())),
            Ok(None) => GetPlayerResponse::NotFound(Json(no_player_with("squad number", &number))),
            Err(err) => GetPlayerResponse::InternalError(internal(err)),
        }
    }

    /// Add a player. The squad number must be free.
    #[oai(path = "/players", method = "post", operation_id = "createPlayer")]
    async fn create_player(
        &self,
        #[oai(scope = "PlayerScope::Write")] auth: Bearer,
        body: PlayerBody,
    ) -> CreatePlayerResponse {
        self.create(auth, body)
            .await
            .unwrap_or_else(|failure| failure)
    }

    /// Replace the player with this squad number. The body's squad number must be the same.
    #[oai(
        path = "/players/squadnumber/:squadNumber",
        method = "put",
        operation_id = "replacePlayer"
    )]
    async fn replace_player(
        &self,
        #[oai(scope = "PlayerScope::Write")] auth: Bearer,
        #[oai(name = "squadNumber")] squad_number: Path<i64>,
        body: PlayerBody,
    ) -> ReplacePlayerResponse {
        self.replace(auth, squad_number.0, body)
            .await
            .unwrap_or_else(|failure| failure)
    }

    /// Delete the player with this squad number.
    #[oai(
        path = "/players/squadnumber/:squadNumber",
        method = "delete",
        operation_id = "deletePlayer"
    )]
    async fn delete_player(
        &self,
        #[oai(scope = "PlayerScope::Write")] auth: Bearer,
        #[oai(name = "squadNumber")] squad_number: Path<i64>,
    ) -> DeletePlayerResponse {
        self.delete(auth, squad_number.0)
            .await
            .unwrap_or_else(|failure| failure)
    }
}

/// The writes, with `?` for every way they can fail; each failure is a documented response.
impl PlayersApi {
    async fn create(
        &self,
        auth: Bearer,
        body: PlayerBody,
    ) -> Result<CreatePlayerResponse, CreatePlayerResponse> {
        let caller = auth.require(PlayerScope::Write)?;
        let details = player_details(body.json().await?)?;
        let player = self.players.create(details).await?;
        log_change(&caller, "created", player.details.squad_number, player.id);
        let location = format!("/players/{}", player.id);
        Ok(CreatePlayerResponse::Created(Json(player.into()), location))
    }

    async fn replace(
        &self,
        auth: Bearer,
        path_number: i64,
        body: PlayerBody,
    ) -> Result<ReplacePlayerResponse, ReplacePlayerResponse> {
        let caller = auth.require(PlayerScope::Write)?;
        let details = player_details(body.json().await?)?;
        if i64::from(details.squad_number.get()) != path_number {
            return Err(ReplacePlayerResponse::BadRequest(Json(
                Problem::new(
                    400,
                    "squad_number_mismatch",
                    format!(
                        "the body's squad number {} differs from the path's {path_number}",
                        details.squad_number
                    ),
                )
                .with_field("squadNumber"),
            )));
        }
        let number = details.squad_number;
        if !self
            .players
            .replace_by_squad_number(number, details)
            .await?
        {
            return Err(ReplacePlayerResponse::NotFound(Json(no_player_with(
                "squad number",
                &number,
            ))));
        }
        log_change(&caller, "replaced", number, None);
        Ok(ReplacePlayerResponse::NoContent)
    }

    async fn delete(
        &self,
        auth: Bearer,
        path_number: i64,
    ) -> Result<DeletePlayerResponse, DeletePlayerResponse> {
        let caller = auth.require(PlayerScope::Write)?;
        let missing =
            || DeletePlayerResponse::NotFound(Json(no_player_with("squad number", &path_number)));
        let number = SquadNumber::try_from(path_number).map_err(|_| missing())?;
        if !self.players.delete_by_squad_number(number).await? {
            return Err(missing());
        }
        log_change(&caller, "deleted", number, None);
        Ok(DeletePlayerResponse::NoContent)
    }
}

/// Who changed which player: the audit line, with the party acting for the subject when the
/// token came from a token exchange (`act`, current actor first). Never the token.
fn log_change(
    caller: &VerifiedClaims,
    action: &str,
    number: SquadNumber,
    id: impl Into<Option<Uuid>>,
) {
    tracing::info!(
        sub = %caller.subject,
        client_id = %caller.client_id,
        actor = caller.actor(),
        actor_chain = (caller.actors.len() > 1).then(|| caller.actors.join(" < ")),
        jti = caller.jti.as_deref(),
        squad_number = number.get(),
        player_id = id.into().map(tracing::field::display),
        action,
        "player {action}"
    );
}

pub(super) fn no_player_with(what: &str, value: &dyn std::fmt::Display) -> Problem {
    Problem::new(404, "not_found", format!("no player with {what} {value}"))
}

pub(super) fn internal(err: StorageError) -> Json<Problem> {
    tracing::error!(error = %err, "storage failed");
    Json(Problem::internal())
}

pub(super) fn bearer_problem(rejection: &BearerRejection) -> Json<Problem> {
    let status = rejection.status().as_u16();
    let code = rejection.error_code().unwrap_or("unauthorized");
    Json(Problem::new(status, code, rejection.description()))
}

/// A path that does not parse (an id that is no UUID, a squad number that is no `i64`): 400.
/// The path parameters are the only extractors of these operations that can fail; anything
/// else is ours, logged, and a 500.
pub(super) fn malformed_path(err: &poem::Error) -> Result<Json<Problem>, Json<Problem>> {
    if err.status().is_server_error() {
        tracing::error!(error = %err, "extracting the request failed");
        return Err(Json(Problem::internal()));
    }
    Ok(Json(Problem::new(
        400,
        "bad_request",
        "the path is malformed: an id is a UUID, a squad number a whole number",
    )))
}

fn malformed_get_path(err: poem::Error) -> GetPlayerResponse {
    malformed_path(&err).map_or_else(
        GetPlayerResponse::InternalError,
        GetPlayerResponse::BadRequest,
    )
}

fn malformed_replace_path(err: poem::Error) -> ReplacePlayerResponse {
    malformed_path(&err).map_or_else(
        ReplacePlayerResponse::InternalError,
        ReplacePlayerResponse::BadRequest,
    )
}

fn malformed_delete_path(err: poem::Error) -> DeletePlayerResponse {
    malformed_path(&err).map_or_else(
        DeletePlayerResponse::InternalError,
        DeletePlayerResponse::BadRequest,
    )
}

fn validation_problem(err: ValidationError) -> Json<Problem> {
    Json(Problem::new(422, "validation_failed", err.to_string()).with_field(err.field))
}

#[derive(ApiResponse)]
pub enum ListPlayersResponse {
    /// Every player.
    #[oai(status = 200)]
    Ok(Json<Vec<PlayerDto>>),
    /// Something broke on our side; the request id finds it in the log.
    #[oai(status = 500)]
    InternalError(Json<Problem>),
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "malformed_get_path")]
pub enum GetPlayerResponse {
    /// The player.
    #[oai(status = 200)]
    Ok(Json<PlayerDto>),
    /// The id is not a UUID, or the squad number not a whole number.
    #[oai(status = 400)]
    BadRequest(Json<Problem>),
    /// No such player.
    #[oai(status = 404)]
    NotFound(Json<Problem>),
    /// Something broke on our side; the request id finds it in the log.
    #[oai(status = 500)]
    InternalError(Json<Problem>),
}

#[derive(ApiResponse)]
pub enum CreatePlayerResponse {
    /// Created; `Location` is the new player's URL.
    #[oai(status = 201)]
    Created(Json<PlayerDto>, #[oai(header = "Location")] String),
    /// The body is not valid JSON.
    #[oai(status = 400)]
    BadRequest(Json<Problem>),
    /// No token, or an invalid one (RFC 6750 §3.1).
    #[oai(status = 401)]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// The token lacks `players:write` (RFC 6750 §3.1).
    #[oai(status = 403)]
    Forbidden(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// The squad number is taken.
    #[oai(status = 409)]
    Conflict(Json<Problem>),
    /// The body did not arrive within 10 s.
    #[oai(status = 408)]
    RequestTimeout(Json<Problem>),
    /// The body is too large.
    #[oai(status = 413)]
    PayloadTooLarge(Json<Problem>),
    /// The body is not `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<Problem>),
    /// A field is invalid; `field` names it.
    #[oai(status = 422)]
    UnprocessableEntity(Json<Problem>),
    /// Something broke on our side; the request id finds it in the log.
    #[oai(status = 500)]
    InternalError(Json<Problem>),
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "malformed_replace_path")]
pub enum ReplacePlayerResponse {
    /// Replaced.
    #[oai(status = 204)]
    NoContent,
    /// The body is not valid JSON, its squad number differs from the path's, or the path's is
    /// not a whole number.
    #[oai(status = 400)]
    BadRequest(Json<Problem>),
    /// No token, or an invalid one (RFC 6750 §3.1).
    #[oai(status = 401)]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// The token lacks `players:write` (RFC 6750 §3.1).
    #[oai(status = 403)]
    Forbidden(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// No player has this squad number.
    #[oai(status = 404)]
    NotFound(Json<Problem>),
    /// The body did not arrive within 10 s.
    #[oai(status = 408)]
    RequestTimeout(Json<Problem>),
    /// The body is too large.
    #[oai(status = 413)]
    PayloadTooLarge(Json<Problem>),
    /// The body is not `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<Problem>),
    /// A field is invalid; `field` names it.
    #[oai(status = 422)]
    UnprocessableEntity(Json<Problem>),
    /// Something broke on our side; the request id finds it in the log.
    #[oai(status = 500)]
    InternalError(Json<Problem>),
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "malformed_delete_path")]
pub enum DeletePlayerResponse {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
    /// The squad number in the path is not a whole number.
    #[oai(status = 400)]
    BadRequest(Json<Problem>),
    /// No token, or an invalid one (RFC 6750 §3.1).
    #[oai(status = 401)]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// The token lacks `players:write` (RFC 6750 §3.1).
    #[oai(status = 403)]
    Forbidden(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// No player has this squad number.
    #[oai(status = 404)]
    NotFound(Json<Problem>),
    /// Something broke on our side; the request id finds it in the log.
    #[oai(status = 500)]
    InternalError(Json<Problem>),
}

/// Bearer rejections become the 401 / 403 variants, challenge included.
macro_rules! answers_bearer_rejections {
    ($($response:ident),*) => {$(
        impl From<token_verifier::BearerRejection> for $response {
            fn from(rejection: token_verifier::BearerRejection) -> Self {
                let challenge = rejection.www_authenticate();
                if rejection.status().as_u16() == 403 {
                    Self::Forbidden(bearer_problem(&rejection), challenge)
                } else {
                    Self::Unauthorized(bearer_problem(&rejection), challenge)
                }
            }
        }
    )*};
}
// The scouting operations answer bearer rejections the same way.
pub(super) use answers_bearer_rejections;

/// Unreadable bodies and invalid fields become 400 / 413 / 415 / 422.
macro_rules! answers_body_errors {
    ($($response:ident),*) => {$(
        impl From<BodyError> for $response {
            fn from(err: BodyError) -> Self {
                let problem = Json(err.problem());
                match err {
                    BodyError::NotJson => Self::UnsupportedMediaType(problem),
                    BodyError::TooLarge(_) => Self::PayloadTooLarge(problem),
                    BodyError::TimedOut => Self::RequestTimeout(problem),
                    BodyError::Malformed(_) => Self::BadRequest(problem),
                }
            }
        }

        impl From<ValidationError> for $response {
            fn from(err: ValidationError) -> Self {
                Self::UnprocessableEntity(validation_problem(err))
            }
        }
    )*};
}

/// Storage failures these operations cannot expect are 500s.
macro_rules! answers_storage_errors {
    ($($response:ident),*) => {$(
        impl From<StorageError> for $response {
            fn from(err: StorageError) -> Self {
                Self::InternalError(internal(err))
            }
        }
    )*};
}

answers_bearer_rejections!(
    CreatePlayerResponse,
    ReplacePlayerResponse,
    DeletePlayerResponse
);
answers_body_errors!(CreatePlayerResponse, ReplacePlayerResponse);
answers_storage_errors!(ReplacePlayerResponse, DeletePlayerResponse);

impl From<StorageError> for CreatePlayerResponse {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::SquadNumberTaken(number) => Self::Conflict(Json(
                Problem::new(
                    409,
                    "squad_number_taken",
                    format!("squad number {number} is taken"),
                )
                .with_field("squadNumber"),
            )),
            other => Self::InternalError(internal(other)),
        }
    }
}
