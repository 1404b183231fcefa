//! Configuration: the embedded defaults, then a TOML file, then `SALESCAST_*`
//! environment variables, then command-line flags, merged by one pure function.
//!
//! Unknown keys in the file and unknown `SALESCAST_*` variables are errors that
//! name the key, so a typo never silently falls back to a default. The data
//! mapping lets users bring their own column names without code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::models::{ElasticNetParams, Family, ForestParams, GbdtParams, ModelParams};
use crate::storage::S3Settings;

/// The name looked for in the working folder when no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "salescast.toml";

/// Environment variables salescast reads; any other `SALESCAST_*` is refused.
pub const ENV_CONFIG: &str = "SALESCAST_CONFIG";
pub const ENV_LAKE: &str = "SALESCAST_LAKE";
pub const ENV_REGISTRY: &str = "SALESCAST_REGISTRY";
pub const ENV_LOG: &str = "SALESCAST_LOG";
const KNOWN_ENV: [&str; 4] = [ENV_CONFIG, ENV_LAKE, ENV_REGISTRY, ENV_LOG];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
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

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        problem: problem.into(),
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
    pub training: TrainingSettings,
    pub promotion: PromotionSettings,
    pub s3: S3Settings,
    pub cost: CostSettings,
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
            training: TrainingSettings::default(),
            promotion: PromotionSettings::default(),
            s3: S3Settings::default(),
            cost: CostSettings::default(),
        }
    }
}

/// How the user's columns map onto what salescast needs. A `[data]` section
/// in a file must name the date, series keys and target; the rest is optional
/// and empty when left out (the demo's mapping is only the default of a run
/// with no `[data]` section at all).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataMapping {
    /// The column holding the sales day.
    pub date_column: String,
    /// chrono format of the date column when it is text.
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// Columns that together name one series (for example store and item).
    pub series_keys: Vec<String>,
    /// The column to forecast (units or revenue); must be numeric and >= 0.
    pub target: String,
    /// Columns known in advance for the forecast day (promo, holiday, open).
    #[serde(default)]
    pub covariates: Vec<String>,
    /// Which covariates and attribute columns are categories, not numbers.
    #[serde(default)]
    pub categorical: Vec<String>,
    /// A 0/1 covariate: on days where it is 0 the store is closed.
    #[serde(default)]
    pub open_flag: Option<String>,
    /// Static attribute tables joined onto every row by their keys.
    #[serde(default)]
    pub attributes: Vec<AttributeTable>,
}

fn default_date_format() -> String {
    "%Y-%m-%d".into()
}

impl Default for DataMapping {
    fn default() -> Self {
        // The columns of the sample lake that `salescast demo` generates.
        Self {
            date_column: "date".into(),
            date_format: default_date_format(),
            series_keys: vec!["store".into(), "item".into()],
            target: "sales".into(),
            covariates: vec!["promo".into(), "holiday".into(), "open".into()],
            categorical: vec!["holiday".into(), "store_type".into()],
            open_flag: Some("open".into()),
            attributes: vec![AttributeTable {
                table: "stores".into(),
                join_keys: vec!["store".into()],
                columns: vec!["store_type".into(), "store_size".into()],
            }],
        }
    }
}

/// One static attribute table, stored in the lake at `dims/<table>.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeTable {
    pub table: String,
    /// Series-key columns this table is keyed by (a subset of `series_keys`).
    pub join_keys: Vec<String>,
    /// The attribute columns to use as features.
    pub columns: Vec<String>,
}

/// Which days of the lake a run reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowSettings {
    /// Days of history read, ending with the run's data day (inclusive).
    pub history_days: u32,
    /// The newest days held out to compare challenger and champion.
    pub holdout_days: u32,
}

impl Default for WindowSettings {
    fn default() -> Self {
        Self {
            history_days: 730,
            holdout_days: 28,
        }
    }
}

/// Limits that decide when input data is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationSettings {
    /// A day with fewer series than this share of the window's median count is refused.
    pub min_series_ratio: f64,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            min_series_ratio: 0.5,
        }
    }
}

/// Which history features are built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureSettings {
    /// Lags of the target, in calendar days.
    pub lags: Vec<u32>,
    /// Rolling means of the target over this many past calendar days.
    pub rolling_means: Vec<u32>,
}

