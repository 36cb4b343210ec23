//! Layered configuration, the same for every service: defaults → a TOML file (`--config FILE`
//! or `<PREFIX>CONFIG`) → a `.env` file in the working directory → environment variables, each
//! layer over the one before. Environment variables (real or from `.env`) are `<PREFIX><KEY>`,
//! nested keys joined with `__`; `<PREFIX><KEY>_FILE` reads the value of `<key>` from a file (a
//! mounted secret). Real environment variables win over `.env`.
//!
//! The TOML file is strict: an unknown key stops the start with a message that names the key,
//! the file and, when one is close, the key that was meant. Prefixed environment variables that
//! name no setting are ignored with a warning instead, because platforms set variables of their
//! own under the same prefix (Kubernetes injects `AUTH_SERVER_PORT=tcp://…` for a Service named
//! `auth-server`).

use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where a service's configuration comes from.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The environment variables' prefix, e.g. `AUTH_`.
    pub prefix: &'static str,
    /// `--config FILE`; when absent, `<PREFIX>CONFIG` (environment, then `.env`) names the file.
    pub file: Option<PathBuf>,
    /// The `.env` file to read; `None` reads none. Services read `./.env`.
    pub dotenv: Option<PathBuf>,
}

impl ConfigSource {
    /// The usual source: `--config` if given, and `.env` in the working directory.
    pub fn new(prefix: &'static str, file: Option<PathBuf>) -> Self {
        Self {
            prefix,
            file,
            dotenv: Some(PathBuf::from(".env")),
        }
    }
}

/// Settings as loaded, with what the loader wants said once logging is up.
#[derive(Debug)]
pub struct Loaded<T> {
    pub settings: T,
    /// The configuration file read, if any.
    pub file: Option<PathBuf>,
    /// Variables ignored and similar remarks, for the log.
    pub warnings: Vec<String>,
}

/// Why the configuration cannot be used; the message names the key and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("{path}: line {line}: {reason}")]
    DotEnv {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{variable}: cannot read {path}: {source}")]
    VariableFile {
        variable: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// One or more keys are unknown or have values of the wrong kind.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

impl ConfigError {
    /// An invalid value found after loading (a range, a URL): `key: reason`.
    pub fn invalid(key: impl AsRef<str>, reason: impl AsRef<str>) -> Self {
        Self::Invalid(vec![format!("{}: {}", key.as_ref(), reason.as_ref())])
    }
}

/// Loads `T` from the layers of `source`. `T` must refuse unknown fields
/// (`#[serde(deny_unknown_fields)]`): that is how its keys are known.
pub fn load<T>(source: &ConfigSource) -> Result<Loaded<T>, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let keys = top_level_keys::<T>();
    let dotenv = match &source.dotenv {
        Some(path) => read_dotenv(path)?,
        None => Vec::new(),
    };
    let environment: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(source.prefix))
        .collect();

    let config_variable = format!("{}CONFIG", source.prefix);
    let file = source.file.clone().or_else(|| {
        environment
            .iter()
            .chain(dotenv.iter())
            .find(|(k, _)| *k == config_variable)
            .map(|(_, v)| PathBuf::from(v))
    });

    let mut warnings = Vec::new();
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = &file {
        if !file.is_file() {
            return Err(ConfigError::MissingFile(file.clone()));
        }
        figment = figment.merge(Toml::file_exact(file));
    }
    if let Some(path) = &source.dotenv {
        let layer = Variables::new(
            source.prefix,
            &keys,
            dotenv,
            format!("{} file", path.display()),
        )?;
        warnings.extend(layer.ignored_warnings(&keys));
        figment = figment.merge(layer);
    }
    let layer = Variables::new(
        source.prefix,
        &keys,
        environment,
        "environment variable".to_owned(),
    )?;
    warnings.extend(layer.ignored_warnings(&keys));
    figment = figment.merge(layer);

    let settings = figment.extract::<T>().map_err(describe)?;
    Ok(Loaded {
        settings,
        file,
        warnings,
    })
}

/// A service's settings type, as [`load_settings`] reads it.
pub trait ServiceSettings: Serialize + DeserializeOwned + Default {
    /// The environment variables' prefix, e.g. `AUTH_`.
    const ENV_PREFIX: &'static str;

    /// Completes and checks what serde cannot (files named by `*_file` keys, ranges, URLs),
    /// once every layer is read.
    fn finish(&mut self) -> Result<(), ConfigError>;
}

