//! The `auth-server` binary as a user runs it: what it prints when the configuration is wrong,
//! how its logs look in a pipe, that printing the spec touches nothing, that SIGTERM is a clean
//! stop.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auth-server"));
    // Nothing from the caller's environment configures the process but what the test says.
    for (name, _) in std::env::vars() {
        if name.starts_with("AUTH_") || name == "RUST_LOG" || name == "LOG_FORMAT" {
            command.env_remove(name);
        }
    }
    command
}

#[test]
fn a_typo_in_the_configuration_is_named_with_its_file_and_the_key_meant() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("auth.toml"), "tokn_ttl_secs = 120\n").unwrap();

    let output = binary()
        .current_dir(dir.path())
        .args(["--config", "auth.toml", "clients", "list"])
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        "auth-server: auth.toml: unknown key `tokn_ttl_secs`; did you mean `token_ttl_secs`?\n"
    );
}

#[test]
fn printing_the_spec_needs_no_configuration_database_or_key_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();

    let output = binary()
        .current_dir(dir.path())
        .arg("openapi")
        .output()
        .unwrap();

    assert!(output.status.success());
    let spec: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(spec["info"]["title"], "auth-server");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no data/ made"
    );
}

#[test]
fn logs_in_a_pipe_are_one_plain_line_per_event_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("auth.toml"),
        "bind = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://data/a.sqlite?mode=rwc\"\n",
    )
    .unwrap();
    let mut child = binary()
        .current_dir(dir.path())
        .args(["--config", "auth.toml"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let line = lines.next().expect("the server logs").unwrap();
        let listening = line.contains("auth-server listening");
        seen.push(line);
        if listening {
            break;
        }
    }
    assert!(
        seen.last()
            .is_some_and(|l| l.contains("auth-server listening")),
        "{seen:#?}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    seen.extend(lines.map_while(Result::ok));

    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    for line in &seen {
        assert!(
            !line.contains('\u{1b}'),
            "no colour codes in a pipe: {line:?}"
        );
        assert!(
            line.starts_with("20") && line.contains(" INFO ") || line.contains(" WARN "),
            "one event per line, each with its time and level: {line:?}"
        );
    }
    assert!(
        seen.iter().any(|l| l.contains("shutting down")),
        "{seen:#?}"
    );
}
