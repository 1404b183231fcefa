//! Configuration: the embedded defaults, then a TOML file, then `SALESCAST_*`
//! environment variables, then command-line flags, merged by one pure function.
//!
//! Unknown keys in the file and unknown `SALESCAST_*` variables are errors that
//! name the key, so a typo never silently falls back to a default. The data
//! mapping lets users bring their own column names without code.
//!
//! Each section's type and its checks live with the module that owns them
//! (`mapping`, `window`, `validate`, `features`, `train`, `evaluate`, `cost`,
//! `emf`, `storage`); this module only assembles, merges and checks the whole.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cost::CostSettings;
use crate::emf::{EmfMode, MetricsSettings};
use crate::evaluate::PromotionSettings;
use crate::features::{FeatureLayout, FeatureSettings};
use crate::forecast::ForecastSettings;
use crate::mapping::DataMapping;
use crate::serve::ServeSettings;
use crate::setting::Invalid;
use crate::storage::S3Settings;
use crate::train::{TrainSpec, TrainingSettings};
use crate::validate::ValidationSettings;
use crate::window::WindowSettings;

/// The name looked for in the working folder when no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "salescast.toml";

/// Environment variables salescast reads; any other `SALESCAST_*` is refused.
pub const ENV_CONFIG: &str = "SALESCAST_CONFIG";
pub const ENV_LAKE: &str = "SALESCAST_LAKE";
pub const ENV_REGISTRY: &str = "SALESCAST_REGISTRY";
pub const ENV_LOG: &str = "SALESCAST_LOG";
/// `text` or `json`: the log lines' format (`--log-format`).
pub const ENV_LOG_FORMAT: &str = "SALESCAST_LOG_FORMAT";
/// `auto`, `on` or `off`: whether a run writes CloudWatch EMF lines (`metrics.emf`).
pub const ENV_EMF: &str = "SALESCAST_EMF";
const KNOWN_ENV: [&str; 6] = [
    ENV_CONFIG,
    ENV_LAKE,
    ENV_REGISTRY,
    ENV_LOG,
    ENV_LOG_FORMAT,
    ENV_EMF,
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The OS error is the source (printed once by the chain printer).
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("unknown environment variable {name} (known: {known})")]
    UnknownEnv { name: String, known: String },
    #[error("config key {key}: {problem}")]
    Invalid { key: String, problem: String },
    #[error("option {flag}: {problem}")]
    Argument { flag: String, problem: String },
}

impl From<Invalid> for ConfigError {
    fn from(Invalid { key, problem }: Invalid) -> Self {
        ConfigError::Invalid { key, problem }
    }
}

/// The whole configuration of a run, after the merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the sales partitions and attribute tables live (folder or URI).
    pub lake: String,
    /// Where model versions, the champion pointer and the decision log live.
    pub registry: String,
    pub data: DataMapping,
    pub window: WindowSettings,
    pub validation: ValidationSettings,
    pub features: FeatureSettings,
    pub forecast: ForecastSettings,
    pub training: TrainingSettings,
    pub promotion: PromotionSettings,
    pub s3: S3Settings,
    pub cost: CostSettings,
    pub metrics: MetricsSettings,
    pub serve: ServeSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            lake: "salescast-demo/lake".into(),
            registry: "salescast-demo/registry".into(),
            data: DataMapping::default(),
            window: WindowSettings::default(),
            validation: ValidationSettings::default(),
            features: FeatureSettings::default(),
            forecast: ForecastSettings::default(),
            training: TrainingSettings::default(),
            promotion: PromotionSettings::default(),
            s3: S3Settings::default(),
            cost: CostSettings::default(),
            metrics: MetricsSettings::default(),
            serve: ServeSettings::default(),
        }
    }
}

impl Config {
    /// What training needs of this configuration.
    pub fn train_spec(&self) -> TrainSpec<'_> {
        TrainSpec {
            mapping: &self.data,
            features: &self.features,
            training: &self.training,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Clone, Default)]
pub struct FlagLayer {
    pub config: Option<PathBuf>,
    pub lake: Option<String>,
    pub registry: Option<String>,
    pub s3_endpoint: Option<String>,
}

/// Values read from `SALESCAST_*` environment variables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvLayer {
    pub config: Option<PathBuf>,
    pub lake: Option<String>,
    pub registry: Option<String>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    pub emf: Option<String>,
}

