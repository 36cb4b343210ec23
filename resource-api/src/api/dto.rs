//! The player on the wire (camelCase JSON), and how a sent player becomes domain details.

use std::borrow::Cow;

use chrono::NaiveDate;
use poem_openapi::{
    Object,
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::{Player, PlayerDetails, SquadNumber, Text, ValidationError};

/// A player of the squad. Optional fields are `null` when not known.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Player", rename_all = "camelCase")]
pub struct PlayerDto {
    /// Made by the server: UUID v5 for the seeded squad, v4 for players created later.
    #[oai(read_only)]
    pub id: Uuid,
    #[oai(flatten)]
    pub fields: PlayerInputDto,
}

/// A player as sent to create or replace one: everything but the id, which the server makes
/// (an `id` sent along is ignored). Optional fields may be left out or sent as `null`.
// Its own schema rather than `Player` with a read-only `id`, which not every client generator
// leaves out of request bodies. Bodies are parsed by `player_details`: this type documents
// them, and carries the fields of a `PlayerDto`.
#[derive(Debug, Clone, Object)]
#[oai(rename = "PlayerInput", rename_all = "camelCase")]
pub struct PlayerInputDto {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub first_name: String,
    #[oai(nullable, validator(max_length = 100))]
    pub middle_name: Option<String>,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub last_name: String,
    /// ISO date, e.g. `1987-06-24`.
    #[oai(nullable)]
    pub date_of_birth: Option<IsoDate>,
    /// Shirt number, unique within the squad.
    #[oai(validator(minimum(value = "1"), maximum(value = "99")))]
    pub squad_number: u8,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub position: String,
    #[oai(nullable, validator(max_length = 100))]
    pub abbr_position: Option<String>,
    #[oai(nullable, validator(max_length = 100))]
    pub team: Option<String>,
    #[oai(nullable, validator(max_length = 100))]
    pub league: Option<String>,
    /// Whether the player started the final; `false` when left out.
    #[oai(default)]
    pub starting11: bool,
}

impl From<Player> for PlayerDto {
    fn from(player: Player) -> Self {
        let details = player.details;
        let text = |value: Option<Text>| value.map(Text::into_string);
        Self {
            id: player.id,
            fields: PlayerInputDto {
                first_name: details.first_name.into_string(),
                middle_name: text(details.middle_name),
                last_name: details.last_name.into_string(),
                date_of_birth: details.date_of_birth.map(IsoDate),
                squad_number: details.squad_number.get(),
                position: details.position.into_string(),
                abbr_position: text(details.abbr_position),
                team: text(details.team),
                league: text(details.league),
                starting11: details.starting11,
            },
        }
    }
}

/// A calendar date on the wire: `YYYY-MM-DD`, declared as OpenAPI's `format: date`
/// (poem-openapi would call a `NaiveDate` `naive-date`, which no client generator knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoDate(pub NaiveDate);

impl Type for IsoDate {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_date".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date")))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ToJSON for IsoDate {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.format("%Y-%m-%d").to_string()))
    }
}

/// Only for the derive's sake: bodies are parsed by [`player_details`].
impl ParseFromJSON for IsoDate {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Self(NaiveDate::parse_from_str(&text, "%Y-%m-%d")?)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

const FIELDS: [&str; 11] = [
    "id",
    "firstName",
    "middleName",
    "lastName",
    "dateOfBirth",
    "squadNumber",
    "position",
    "abbrPosition",
    "team",
    "league",
    "starting11",
];

/// Judges a sent player field by field; the first fault names its field. `id` is ignored,
/// unknown fields are refused (a typo would otherwise be silently dropped).
pub fn player_details(body: Value) -> Result<PlayerDetails, ValidationError> {
    let Value::Object(fields) = body else {
        return Err(ValidationError::new("body", "must be a JSON object"));
    };
    if let Some(unknown) = fields.keys().find(|key| !FIELDS.contains(&key.as_str())) {
        let field = FIELDS
            .iter()
            .find(|known| known.eq_ignore_ascii_case(&unknown.replace('_', "")))
            .map_or(String::new(), |known| format!(" (did you mean {known}?)"));
        return Err(ValidationError::new(
            "body",
            format!("unknown field {unknown}{field}"),
        ));
    }
    Ok(PlayerDetails {
        first_name: Text::parse("firstName", required_str(&fields, "firstName")?)?,
        middle_name: Text::parse_optional("middleName", optional_str(&fields, "middleName")?)?,
        last_name: Text::parse("lastName", required_str(&fields, "lastName")?)?,
        date_of_birth: date(&fields, "dateOfBirth")?,
        squad_number: squad_number(&fields)?,
        position: Text::parse("position", required_str(&fields, "position")?)?,
        abbr_position: Text::parse_optional(
            "abbrPosition",
            optional_str(&fields, "abbrPosition")?,
        )?,
        team: Text::parse_optional("team", optional_str(&fields, "team")?)?,
        league: Text::parse_optional("league", optional_str(&fields, "league")?)?,
        starting11: match fields.get("starting11") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(value)) => *value,
            Some(_) => return Err(ValidationError::new("starting11", "must be true or false")),
        },
    })
}

