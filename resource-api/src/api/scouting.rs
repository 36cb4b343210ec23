//! Referring a player to the scouting API, on the caller's behalf (RFC 8693 token exchange):
//! the scouting API sees the caller as `sub` and this API as `act`.

use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi, Tags,
    param::Path,
    payload::Json,
    types::{ParseFromJSON, ToJSON},
};
use token_verifier::TokenVerifier;

use super::{
    dto::{PlayerDto, PlayerInputDto},
    players::{Bearer, PlayerScope, bearer_problem, internal, malformed_path, no_player_with},
    problem::Problem,
};
use crate::{
    domain::SquadNumber,
    scouting::{ReferralError, ScoutingClient},
    storage::PlayerRepository,
};

#[derive(Tags)]
enum ApiTags {
    /// Calling the scouting API for the caller.
    Scouting,
}

pub struct ScoutingApi {
    pub players: PlayerRepository,
    /// `None` when no `[scouting]` is configured.
    pub scouting: Option<ScoutingClient>,
}

#[OpenApi(tag = "ApiTags::Scouting")]
impl ScoutingApi {
    /// Refer the player with this squad number to the scouting API, on your behalf: this API
    /// exchanges your token for one to the scouting API (RFC 8693) and creates the player
    /// there; the scouting API sees you as the subject and this API as the actor.
    #[oai(
        path = "/players/squadnumber/:squadNumber/scouting",
        method = "post",
        operation_id = "referPlayerToScouting"
    )]
    async fn refer_player(
        &self,
        #[oai(scope = "PlayerScope::Write")] auth: Bearer,
        #[oai(name = "squadNumber")] squad_number: Path<i64>,
        verifier: Data<&TokenVerifier>,
    ) -> ReferPlayerResponse {
        self.refer(auth, squad_number.0, verifier.0)
            .await
            .unwrap_or_else(|failure| failure)
    }
}

impl ScoutingApi {
    async fn refer(
        &self,
        auth: Bearer,
        path_number: i64,
        verifier: &TokenVerifier,
    ) -> Result<ReferPlayerResponse, ReferPlayerResponse> {
        let caller = auth.require(PlayerScope::Write)?;
        let Some(scouting) = &self.scouting else {
            return Err(ReferPlayerResponse::NotImplemented(Json(Problem::new(
                501,
                "scouting_not_configured",
                "this deployment refers no players: it has no scouting API configured",
            ))));
        };
        let missing =
            || ReferPlayerResponse::NotFound(Json(no_player_with("squad number", &path_number)));
        let number = SquadNumber::try_from(path_number).map_err(|_| missing())?;
        let player = self
            .players
            .find_by_squad_number(number)
            .await
            .map_err(|err| ReferPlayerResponse::InternalError(internal(err)))?
            .ok_or_else(missing)?;
        let body = PlayerDto::from(player).fields.to_json().unwrap_or_default();
        // Present: `require` succeeded, so the request carried a valid token.
        let token = auth.access_token().unwrap_or_default();
        let referred = match scouting.refer(token, &body).await {
            Ok(referred) => referred,
            Err(ReferralError::Refused(error)) => {
                // The token is fine here, and no other scope would help: no `error` in the
                // challenge (RFC 6750 §3), only who answers.
                let challenge =
                    format!("{} realm=\"{}\"", caller.scheme().name(), verifier.realm());
                return Err(ReferPlayerResponse::Forbidden(
                    Json(Problem::new(
                        403,
                        "delegation_refused",
                        format!(
                            "the issuer would not let this API act for you at the scouting API \
                             ({error})"
                        ),
                    )),
                    challenge,
                ));
            }
            Err(ReferralError::Conflict) => {
                return Err(ReferPlayerResponse::Conflict(Json(Problem::new(
                    409,
                    "conflict",
                    format!("the scouting API already has a player with squad number {number}"),
                ))));
            }
            Err(ReferralError::Upstream(cause)) => {
                tracing::error!(error = %cause, "referring a player to the scouting API failed");
                return Err(ReferPlayerResponse::BadGateway(Json(Problem::new(
                    502,
                    "bad_gateway",
                    "the scouting API could not be reached on your behalf",
                ))));
            }
        };
        let Some(copy) = scouted_player(referred.player) else {
            tracing::error!("the scouting API answered a player that does not parse");
            return Err(ReferPlayerResponse::BadGateway(Json(Problem::new(
                502,
                "bad_gateway",
                "the scouting API answered something unexpected",
            ))));
        };
        tracing::info!(
            sub = %caller.subject,
            client_id = %caller.client_id,
            squad_number = number.get(),
            scouting_id = %copy.id,
            "player referred to scouting"
        );
        Ok(ReferPlayerResponse::Created(Json(copy), referred.location))
    }
}

/// The scouting API's answer as a `Player` (its `id` is read-only to poem-openapi's parser,
/// so it is read apart).
fn scouted_player(mut player: serde_json::Value) -> Option<PlayerDto> {
    let object = player.as_object_mut()?;
    let id = object.remove("id")?.as_str()?.parse().ok()?;
    let fields = PlayerInputDto::parse_from_json(Some(player)).ok()?;
    Some(PlayerDto { id, fields })
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "malformed_refer_path")]
pub enum ReferPlayerResponse {
    /// The scouting API's copy of the player; `Location` is its URL there.
    #[oai(status = 201)]
    Created(Json<PlayerDto>, #[oai(header = "Location")] String),
    /// The squad number in the path is not a whole number.
    #[oai(status = 400)]
    BadRequest(Json<Problem>),
    /// No token, or an invalid one (RFC 6750 §3.1).
    #[oai(status = 401)]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// The token lacks `players:write` (an `insufficient_scope` challenge), or the issuer would
    /// not exchange it for the scouting API (`delegation_refused`: revoked, say; a challenge
    /// without an error, since no other scope would help).
    #[oai(status = 403)]
    Forbidden(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// No player has this squad number.
    #[oai(status = 404)]
    NotFound(Json<Problem>),
    /// The scouting API already has a player with this squad number.
    #[oai(status = 409)]
    Conflict(Json<Problem>),
    /// Something broke on our side; the request id finds it in the log.
    #[oai(status = 500)]
    InternalError(Json<Problem>),
    /// This deployment has no scouting API configured.
    #[oai(status = 501)]
    NotImplemented(Json<Problem>),
    /// The issuer or the scouting API failed, or refused this API's own client.
    #[oai(status = 502)]
    BadGateway(Json<Problem>),
}

super::players::answers_bearer_rejections!(ReferPlayerResponse);

fn malformed_refer_path(err: poem::Error) -> ReferPlayerResponse {
    malformed_path(&err).map_or_else(
        ReferPlayerResponse::InternalError,
        ReferPlayerResponse::BadRequest,
    )
}