impl EnvLayer {
    /// Picks the `SALESCAST_*` variables out of `vars`; an unknown one is an error.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut layer = Self::default();
        for (name, value) in vars {
            if !name.starts_with("SALESCAST_") {
                continue;
            }
            match name.as_str() {
                ENV_CONFIG => layer.config = Some(PathBuf::from(value)),
                ENV_LAKE => layer.lake = Some(value),
                ENV_REGISTRY => layer.registry = Some(value),
                ENV_LOG => layer.log = Some(value),
                ENV_LOG_FORMAT => layer.log_format = Some(value),
                ENV_EMF => layer.emf = Some(value),
                _ => {
                    return Err(ConfigError::UnknownEnv {
                        name,
                        known: KNOWN_ENV.join(", "),
                    });
                }
            }
        }
        Ok(layer)
    }
}

/// Parses a config file's text over the embedded defaults. Relative lake and
/// registry paths are taken relative to the file's folder.
pub fn parse_file(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse {
        path: origin.display().to_string(),
        message: message.trim_end().to_string(),
    };
    // One parse of the text; the table says which keys the file gave.
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
    let (lake_given, registry_given) = (table.contains_key("lake"), table.contains_key("registry"));
    let mut config: Config = table
        .try_into()
        .map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
    let base = origin.parent().unwrap_or(Path::new(""));
    // An empty location stays empty (and fails the check): made relative, it
    // would silently be the config file's folder.
    if lake_given && !config.lake.trim().is_empty() {
        config.lake = relative_to(base, &config.lake);
    }
    if registry_given && !config.registry.trim().is_empty() {
        config.registry = relative_to(base, &config.registry);
    }
    Ok(config)
}

fn relative_to(base: &Path, location: &str) -> String {
    let is_uri = location.contains("://");
    if is_uri || Path::new(location).is_absolute() || base.as_os_str().is_empty() {
        location.to_string()
    } else {
        base.join(location).display().to_string()
    }
}

/// The merge itself: file (or defaults), then environment, then flags; then checked.
pub fn merge(file: Option<Config>, env: &EnvLayer, flags: &FlagLayer) -> Result<Config, ConfigError> {
    let mut config = file.unwrap_or_default();
    if let Some(lake) = flags.lake.clone().or_else(|| env.lake.clone()) {
        config.lake = lake;
    }
    if let Some(registry) = flags.registry.clone().or_else(|| env.registry.clone()) {
        config.registry = registry;
    }
    if let Some(endpoint) = flags.s3_endpoint.clone() {
        S3Settings::check_endpoint(&endpoint).map_err(|problem| ConfigError::Argument {
            flag: "--s3-endpoint".into(),
            problem,
        })?;
        config.s3.endpoint = Some(endpoint);
    }
    if let Some(text) = &env.emf {
        config.metrics.emf = text.parse::<EmfMode>().map_err(|problem| ConfigError::Invalid {
            key: ENV_EMF.into(),
            problem,
        })?;
    }
    // A location given on the command line or in the environment is named as
    // given there, so a usage error points at the option the user typed.
    for (value, flag, env_name, given_flag, given_env) in [
        (&config.lake, "--lake", ENV_LAKE, &flags.lake, &env.lake),
        (
            &config.registry,
            "--registry",
            ENV_REGISTRY,
            &flags.registry,
            &env.registry,
        ),
    ] {
        let flag = match (given_flag, given_env) {
            (Some(_), _) => flag.to_string(),
            (None, Some(_)) => format!("{env_name} (environment)"),
            (None, None) => continue,
        };
        if value.trim().is_empty() {
            return Err(ConfigError::Argument {
                flag,
                problem: "must not be empty".into(),
            });
        }
        if let Err(e) = crate::storage::locate(value) {
            return Err(ConfigError::Argument {
                flag,
                problem: e.to_string(),
            });
        }
    }
    check(&config)?;
    Ok(config)
}

/// Which config file to read: the flag, then `SALESCAST_CONFIG`, then
/// `salescast.toml` in `cwd` if it exists; `None` means the embedded default.
pub fn config_path(env: &EnvLayer, flags: &FlagLayer, cwd: &Path) -> Option<PathBuf> {
    if let Some(path) = flags.config.clone().or_else(|| env.config.clone()) {
        return Some(path);
    }
    let local = cwd.join(DEFAULT_CONFIG_FILE);
    local.is_file().then_some(local)
}

/// Loads the configuration for a run from the real file system and environment.
pub fn load(env: &EnvLayer, flags: &FlagLayer) -> Result<Config, ConfigError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let file = match config_path(env, flags, &cwd) {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            Some(parse_file(&text, &path)?)
        }
        None => None,
    };
    merge(file, env, flags)
}

