//! What a player is and which values are acceptable, independent of HTTP and storage.

mod player;

pub use player::{Player, PlayerDetails, SquadNumber, Text, ValidationError};