fn required_str<'a>(
    fields: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, ValidationError> {
    optional_str(fields, field)?.ok_or_else(|| ValidationError::new(field, "is required"))
}

fn optional_str<'a>(
    fields: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, ValidationError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(ValidationError::new(field, "must be a string")),
    }
}

fn squad_number(fields: &Map<String, Value>) -> Result<SquadNumber, ValidationError> {
    let field = "squadNumber";
    match fields.get(field) {
        None | Some(Value::Null) => Err(ValidationError::new(field, "is required")),
        Some(Value::Number(number)) => match number.as_i64() {
            Some(value) => SquadNumber::try_from(value),
            None => Err(ValidationError::new(field, "must be a whole number")),
        },
        Some(_) => Err(ValidationError::new(field, "must be a number")),
    }
}

/// An ISO date, or `null` for none; a full ISO timestamp (as older clients of the sample APIs
/// send) keeps its date. An empty or blank string is refused, not read as "no date": the
/// contract says `format: date`, and a client that sends `""` has a bug worth hearing about.
fn date(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<NaiveDate>, ValidationError> {
    let Some(value) = optional_str(fields, field)? else {
        return Ok(None);
    };
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(value).map(|at| at.date_naive()))
        .map(Some)
        .map_err(|_| ValidationError::new(field, "must be an ISO date like 1987-06-24"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn messi() -> Value {
        json!({
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
    }

    fn fault(edit: impl FnOnce(&mut Value)) -> ValidationError {
        let mut body = messi();
        edit(&mut body);
        player_details(body).unwrap_err()
    }

    #[test]
    fn a_complete_player_is_accepted() {
        let details = player_details(messi()).unwrap();
        assert_eq!(details.squad_number.get(), 10);
        assert_eq!(details.date_of_birth, NaiveDate::from_ymd_opt(1987, 6, 24));
        assert!(details.starting11);
    }

    #[test]
    fn only_the_starred_fields_are_required() {
        let details = player_details(json!({
            "firstName": "Lionel", "lastName": "Messi", "squadNumber": 10, "position": "RW"
        }))
        .unwrap();
        assert_eq!(details.middle_name, None);
        assert!(!details.starting11);
    }

    #[test]
    fn each_missing_required_field_is_named() {
        for field in ["firstName", "lastName", "squadNumber", "position"] {
            let err = fault(|body| {
                body.as_object_mut().unwrap().remove(field);
            });
            assert_eq!(err.field, field);
        }
    }

    #[test]
    fn an_out_of_range_squad_number_is_named() {
        for number in [json!(0), json!(100), json!(-3), json!(10.5), json!("10")] {
            assert_eq!(
                fault(|body| body["squadNumber"] = number.clone()).field,
                "squadNumber"
            );
        }
    }

    #[test]
    fn a_bad_date_is_named_and_a_timestamp_keeps_its_date() {
        for bad in ["24/06/1987", "", " "] {
            assert_eq!(
                fault(|body| body["dateOfBirth"] = json!(bad)).field,
                "dateOfBirth",
                "{bad:?}"
            );
        }
        let mut body = messi();
        body["dateOfBirth"] = Value::Null;
        assert_eq!(player_details(body).unwrap().date_of_birth, None);
        let mut body = messi();
        body["dateOfBirth"] = json!("1987-06-24T00:00:00.000Z");
        assert_eq!(
            player_details(body).unwrap().date_of_birth,
            NaiveDate::from_ymd_opt(1987, 6, 24)
        );
    }

    #[test]
    fn wrong_types_are_named() {
        assert_eq!(
            fault(|body| body["firstName"] = json!(7)).field,
            "firstName"
        );
        assert_eq!(
            fault(|body| body["starting11"] = json!("yes")).field,
            "starting11"
        );
    }

    #[test]
    fn an_unknown_field_is_refused_with_a_hint() {
        let err = fault(|body| body["squad_number"] = json!(10));
        assert_eq!(err.field, "body");
        assert!(err.message.contains("squadNumber"), "{}", err.message);
    }

    #[test]
    fn the_id_is_ignored() {
        let mut body = messi();
        body["id"] = json!("acc433bf-d505-51fe-831e-45eb44c4d43c");
        assert!(player_details(body).is_ok());
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        assert_eq!(player_details(json!([1, 2])).unwrap_err().field, "body");
    }
}