impl Default for FeatureSettings {
    fn default() -> Self {
        Self {
            lags: vec![1, 7, 14, 28],
            rolling_means: vec![7, 28],
        }
    }
}

/// Which models are trained and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSettings {
    /// The registry keeps this model's versions under `<registry>/<model_name>/`.
    pub model_name: String,
    /// Families tried on the inner validation window; the best is the challenger.
    pub candidates: Vec<Family>,
    /// Seed of every random choice, so a rerun gives byte-identical models.
    pub seed: u64,
    /// The most rows one fit uses: a larger training set is sampled down to
    /// this many rows (seeded, the same rows on every rerun); 0 = no limit.
    /// Scoring always uses every row.
    pub max_fit_rows: usize,
    pub elastic_net: ElasticNetParams,
    pub random_forest: ForestParams,
    pub gbdt: GbdtParams,
}

impl TrainingSettings {
    /// The hyper-parameters of every family.
    pub fn params(&self) -> ModelParams {
        ModelParams {
            elastic_net: self.elastic_net.clone(),
            random_forest: self.random_forest.clone(),
            gbdt: self.gbdt.clone(),
        }
    }
}

impl Default for TrainingSettings {
    fn default() -> Self {
        Self {
            model_name: "sales".into(),
            candidates: vec![Family::SeasonalNaive, Family::ElasticNet, Family::Gbdt],
            seed: 42,
            max_fit_rows: 500_000,
            elastic_net: ElasticNetParams::default(),
            random_forest: ForestParams::default(),
            gbdt: GbdtParams::default(),
        }
    }
}

/// When a challenger replaces the champion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromotionSettings {
    /// Promote when challenger WAPE < champion WAPE x (1 - min_improvement).
    pub min_improvement: f64,
    /// Never promote a challenger whose |bias| on the holdout is above this.
    pub max_abs_bias: f64,
}

impl Default for PromotionSettings {
    fn default() -> Self {
        Self {
            min_improvement: 0.005,
            max_abs_bias: 0.15,
        }
    }
}

/// Unit prices for the run's own cost estimate in the report. Defaults:
/// AWS us-east-1 list prices (see pipelines/README.md for their date).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostSettings {
    /// Build compute, per started minute (CodeBuild general1.small, Linux).
    pub build_usd_per_minute: f64,
    /// S3 PUT, COPY, POST and LIST requests, per 1,000.
    pub s3_write_usd_per_1000: f64,
    /// S3 GET, HEAD and other requests, per 1,000.
    pub s3_read_usd_per_1000: f64,
}

