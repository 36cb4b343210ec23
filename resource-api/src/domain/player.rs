//! A player of the squad and the rules its fields obey.

use std::fmt;

use chrono::NaiveDate;
use uuid::Uuid;

/// A field that broke a rule; `field` is the wire name (camelCase), so clients can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// A shirt number: 1 to 99, unique within the squad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SquadNumber(u8);

impl SquadNumber {
    pub const MIN: i64 = 1;
    pub const MAX: i64 = 99;

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for SquadNumber {
    type Error = ValidationError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        if (Self::MIN..=Self::MAX).contains(&value) {
            Ok(Self(value as u8))
        } else {
            Err(ValidationError::new(
                "squadNumber",
                format!("must be between {} and {}", Self::MIN, Self::MAX),
            ))
        }
    }
}

impl fmt::Display for SquadNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A short human-readable text (names, position, club): trimmed, 1 to 100 characters, no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValidationError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ValidationError::new(field, "must not be empty"));
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                field,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ValidationError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// An optional text: absent and empty both mean "none".
    pub fn parse_optional(
        field: &'static str,
        value: Option<&str>,
    ) -> Result<Option<Self>, ValidationError> {
        match value.map(str::trim) {
            None | Some("") => Ok(None),
            Some(value) => Self::parse(field, value).map(Some),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Everything about a player but the id: what clients send and change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerDetails {
    pub first_name: Text,
    pub middle_name: Option<Text>,
    pub last_name: Text,
    pub date_of_birth: Option<NaiveDate>,
    pub squad_number: SquadNumber,
    pub position: Text,
    pub abbr_position: Option<Text>,
    pub team: Option<Text>,
    pub league: Option<Text>,
    pub starting11: bool,
}

/// A player with its server-made id (v5 for the seeded squad, v4 for players created later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Player {
    pub id: Uuid,
    pub details: PlayerDetails,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squad_numbers_run_from_1_to_99() {
        assert_eq!(SquadNumber::try_from(1).unwrap().get(), 1);
        assert_eq!(SquadNumber::try_from(99).unwrap().get(), 99);
        for out_of_range in [0, 100, -1, 256, i64::MAX] {
            let err = SquadNumber::try_from(out_of_range).unwrap_err();
            assert_eq!(err.field, "squadNumber");
        }
    }

    #[test]
    fn text_is_trimmed_and_must_not_be_empty_or_too_long() {
        assert_eq!(
            Text::parse("firstName", "  Lionel ").unwrap().as_str(),
            "Lionel"
        );
        assert_eq!(
            Text::parse("firstName", "   ").unwrap_err(),
            ValidationError::new("firstName", "must not be empty")
        );
        assert!(Text::parse("team", &"x".repeat(100)).is_ok());
        assert_eq!(
            Text::parse("team", &"x".repeat(101)).unwrap_err().field,
            "team"
        );
        assert!(Text::parse("team", "a\u{0}b").is_err());
    }

    #[test]
    fn an_empty_optional_text_means_none() {
        assert_eq!(Text::parse_optional("middleName", Some("")).unwrap(), None);
        assert_eq!(Text::parse_optional("middleName", None).unwrap(), None);
        assert!(
            Text::parse_optional("middleName", Some("Andrés"))
                .unwrap()
                .is_some()
        );
    }
}
