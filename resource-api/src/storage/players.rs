//! The player repository: the only place that knows how players are stored.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, SqlErr,
};
use tracing::Instrument as _;
use uuid::Uuid;

use super::{StorageError, entities::player};
use crate::domain::{Player, PlayerDetails, SquadNumber, Text};

#[derive(Clone)]
pub struct PlayerRepository {
    db: DatabaseConnection,
}

impl PlayerRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// A database span for trace export (none when traces are off): the statement's kind and
    /// table, never its values.
    fn span(&self, summary: &'static str) -> tracing::Span {
        let system = match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "postgresql",
            sea_orm::DatabaseBackend::Sqlite => "sqlite",
            _ => "other_sql",
        };
        service_kit::trace_span!(
            "db",
            otel.name = summary,
            otel.kind = "client",
            db.system.name = system,
            db.query.summary = summary,
        )
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StorageError> {
        Ok(self.db.ping().await?)
    }

    /// Every player, by squad number.
    pub async fn list(&self) -> Result<Vec<Player>, StorageError> {
        player::Entity::find()
            .order_by_asc(player::Column::SquadNumber)
            .all(&self.db)
            .instrument(self.span("SELECT players"))
            .await?
            .into_iter()
            .map(into_player)
            .collect()
    }

    pub async fn find_by_id(&self, id: Uuid) -> Result<Option<Player>, StorageError> {
        player::Entity::find_by_id(id)
            .one(&self.db)
            .instrument(self.span("SELECT players"))
            .await?
            .map(into_player)
            .transpose()
    }

    pub async fn find_by_squad_number(
        &self,
        number: SquadNumber,
    ) -> Result<Option<Player>, StorageError> {
        player::Entity::find()
            .filter(player::Column::SquadNumber.eq(i32::from(number.get())))
            .one(&self.db)
            .instrument(self.span("SELECT players"))
            .await?
            .map(into_player)
            .transpose()
    }

    /// Adds a player with a new v4 id. The unique index decides who gets a squad number.
    pub async fn create(&self, details: PlayerDetails) -> Result<Player, StorageError> {
        let number = details.squad_number;
        let mut model = active_model(&details);
        model.id = Set(Uuid::new_v4());
        let inserted = model
            .insert(&self.db)
            .instrument(self.span("INSERT players"))
            .await
            .map_err(|err| match err.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(_)) => {
                    StorageError::SquadNumberTaken(number.get())
                }
                _ => StorageError::from(err),
            })?;
        into_player(inserted)
    }

    /// Replaces the details of the player with `number` (which `details` keeps); `false` if
    /// there is none.
    pub async fn replace_by_squad_number(
        &self,
        number: SquadNumber,
        details: PlayerDetails,
    ) -> Result<bool, StorageError> {
        let model = active_model(&details);
        let result = player::Entity::update_many()
            .set(model)
            .filter(player::Column::SquadNumber.eq(i32::from(number.get())))
            .exec(&self.db)
            .instrument(self.span("UPDATE players"))
            .await
            .map_err(|err| match err.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(_)) => {
                    StorageError::SquadNumberTaken(details.squad_number.get())
                }
                _ => StorageError::from(err),
            })?;
        Ok(result.rows_affected > 0)
    }

    /// Removes the player with `number`; `false` if there is none.
    pub async fn delete_by_squad_number(&self, number: SquadNumber) -> Result<bool, StorageError> {
        let result = player::Entity::delete_many()
            .filter(player::Column::SquadNumber.eq(i32::from(number.get())))
            .exec(&self.db)
            .instrument(self.span("DELETE players"))
            .await?;
        Ok(result.rows_affected > 0)
    }
}

/// Every column but the id, set from `details`.
fn active_model(details: &PlayerDetails) -> player::ActiveModel {
    let text = |value: &Option<Text>| value.as_ref().map(|text| text.as_str().to_owned());
    player::ActiveModel {
        squad_number: Set(i32::from(details.squad_number.get())),
        first_name: Set(details.first_name.as_str().to_owned()),
        middle_name: Set(text(&details.middle_name)),
        last_name: Set(details.last_name.as_str().to_owned()),
        date_of_birth: Set(details.date_of_birth),
        position: Set(details.position.as_str().to_owned()),
        abbr_position: Set(text(&details.abbr_position)),
        team: Set(text(&details.team)),
        league: Set(text(&details.league)),
        starting11: Set(details.starting11),
        ..Default::default()
    }
}

/// Rows were written through the same rules, so a failure here means someone edited the
/// database by hand.
fn into_player(model: player::Model) -> Result<Player, StorageError> {
    let corrupt = |err: crate::domain::ValidationError| {
        StorageError::Corrupt(format!("player {}: {err}", model.id))
    };
    let optional = |field, value: &Option<String>| Text::parse_optional(field, value.as_deref());
    let details = PlayerDetails {
        first_name: Text::parse("firstName", &model.first_name).map_err(corrupt)?,
        middle_name: optional("middleName", &model.middle_name).map_err(corrupt)?,
        last_name: Text::parse("lastName", &model.last_name).map_err(corrupt)?,
        date_of_birth: model.date_of_birth,
        squad_number: SquadNumber::try_from(i64::from(model.squad_number)).map_err(corrupt)?,
        position: Text::parse("position", &model.position).map_err(corrupt)?,
        abbr_position: optional("abbrPosition", &model.abbr_position).map_err(corrupt)?,
        team: optional("team", &model.team).map_err(corrupt)?,
        league: optional("league", &model.league).map_err(corrupt)?,
        starting11: model.starting11,
    };
    Ok(Player {
        id: model.id,
        details,
    })
}