/// Checks the merged configuration for contradictions, naming the key at
/// fault: each section checks itself, then what spans sections.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    for (key, value) in [("lake", &config.lake), ("registry", &config.registry)] {
        if value.trim().is_empty() {
            return Err(crate::setting::invalid(key, "must not be empty").into());
        }
        if let Err(e) = crate::storage::locate(value) {
            return Err(crate::setting::invalid(key, e.to_string()).into());
        }
    }
    config.data.check()?;
    config.features.check()?;
    config.forecast.check()?;
    config.window.check()?;
    config.validation.check()?;
    let names = FeatureLayout::new(&config.data, &config.features).names();
    config.training.check(&names)?;
    config.promotion.check()?;
    config.cost.check()?;
    config.metrics.check()?;
    config.serve.check()?;
    if let Some(key) = &config.serve.store_key
        && !config.data.series_keys.contains(key)
    {
        return Err(crate::setting::invalid(
            "serve.store_key",
            format!(
                "{key:?} is not a series key (data.series_keys: {})",
                config.data.series_keys.join(", ")
            ),
        )
        .into());
    }
    config
        .s3
        .check()
        .map_err(|problem| crate::setting::invalid("s3", problem))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_params_are_checked_with_the_config() {
        let text = "[training.gbdt]\nmax_rounds = 0\n";
        let config = parse_file(text, Path::new("c.toml")).unwrap();
        let err = check(&config).unwrap_err().to_string();
        assert!(err.contains("training.gbdt.max_rounds"), "{err}");
        let text = "[training]\ncandidates = [\"seasonal_naive\"]\n[features]\nlags = [1]\n";
        let err = check(&parse_file(text, Path::new("c.toml")).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("lag_7"), "{err}");
        for (text, key) in [
            ("[serve]\nstore_key = \"nokey\"\n", "serve.store_key"),
            ("[training]\nmax_fit_rows = 10\n", "training.max_fit_rows"),
            ("[training]\nwarm_rounds = 100001\n", "training.warm_rounds"),
            (
                "[training.gbdt]\nsampling = \"goss\"\nsubsample = 0.5\n",
                "training.gbdt.subsample",
            ),
        ] {
            let err = check(&parse_file(text, Path::new("c.toml")).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let text = "[training.gbdt]\nsampling = \"sometimes\"\n";
        let err = parse_file(text, Path::new("c.toml")).unwrap_err().to_string();
        assert!(err.contains("sampling"), "{err}");
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flags_beat_environment_beat_file() {
        let file = parse_file(
            "lake = \"from-file\"\nregistry = \"reg-file\"\n",
            Path::new("salescast.toml"),
        )
        .unwrap();
        let env = EnvLayer::from_vars(vars(&[("SALESCAST_LAKE", "from-env"), ("PATH", "/bin")])).unwrap();
        let flags = FlagLayer {
            registry: Some("reg-flag".into()),
            ..Default::default()
        };
        let config = merge(Some(file), &env, &flags).unwrap();
        assert_eq!(config.lake, "from-env");
        assert_eq!(config.registry, "reg-flag");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let err = parse_file("[data]\ntarget = \"x\"\ntraget = \"y\"\n", Path::new("c.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("traget") && text.contains("c.toml"), "{text}");
    }

    #[test]
    fn a_data_section_does_not_inherit_the_demo_mapping() {
        let text = "[data]\ndate_column = \"d\"\nseries_keys = [\"k\"]\ntarget = \"y\"\n";
        let config = parse_file(text, Path::new("c.toml")).unwrap();
        assert!(config.data.covariates.is_empty() && config.data.open_flag.is_none());
        let err = parse_file("[data]\ndate_column = \"d\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("series_keys"), "{err}");
    }

    #[test]
    fn unknown_env_var_is_named() {
        let err = EnvLayer::from_vars(vars(&[("SALESCAST_LAEK", "x")])).unwrap_err();
        assert!(err.to_string().contains("SALESCAST_LAEK"));
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let config = parse_file(
            "lake = \"lake\"\nregistry = \"s3://b/r\"\n",
            Path::new("/etc/sc/salescast.toml"),
        )
        .unwrap();
        assert_eq!(config.lake, "/etc/sc/lake");
        assert_eq!(config.registry, "s3://b/r");
    }

    #[test]
    fn contradictions_name_the_key() {
        let mut config = Config::default();
        config.data.open_flag = Some("closed".into());
        assert!(check(&config).unwrap_err().to_string().contains("data.open_flag"));
        let mut config = Config::default();
        config.data.categorical.push("nope".into());
        assert!(
            check(&config)
                .unwrap_err()
                .to_string()
                .contains("data.categorical")
        );
        let mut config = Config::default();
        config.data.covariates.push("sales".into());
        assert!(check(&config).unwrap_err().to_string().contains("two roles"));
    }

    #[test]
    fn shipped_example_configs_parse() {
        for name in ["rossmann.toml", "store_item.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples")
                .join(name);
            let text = std::fs::read_to_string(&path).unwrap();
            let config = parse_file(&text, &path).unwrap();
            check(&config).unwrap();
        }
    }
}

#[cfg(test)]
#[path = "config_props.rs"]
mod props;