impl Default for CostSettings {
    fn default() -> Self {
        Self {
            build_usd_per_minute: 0.005,
            s3_write_usd_per_1000: 0.005,
            s3_read_usd_per_1000: 0.0004,
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
    let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: origin.display().to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let base = origin.parent().unwrap_or(Path::new(""));
    let given: toml::Table = text.parse().unwrap_or_default();
    if given.contains_key("lake") {
        config.lake = relative_to(base, &config.lake);
    }
    if given.contains_key("registry") {
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
        config.s3.endpoint = Some(endpoint);
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

/// Checks the merged configuration for contradictions, naming the key at fault.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    let data = &config.data;
    for (key, value) in [
        ("lake", &config.lake),
        ("registry", &config.registry),
        ("data.date_column", &data.date_column),
        ("data.target", &data.target),
        ("data.date_format", &data.date_format),
    ] {
        if value.trim().is_empty() {
            return Err(invalid(key, "must not be empty"));
        }
    }
    if data.series_keys.is_empty() {
        return Err(invalid("data.series_keys", "name at least one column"));
    }
    let mut seen = BTreeSet::new();
    let roles = std::iter::once(&data.date_column)
        .chain(&data.series_keys)
        .chain(std::iter::once(&data.target))
        .chain(&data.covariates);
    for column in roles {
        if !seen.insert(column.as_str()) {
            return Err(invalid(
                "data",
                format!("column {column:?} is given two roles (date, series key, target, covariate)"),
            ));
        }
    }
    let mut attribute_columns = BTreeSet::new();
    for (i, table) in data.attributes.iter().enumerate() {
        let key = format!("data.attributes[{i}]");
        if table.table.is_empty()
            || !table
                .table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                &format!("{key}.table"),
                "use letters, digits, '_' or '-'",
            ));
        }
        if table.join_keys.is_empty() {
            return Err(invalid(
                &format!("{key}.join_keys"),
                "name at least one series key",
            ));
        }
        for join_key in &table.join_keys {
            if !data.series_keys.contains(join_key) {
                return Err(invalid(
                    &format!("{key}.join_keys"),
                    format!("{join_key:?} is not one of data.series_keys"),
                ));
            }
        }
        for column in &table.columns {
            if seen.contains(column.as_str()) || !attribute_columns.insert(column.clone()) {
                return Err(invalid(
                    &format!("{key}.columns"),
                    format!("column {column:?} is used twice"),
                ));
            }
        }
    }
    for column in &data.categorical {
        if !data.covariates.contains(column) && !attribute_columns.contains(column) {
            return Err(invalid(
                "data.categorical",
                format!("{column:?} is neither a covariate nor an attribute column"),
            ));
        }
    }
    if let Some(open) = &data.open_flag
        && !data.covariates.contains(open)
    {
        return Err(invalid(
            "data.open_flag",
            format!("{open:?} must also be listed in data.covariates"),
        ));
    }
    if data
        .open_flag
        .as_ref()
        .is_some_and(|open| data.categorical.contains(open))
    {
        return Err(invalid(
            "data.open_flag",
            "the open flag is a 0/1 number, not a category",
        ));
    }
    let features = &config.features;
    if features
        .lags
        .iter()
        .chain(&features.rolling_means)
        .any(|&d| d == 0)
    {
        return Err(invalid("features", "lags and rolling means are whole days >= 1"));
    }
    let window = &config.window;
    if window.history_days == 0 {
        return Err(invalid("window.history_days", "must be at least 1"));
    }
    if window.holdout_days >= window.history_days {
        return Err(invalid(
            "window.holdout_days",
            "must be smaller than window.history_days",
        ));
    }
    check_training(config)?;
    config.s3.check().map_err(|problem| invalid("s3", problem))?;
    let ratio = config.validation.min_series_ratio;
    if !(0.0..=1.0).contains(&ratio) {
        return Err(invalid("validation.min_series_ratio", "must be between 0 and 1"));
    }
    Ok(())
}

fn check_training(config: &Config) -> Result<(), ConfigError> {
    let training = &config.training;
    let name = &training.model_name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(invalid("training.model_name", "use letters, digits, '_' or '-'"));
    }
    if training.candidates.is_empty() {
        return Err(invalid("training.candidates", "name at least one model family"));
    }
    if (1..1000).contains(&training.max_fit_rows) {
        return Err(invalid(
            "training.max_fit_rows",
            "must be 0 (no limit) or at least 1000",
        ));
    }
    let names = crate::features::FeatureLayout::new(&config.data, &config.features).names();
    // The seasonal-naive baseline is always scored, whatever the candidates.
    crate::models::check(Family::SeasonalNaive, &training.params(), &names).map_err(|e| {
        invalid(
            "features.lags",
            format!("{e}: the seasonal-naive baseline needs lags 7 and 14"),
        )
    })?;
    for &family in &training.candidates {
        crate::models::check(family, &training.params(), &names).map_err(|e| match e {
            crate::models::ModelError::InvalidParam { key, problem } => {
                invalid(&format!("training.{family}.{key}"), problem)
            }
            other => invalid("training.candidates", other.to_string()),
        })?;
    }
    let promotion = &config.promotion;
    if !(0.0..1.0).contains(&promotion.min_improvement) {
        return Err(invalid(
            "promotion.min_improvement",
            "must be at least 0 and below 1",
        ));
    }
    if !(promotion.max_abs_bias.is_finite() && promotion.max_abs_bias > 0.0) {
        return Err(invalid("promotion.max_abs_bias", "must be a number > 0"));
    }
    let cost = &config.cost;
    for (key, price) in [
        ("cost.build_usd_per_minute", cost.build_usd_per_minute),
        ("cost.s3_write_usd_per_1000", cost.s3_write_usd_per_1000),
        ("cost.s3_read_usd_per_1000", cost.s3_read_usd_per_1000),
    ] {
        if !(price.is_finite() && price >= 0.0) {
            return Err(invalid(key, "must be a price >= 0"));
        }
    }
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
            ("[training]\nmax_fit_rows = 10\n", "training.max_fit_rows"),
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
