//! sea-orm entities: the tables as the repositories see them.

pub mod player;
