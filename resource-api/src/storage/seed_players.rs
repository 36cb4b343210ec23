//! The squad the database is seeded with on first start.
//!
//! Data: the 26 players of Argentina's 2022 FIFA World Cup squad, from the "players" sample
//! APIs by Nano Taboada (nanotaboada/java.samples.spring.boot, commit
//! 14c17a6f06502f0add12995488ce480ac8d8becb, `V2__Seed_starting11.sql` and
//! `V3__Seed_substitutes.sql`), MIT License, Copyright (c) Nano Taboada. Only the layout is
//! ours: dates of birth as ISO dates, rows ordered by squad number.
//!
//! Ids are UUID v5 of `"{firstName}-{lastName}"` in the namespace
//! `f201b13e-c670-473d-885d-e2be219f74c8`, as in the seed data; the starting eleven are the
//! players who started the final; clubs are as of December 2022.

/// One seeded player, as plain data.
pub(crate) struct SeedPlayer {
    pub id: &'static str,
    pub squad_number: i32,
    pub first_name: &'static str,
    pub middle_name: Option<&'static str>,
    pub last_name: &'static str,
    pub date_of_birth: &'static str,
    pub position: &'static str,
    pub abbr_position: &'static str,
    pub team: &'static str,
    pub league: &'static str,
    pub starting11: bool,
}