/// Loads a service's settings: `--config FILE` (else `<PREFIX>CONFIG`), `./.env`, the
/// environment; then [`ServiceSettings::finish`].
pub fn load_settings<T: ServiceSettings>(file: Option<&Path>) -> Result<Loaded<T>, ConfigError> {
    let source = ConfigSource::new(T::ENV_PREFIX, file.map(Path::to_path_buf));
    let mut loaded = load::<T>(&source)?;
    loaded.settings.finish()?;
    Ok(loaded)
}

/// The top-level keys of `T`: serde lists the expected fields when it meets an unknown one.
pub fn top_level_keys<T>() -> Vec<&'static str>
where
    T: Serialize + DeserializeOwned + Default,
{
    let probe = Figment::from(Serialized::defaults(T::default()))
        .merge(Serialized::default("__probe__", 1))
        .extract::<T>();
    match probe {
        Err(err) => err
            .into_iter()
            .find_map(|e| match e.kind {
                figment::error::Kind::UnknownField(_, expected) if e.path.len() <= 1 => {
                    Some(expected.to_vec())
                }
                _ => None,
            })
            .unwrap_or_default(),
        Ok(_) => Vec::new(),
    }
}

fn read_dotenv(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let iter = match dotenvy::from_path_iter(path) {
        Ok(iter) => iter,
        Err(dotenvy::Error::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Vec::new());
        }
        Err(err) => {
            return Err(ConfigError::DotEnv {
                path: path.to_owned(),
                line: 0,
                reason: err.to_string(),
            });
        }
    };
    let mut pairs = Vec::new();
    for (index, item) in iter.enumerate() {
        match item {
            Ok(pair) => pairs.push(pair),
            Err(dotenvy::Error::LineParse(_, at)) => {
                return Err(ConfigError::DotEnv {
                    path: path.to_owned(),
                    line: index + 1,
                    reason: format!("cannot parse (at character {at})"),
                });
            }
            Err(err) => {
                return Err(ConfigError::DotEnv {
                    path: path.to_owned(),
                    line: index + 1,
                    reason: err.to_string(),
                });
            }
        }
    }
    Ok(pairs)
}

/// Prefixed variables (from the environment or a `.env` file) as a figment provider.
struct Variables {
    prefix: &'static str,
    name: String,
    values: Dict,
    ignored: Vec<String>,
}

impl Variables {
    fn new(
        prefix: &'static str,
        keys: &[&str],
        pairs: Vec<(String, String)>,
        name: String,
    ) -> Result<Self, ConfigError> {
        let mut values = Dict::new();
        let mut ignored = Vec::new();
        for (variable, value) in pairs {
            let Some(key) = variable.strip_prefix(prefix) else {
                continue;
            };
            if key == "CONFIG" || key.is_empty() {
                continue;
            }
            let key = key.to_ascii_lowercase();
            let top = key.split("__").next().unwrap_or_default();
            // `<KEY>_FILE` reads `<key>` from a file, unless `<key>_file` is itself a setting.
            let file_of = key
                .strip_suffix("_file")
                .filter(|_| !keys.contains(&key.as_str()))
                .filter(|k| keys.contains(&k.split("__").next().unwrap_or_default()));
            let (path, value) = if let Some(stripped) = file_of {
                let contents = std::fs::read_to_string(&value).map_err(|source| {
                    ConfigError::VariableFile {
                        variable: variable.clone(),
                        path: PathBuf::from(&value),
                        source,
                    }
                })?;
                let secret = contents.trim_end_matches(['\r', '\n']).to_owned();
                (stripped.replace("__", "."), Value::from(secret))
            } else if keys.contains(&top) {
                (key.replace("__", "."), value.parse().expect("infallible"))
            } else {
                ignored.push(variable);
                continue;
            };
            if path.split('.').any(str::is_empty) {
                ignored.push(variable);
                continue;
            }
            let nested = figment::util::nest(&path, value)
                .into_dict()
                .expect("a non-empty key path nests into a dict");
            values = merge_dicts(values, nested);
        }
        Ok(Self {
            prefix,
            name,
            values,
            ignored,
        })
    }

    fn ignored_warnings(&self, keys: &[&str]) -> Vec<String> {
        self.ignored
            .iter()
            .map(|variable| {
                let key = variable[self.prefix.len()..].to_ascii_lowercase();
                let hint = closest(&key, keys)
                    .map(|k| format!(" (did you mean {}{}?)", self.prefix, k.to_uppercase()))
                    .unwrap_or_default();
                format!(
                    "ignoring {} {variable}: it names no setting{hint}",
                    self.name
                )
            })
            .collect()
    }
}

