//! OAuth scopes (RFC 6749 §3.3): validated scope tokens and the subset rules between them.

use std::collections::BTreeSet;
use std::fmt;

/// One scope token: `1*( %x21 / %x23-5B / %x5D-7E )`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid scope token")]
pub struct InvalidScope(pub String);

impl Scope {
    pub fn parse(value: &str) -> Result<Self, InvalidScope> {
        let valid = !value.is_empty()
            && value.len() <= 128
            && value
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidScope(value.chars().take(64).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of scopes, written on the wire as a space-separated list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// Parses a space-separated list; empty input gives the empty set.
    pub fn parse(value: &str) -> Result<Self, InvalidScope> {
        value
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(Scope::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }

    pub fn from_scopes(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self(scopes.into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn difference(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.union(&other.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_space_separated_list_parses_into_a_sorted_set_without_duplicates() {
        let set = ScopeSet::parse("players:write  players:read players:write").unwrap();
        assert_eq!(set.to_string(), "players:read players:write");
    }

    #[test]
    fn scope_tokens_reject_quotes_backslashes_and_control_characters() {
        for bad in ["a\"b", "a\\b", "tab\there", "é"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Scope::parse("players:write").is_ok());
    }

    #[test]
    fn subset_holds_for_equal_smaller_and_empty_sets_only() {
        let client = ScopeSet::parse("a b c").unwrap();
        assert!(ScopeSet::parse("a b c").unwrap().is_subset_of(&client));
        assert!(ScopeSet::parse("b").unwrap().is_subset_of(&client));
        assert!(ScopeSet::default().is_subset_of(&client));
        assert!(!ScopeSet::parse("a d").unwrap().is_subset_of(&client));
    }

    #[test]
    fn intersection_keeps_only_common_scopes() {
        let a = ScopeSet::parse("a b c").unwrap();
        let b = ScopeSet::parse("b c d").unwrap();
        assert_eq!(a.intersection(&b).to_string(), "b c");
    }
}