pub(crate) const SEED_PLAYERS: [SeedPlayer; 26] = [
    SeedPlayer {
        id: "5a9cd988-95e6-54c1-bc34-9aa08acca8d0",
        squad_number: 1,
        first_name: "Franco",
        middle_name: Some("Daniel"),
        last_name: "Armani",
        date_of_birth: "1986-10-16",
        position: "Goalkeeper",
        abbr_position: "GK",
        team: "River Plate",
        league: "Copa de la Liga",
        starting11: false,
    },
    SeedPlayer {
        id: "5fdb10e8-38c0-5084-9a3f-b369a960b9c2",
        squad_number: 2,
        first_name: "Juan",
        middle_name: Some("Marcos"),
        last_name: "Foyth",
        date_of_birth: "1998-01-12",
        position: "Right-Back",
        abbr_position: "RB",
        team: "Villarreal",
        league: "La Liga",
        starting11: false,
    },
    SeedPlayer {
        id: "2f6f90a0-9b9d-5023-96d2-a2aaf03143a6",
        squad_number: 3,
        first_name: "Nicolás",
        middle_name: Some("Alejandro"),
        last_name: "Tagliafico",
        date_of_birth: "1992-08-31",
        position: "Left-Back",
        abbr_position: "LB",
        team: "Olympique Lyon",
        league: "Ligue 1",
        starting11: true,
    },
    SeedPlayer {
        id: "bbd441f7-fcfb-5834-8468-2a9004b64c8c",
        squad_number: 4,
        first_name: "Gonzalo",
        middle_name: Some("Ariel"),
        last_name: "Montiel",
        date_of_birth: "1997-01-01",
        position: "Right-Back",
        abbr_position: "RB",
        team: "Nottingham Forest",
        league: "Premier League",
        starting11: false,
    },
    SeedPlayer {
        id: "9d140400-196f-55d8-86e1-e0b96a375c83",
        squad_number: 5,
        first_name: "Leandro",
        middle_name: Some("Daniel"),
        last_name: "Paredes",
        date_of_birth: "1994-06-29",
        position: "Defensive Midfield",
        abbr_position: "DM",
        team: "AS Roma",
        league: "Serie A",
        starting11: false,
    },
    SeedPlayer {
        id: "d8bfea25-f189-5d5e-b3a5-ed89329b9f7c",
        squad_number: 6,
        first_name: "Germán",
        middle_name: Some("Alejo"),
        last_name: "Pezzella",
        date_of_birth: "1991-06-27",
        position: "Centre-Back",
        abbr_position: "CB",
        team: "Real Betis Balompié",
        league: "La Liga",
        starting11: false,
    },
    SeedPlayer {
        id: "0293b282-1da8-562e-998e-83849b417a42",
        squad_number: 7,
        first_name: "Rodrigo",
        middle_name: Some("Javier"),
        last_name: "de Paul",
        date_of_birth: "1994-05-24",
        position: "Central Midfield",
        abbr_position: "CM",
        team: "Atlético Madrid",
        league: "La Liga",
        starting11: true,
    },
    SeedPlayer {
        id: "dca343a8-12e5-53d6-89a8-916b120a5ee4",
        squad_number: 8,
        first_name: "Marcos",
        middle_name: Some("Javier"),
        last_name: "Acuña",
        date_of_birth: "1991-10-28",
        position: "Left-Back",
        abbr_position: "LB",
        team: "Sevilla FC",
        league: "La Liga",
        starting11: false,
    },
    SeedPlayer {
        id: "38bae91d-8519-55a2-b30a-b9fe38849bfb",
        squad_number: 9,
        first_name: "Julián",
        middle_name: None,
        last_name: "Álvarez",
        date_of_birth: "2000-01-31",
        position: "Centre-Forward",
        abbr_position: "CF",
        team: "Manchester City",
        league: "Premier League",
        starting11: true,
    },
    SeedPlayer {
        id: "acc433bf-d505-51fe-831e-45eb44c4d43c",
        squad_number: 10,
        first_name: "Lionel",
        middle_name: Some("Andrés"),
        last_name: "Messi",
        date_of_birth: "1987-06-24",
        position: "Right Winger",
        abbr_position: "RW",
        team: "Paris Saint-Germain",
        league: "Ligue 1",
        starting11: true,
    },
    SeedPlayer {
        id: "b5b46e79-929e-5ed2-949d-0d167109c022",
        squad_number: 11,
        first_name: "Ángel",
        middle_name: Some("Fabián"),
        last_name: "Di María",
        date_of_birth: "1988-02-14",
        position: "Right Winger",
        abbr_position: "RW",
        team: "SL Benfica",
        league: "Liga Portugal",
        starting11: true,
    },
    SeedPlayer {
        id: "c62f2ac1-41e8-5d34-b073-2ba0913d0e31",
        squad_number: 12,
        first_name: "Gerónimo",
        middle_name: None,
        last_name: "Rulli",
        date_of_birth: "1992-05-20",
        position: "Goalkeeper",
        abbr_position: "GK",
        team: "Ajax Amsterdam",
        league: "Eredivisie",
        starting11: false,
    },
    SeedPlayer {
        id: "c096c69e-762b-5281-9290-bb9c167a24a0",
        squad_number: 13,
        first_name: "Cristian",
        middle_name: Some("Gabriel"),
        last_name: "Romero",
        date_of_birth: "1998-04-27",
        position: "Centre-Back",
        abbr_position: "CB",
        team: "Tottenham Hotspur",
        league: "Premier League",
        starting11: true,
    },
    SeedPlayer {
        id: "d3b0e8e8-2c34-531a-b608-b24fed0ef986",
        squad_number: 14,
        first_name: "Exequiel",
        middle_name: Some("Alejandro"),
        last_name: "Palacios",
        date_of_birth: "1998-10-05",
        position: "Central Midfield",
        abbr_position: "CM",
        team: "Bayer 04 Leverkusen",
        league: "Bundesliga",
        starting11: false,
    },
    SeedPlayer {
        id: "b1306b7b-a3a4-5f7c-90fd-dd5bdbed57ba",
        squad_number: 15,
        first_name: "Ángel",
        middle_name: Some("Martín"),
        last_name: "Correa",
        date_of_birth: "1995-03-09",
        position: "Right Winger",
        abbr_position: "RW",
        team: "Atlético Madrid",
        league: "La Liga",
        starting11: false,
    },
    SeedPlayer {
        id: "ecec27e8-487b-5622-b116-0855020477ed",
        squad_number: 16,
        first_name: "Thiago",
        middle_name: Some("Ezequiel"),
        last_name: "Almada",
        date_of_birth: "2001-04-26",
        position: "Attacking Midfield",
        abbr_position: "AM",
        team: "Atlanta United FC",
        league: "Major League Soccer",
        starting11: false,
    },
    SeedPlayer {
        id: "7cc8d527-56a2-58bd-9528-2618fc139d30",
        squad_number: 17,
        first_name: "Alejandro",
        middle_name: Some("Darío"),
        last_name: "Gómez",
        date_of_birth: "1988-02-15",
        position: "Left Winger",
        abbr_position: "LW",
        team: "AC Monza",
        league: "Serie A",
        starting11: false,
    },
    SeedPlayer {
        id: "191c82af-0c51-526a-b903-c3600b61b506",
        squad_number: 18,
        first_name: "Guido",
        middle_name: None,
        last_name: "Rodríguez",
        date_of_birth: "1994-04-12",
        position: "Defensive Midfield",
        abbr_position: "DM",
        team: "Real Betis Balompié",
        league: "La Liga",
        starting11: false,
    },
    SeedPlayer {
        id: "d5f7dd7a-1dcb-5960-ba27-e34865b63358",
        squad_number: 19,
        first_name: "Nicolás",
        middle_name: Some("Hernán Gonzalo"),
        last_name: "Otamendi",
        date_of_birth: "1988-02-12",
        position: "Centre-Back",
        abbr_position: "CB",
        team: "SL Benfica",
        league: "Liga Portugal",
        starting11: true,
    },
    SeedPlayer {
        id: "9613cae9-16ab-5b54-937e-3135123b9e0d",
        squad_number: 20,
        first_name: "Alexis",
        middle_name: None,
        last_name: "Mac Allister",
        date_of_birth: "1998-12-24",
        position: "Central Midfield",
        abbr_position: "CM",
        team: "Brighton & Hove Albion",
        league: "Premier League",
        starting11: true,
    },
    SeedPlayer {
        id: "7941cd7c-4df1-5952-97e8-1e7f5d08e8aa",
        squad_number: 21,
        first_name: "Paulo",
        middle_name: Some("Exequiel"),
        last_name: "Dybala",
        date_of_birth: "1993-11-15",
        position: "Second Striker",
        abbr_position: "SS",
        team: "AS Roma",
        league: "Serie A",
        starting11: false,
    },
    SeedPlayer {
        id: "79c96f29-c59f-5f98-96b8-3a5946246624",
        squad_number: 22,
        first_name: "Lautaro",
        middle_name: Some("Javier"),
        last_name: "Martínez",
        date_of_birth: "1997-08-22",
        position: "Centre-Forward",
        abbr_position: "CF",
        team: "Inter Milan",
        league: "Serie A",
        starting11: false,
    },
    SeedPlayer {
        id: "01772c59-43f0-5d85-b913-c78e4e281452",
        squad_number: 23,
        first_name: "Damián",
        middle_name: Some("Emiliano"),
        last_name: "Martínez",
        date_of_birth: "1992-09-02",
        position: "Goalkeeper",
        abbr_position: "GK",
        team: "Aston Villa FC",
        league: "Premier League",
        starting11: true,
    },
    SeedPlayer {
        id: "d3ba552a-dac3-588a-b961-1ea7224017fd",
        squad_number: 24,
        first_name: "Enzo",
        middle_name: Some("Jeremías"),
        last_name: "Fernández",
        date_of_birth: "2001-01-17",
        position: "Central Midfield",
        abbr_position: "CM",
        team: "SL Benfica",
        league: "Liga Portugal",
        starting11: true,
    },
    SeedPlayer {
        id: "98306555-a466-5d18-804e-dc82175e697b",
        squad_number: 25,
        first_name: "Lisandro",
        middle_name: None,
        last_name: "Martínez",
        date_of_birth: "1998-01-18",
        position: "Centre-Back",
        abbr_position: "CB",
        team: "Manchester United",
        league: "Premier League",
        starting11: false,
    },
    SeedPlayer {
        id: "da31293b-4c7e-5e0f-a168-469ee29ecbc4",
        squad_number: 26,
        first_name: "Nahuel",
        middle_name: None,
        last_name: "Molina",
        date_of_birth: "1998-04-06",
        position: "Right-Back",
        abbr_position: "RB",
        team: "Atlético Madrid",
        league: "La Liga",
        starting11: true,
    },
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use uuid::Uuid;

    use super::*;

    /// The namespace of the seeded players' v5 ids.
    const SEED_NAMESPACE: &str = "f201b13e-c670-473d-885d-e2be219f74c8";

    #[test]
    fn every_seeded_id_is_the_v5_uuid_of_the_players_name() {
        let namespace = Uuid::parse_str(SEED_NAMESPACE).unwrap();
        for player in &SEED_PLAYERS {
            let name = format!("{}-{}", player.first_name, player.last_name);
            let expected = Uuid::new_v5(&namespace, name.as_bytes());
            assert_eq!(player.id, expected.to_string(), "{name}");
        }
    }

    #[test]
    fn the_squad_has_26_unique_numbers_and_11_starters() {
        let numbers: HashSet<_> = SEED_PLAYERS.iter().map(|p| p.squad_number).collect();
        assert_eq!(numbers.len(), 26);
        assert!(numbers.iter().all(|n| (1..=99).contains(n)));
        assert_eq!(SEED_PLAYERS.iter().filter(|p| p.starting11).count(), 11);
    }

    #[test]
    fn every_seeded_date_of_birth_is_an_iso_date() {
        for player in &SEED_PLAYERS {
            assert!(
                chrono::NaiveDate::parse_from_str(player.date_of_birth, "%Y-%m-%d").is_ok(),
                "{}",
                player.last_name
            );
        }
    }
}
