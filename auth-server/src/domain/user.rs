//! First-party users of the password grant.

use std::fmt;

use super::client::InvalidName;
use super::scope::ScopeSet;

/// A username: 1 to 128 visible ASCII characters without spaces, or any non-control Unicode
/// letters and marks; no spaces at either end.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let valid = !value.is_empty()
            && value.chars().count() <= 128
            && value.trim() == value
            && !value.chars().any(char::is_control);
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidName { what: "username" })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: Username,
    /// argon2id PHC string.
    pub password_hash: String,
    pub scopes: ScopeSet,
    pub active: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_refuse_control_characters_and_surrounding_spaces() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("lionel.messi@example.com").is_ok());
        assert!(Username::parse("José").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse(" alice").is_err());
        assert!(Username::parse("al\nice").is_err());
    }
}