fn merge_dicts(mut into: Dict, from: Dict) -> Dict {
    for (key, value) in from {
        match (into.remove(&key), value) {
            (Some(Value::Dict(_, a)), Value::Dict(tag, b)) => {
                into.insert(key, Value::Dict(tag, merge_dicts(a, b)));
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
    into
}

impl Provider for Variables {
    fn metadata(&self) -> Metadata {
        let prefix = self.prefix;
        Metadata::named(self.name.clone()).interpolater(move |_: &Profile, keys: &[&str]| {
            format!("{prefix}{}", keys.join("__").to_ascii_uppercase())
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// The closest of `candidates` to `found`, if it is close enough to be what was meant.
pub fn closest<'a>(found: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(found, c), *c))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Turns figment's errors into one readable line each: the key as written, where it came from,
/// what is wrong, and for an unknown key the one that was probably meant.
fn describe(err: figment::Error) -> ConfigError {
    ConfigError::Invalid(err.into_iter().map(|e| describe_one(&e)).collect())
}

fn describe_one(err: &figment::Error) -> String {
    use figment::error::Kind;
    let key = err.path.join(".");
    let origin = err.metadata.as_ref().map(|md| match &md.source {
        Some(figment::Source::File(path)) => path.display().to_string(),
        _ => md.interpolate(&Profile::Default, &err.path),
    });
    let place = match (&origin, key.is_empty()) {
        (Some(origin), _) if origin.contains(&key.to_ascii_uppercase()) && !key.is_empty() => {
            origin.clone()
        }
        (Some(origin), false) => format!("{origin}: {key}"),
        (Some(origin), true) => origin.clone(),
        (None, false) => key.clone(),
        (None, true) => "configuration".to_owned(),
    };
    match &err.kind {
        Kind::UnknownField(found, expected) => {
            // The path ends with the unknown key itself.
            let full = if key.is_empty() {
                found.clone()
            } else {
                key.clone()
            };
            let origin = origin.unwrap_or_else(|| "configuration".into());
            let hint = closest(found, expected)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_else(|| format!("; known keys here: {}", expected.join(", ")));
            format!("{origin}: unknown key `{full}`{hint}")
        }
        Kind::UnknownVariant(found, expected) => format!(
            "{place}: `{found}` is not one of {}",
            expected
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Kind::InvalidType(actual, expected) => {
            format!("{place}: expected {expected}, found {actual}")
        }
        Kind::InvalidValue(actual, expected) => {
            format!("{place}: expected {expected}, found {actual}")
        }
        Kind::MissingField(name) => format!("{place}: `{name}` is required"),
        other => format!("{place}: {other}"),
    }
}

/// Reads the value of a `*_file` key as configuration does: the whole file, without its
/// trailing line break.
pub fn read_secret_file(key: &str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|e| ConfigError::invalid(key, format!("cannot read {}: {e}", path.display())))
}

/// Replaces `value` with the contents of `file` when a file is named (a `*_file` key such as
/// `database_url_file`, for a mounted secret), trimmed.
pub fn resolve_file_key(
    key: &str,
    value: &mut String,
    file: &mut Option<PathBuf>,
) -> Result<(), ConfigError> {
    if let Some(path) = file.take() {
        *value = read_secret_file(key, &path)?.trim().to_owned();
    }
    Ok(())
}

/// `inline` or the contents of `file`, not both; `None` when neither is given.
pub fn inline_or_file(
    key: &str,
    inline: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<String>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            key,
            format!("give {key} or {key}_file, not both"),
        )),
        (Some(value), None) => Ok(Some(value.to_owned())),
        (None, Some(path)) => read_secret_file(&format!("{key}_file"), path).map(Some),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's `Jail` closures must return `figment::Error`
mod tests {
    use figment::Jail;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Demo {
        token_ttl_secs: u32,
        issuer: String,
        secret: Option<String>,
        nested: Nested,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Nested {
        max_failures: u32,
        url: Option<String>,
    }

    impl Default for Demo {
        fn default() -> Self {
            Self {
                token_ttl_secs: 3600,
                issuer: "http://localhost".into(),
                secret: None,
                nested: Nested::default(),
            }
        }
    }

    impl Default for Nested {
        fn default() -> Self {
            Self {
                max_failures: 5,
                url: None,
            }
        }
    }

    fn source(file: Option<&str>) -> ConfigSource {
        ConfigSource::new("DEMO_", file.map(PathBuf::from))
    }

    #[test]
    fn the_keys_of_a_settings_type_are_known_from_serde() {
        assert_eq!(
            top_level_keys::<Demo>(),
            ["token_ttl_secs", "issuer", "secret", "nested"]
        );
    }

    #[test]
    fn each_layer_overrides_the_one_before() {
        Jail::expect_with(|jail| {
            jail.create_file("demo.toml", "token_ttl_secs = 10\nissuer = \"from-file\"\n")?;
            jail.create_file(".env", "DEMO_TOKEN_TTL_SECS=20\nDEMO_SECRET=from-dotenv\n")?;
            jail.set_env("DEMO_TOKEN_TTL_SECS", "30");
            let loaded = load::<Demo>(&source(Some("demo.toml"))).unwrap();
            assert_eq!(loaded.settings.issuer, "from-file");
            assert_eq!(loaded.settings.secret.as_deref(), Some("from-dotenv"));
            assert_eq!(
                loaded.settings.token_ttl_secs, 30,
                "the real environment wins"
            );
            Ok(())
        });
    }

    #[test]
    fn the_file_can_be_named_by_the_prefixed_config_variable_in_dotenv() {
        Jail::expect_with(|jail| {
            jail.create_file("other.toml", "issuer = \"other\"\n")?;
            jail.create_file(".env", "DEMO_CONFIG=other.toml\n")?;
            let loaded = load::<Demo>(&source(None)).unwrap();
            assert_eq!(loaded.settings.issuer, "other");
            assert_eq!(loaded.file, Some(PathBuf::from("other.toml")));
            Ok(())
        });
    }

    #[test]
    fn nested_keys_use_double_underscores_and_file_variables_read_files() {
        Jail::expect_with(|jail| {
            jail.create_file("url.secret", "redis://127.0.0.1:6379/3\n")?;
            jail.set_env("DEMO_NESTED__MAX_FAILURES", "9");
            jail.set_env("DEMO_NESTED__URL_FILE", "url.secret");
            jail.set_env("DEMO_SECRET_FILE", "url.secret");
            let loaded = load::<Demo>(&source(None)).unwrap();
            assert_eq!(loaded.settings.nested.max_failures, 9);
            assert_eq!(
                loaded.settings.nested.url.as_deref(),
                Some("redis://127.0.0.1:6379/3")
            );
            assert_eq!(
                loaded.settings.secret.as_deref(),
                Some("redis://127.0.0.1:6379/3")
            );
            Ok(())
        });
    }

    #[test]
    fn a_file_variable_naming_a_missing_file_is_an_error_naming_the_variable() {
        Jail::expect_with(|jail| {
            jail.set_env("DEMO_SECRET_FILE", "nope");
            let err = load::<Demo>(&source(None)).unwrap_err().to_string();
            assert!(err.contains("DEMO_SECRET_FILE"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named_with_its_file_and_a_suggestion() {
        Jail::expect_with(|jail| {
            jail.create_file("demo.toml", "tokn_ttl_secs = 5\n")?;
            let err = load::<Demo>(&source(Some("demo.toml")))
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                "demo.toml: unknown key `tokn_ttl_secs`; did you mean `token_ttl_secs`?"
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_nested_key_is_named_by_its_whole_path() {
        Jail::expect_with(|jail| {
            jail.create_file("demo.toml", "[nested]\nmax_failure = 3\n")?;
            let err = load::<Demo>(&source(Some("demo.toml")))
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                "demo.toml: unknown key `nested.max_failure`; did you mean `max_failures`?"
            );
            Ok(())
        });
    }

    #[test]
    fn a_value_of_the_wrong_kind_names_the_key_and_what_was_expected() {
        Jail::expect_with(|jail| {
            jail.create_file("demo.toml", "token_ttl_secs = \"soon\"\n")?;
            let err = load::<Demo>(&source(Some("demo.toml")))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("demo.toml: token_ttl_secs: expected u32"),
                "{err}"
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("DEMO_TOKEN_TTL_SECS", "soon");
            let err = load::<Demo>(&source(None)).unwrap_err().to_string();
            assert!(
                err.starts_with("DEMO_TOKEN_TTL_SECS: expected u32"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn prefixed_variables_that_name_nothing_are_ignored_with_a_warning() {
        Jail::expect_with(|jail| {
            jail.set_env("DEMO_SERVER_PORT", "tcp://10.0.0.1:9000");
            jail.set_env("DEMO_TOKEN_TTL_SEC", "5");
            let loaded = load::<Demo>(&source(None)).unwrap();
            assert_eq!(loaded.settings, Demo::default());
            let warnings = loaded.warnings.join("\n");
            assert!(warnings.contains("DEMO_SERVER_PORT"), "{warnings}");
            assert!(
                warnings.contains(
                    "DEMO_TOKEN_TTL_SEC: it names no setting (did you mean DEMO_TOKEN_TTL_SECS?)"
                ),
                "{warnings}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error_not_a_silent_default() {
        Jail::expect_with(|_| {
            let err = load::<Demo>(&source(Some("nope.toml"))).unwrap_err();
            assert!(matches!(err, ConfigError::MissingFile(_)));
            Ok(())
        });
    }
}
