//! Property tests of the configuration: any file text gives a [`Config`] or
//! an error naming the file, and a merged config that passes the check or an
//! error naming the key; any `SALESCAST_*` variables give a layer or an
//! error naming the unknown one; flag > environment > file > default holds
//! for generated locations; and every value that passes the check can be
//! used without a panic (the window of any day, the date format, the line
//! bound, the features).

use std::fmt::Write as _;
use std::path::Path;

use chrono::NaiveDate;
use polars::prelude::*;
use proptest::prelude::*;

use super::*;
use crate::scan::{Layout, Scanner};
use crate::validate::Source;
use crate::window::Window;

/// 256 cases a property (proptest's default; `PROPTEST_CASES` sets more for
/// a deeper search); failures are not written into the source tree (a case
/// found failing is kept as a named test instead).
pub(super) fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const ORIGIN: &str = "c.toml";

/// Any day chrono has, the ends of its calendar included.
pub(super) fn any_day() -> impl Strategy<Value = NaiveDate> {
    let (min, max) = (NaiveDate::MIN.to_epoch_days(), NaiveDate::MAX.to_epoch_days());
    prop_oneof![
        (min..=max).prop_map(NaiveDate::from_epoch_days),
        (-40_000i32..40_000).prop_map(NaiveDate::from_epoch_days),
        prop::sample::select(vec![NaiveDate::MIN, NaiveDate::MAX]).prop_map(Some),
    ]
    .prop_map(|day| day.unwrap_or_default())
}

/// Text made of TOML's pieces and the config's keys, or any text.
fn toml_ish() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "[data]",
        "[window]",
        "[validation]",
        "[features]",
        "[forecast]",
        "[training]",
        "[training.gbdt]",
        "[[data.attributes]]",
        "[[data.calendars]]",
        "[s3]",
        "[serve]",
        "[cost]",
        "[promotion]",
        "lake",
        "registry",
        "history_days",
        "holdout_days",
        "max_line_bytes",
        "horizon_days",
        "lags",
        "date_format",
        "series_keys",
        "target",
        "traget",
        " = ",
        "=",
        "\"",
        "\"x\"",
        "\"%Q\"",
        "\"gs://b\"",
        "0",
        "1",
        "-1",
        "4294967295",
        "18446744073709551616",
        "1e400",
        "nan",
        "inf",
        "[1, 0]",
        "[]",
        "{}",
        "true",
        "\n",
        "\r\n",
        "#",
        "'",
        "\u{0}",
        "é",
    ]);
    prop_oneof![
        any::<String>(),
        prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat()),
    ]
}

/// The default configuration as a TOML table.
fn default_table() -> toml::Table {
    toml::Table::try_from(Config::default()).unwrap_or_default()
}

/// Every leaf of a table (arrays are leaves) by its path of keys.
fn leaves(table: &toml::Table, prefix: &[String], out: &mut Vec<Vec<String>>) {
    for (key, value) in table {
        let mut path = prefix.to_vec();
        path.push(key.clone());
        match value {
            toml::Value::Table(inner) => leaves(inner, &path, out),
            _ => out.push(path),
        }
    }
}

fn set(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            if let Some(toml::Value::Table(inner)) = table.get_mut(first) {
                set(inner, rest, value);
            }
        }
    }
}

/// Values a user might give a setting: edges of every type.
fn setting_value() -> impl Strategy<Value = toml::Value> {
    let int = prop_oneof![
        prop::sample::select(vec![
            0i64,
            1,
            -1,
            2,
            7,
            14,
            28,
            366,
            367,
            1000,
            36_524,
            36_525,
            36_526,
            65_536,
            i64::from(i32::MAX),
            i64::from(i32::MAX) + 1,
            i64::from(u32::MAX),
            i64::from(u32::MAX) + 1,
            1 << 30,
            (1 << 30) + 1,
            i64::MAX,
            i64::MIN,
        ]),
        any::<i64>(),
    ];
    let float = prop_oneof![
        prop::sample::select(vec![
            0.0,
            -0.0,
            0.5,
            0.8,
            1.0,
            1.5,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e308,
            5e-324
        ]),
        any::<f64>(),
    ];
    let text = prop_oneof![
        prop::sample::select(vec![
            "",
            " ",
            "%Y-%m-%d",
            "%d/%m/%Y",
            "%Y%m%d",
            "%y-%m-%d",
            "%Q",
            "%Y",
            "%",
            "%Z",
            "s3://",
            "s3://b/p",
            "gs://b",
            "file://x",
            "x",
            "date",
            "sales",
            "store",
            "item",
            "open",
            "promo",
            "gbdt",
            "seasonal_naive",
            "elastic_net",
            "http://127.0.0.1:1",
            "not a url",
        ])
        .prop_map(String::from),
        "[a-z_%/:.-]{0,8}",
    ];
    let leaf = prop_oneof![
        int.clone().prop_map(toml::Value::Integer),
        float.prop_map(toml::Value::Float),
        text.clone().prop_map(toml::Value::String),
        any::<bool>().prop_map(toml::Value::Boolean),
    ];
    prop_oneof![
        6 => leaf,
        2 => prop::collection::vec(int.prop_map(toml::Value::Integer), 0..4).prop_map(toml::Value::Array),
        1 => prop::collection::vec(text.prop_map(toml::Value::String), 0..3).prop_map(toml::Value::Array),
    ]
}

/// The default file with up to four settings changed to generated values.
fn mutated_file() -> impl Strategy<Value = String> {
    let table = default_table();
    let mut paths = Vec::new();
    leaves(&table, &[], &mut paths);
    prop::collection::vec((prop::sample::select(paths), setting_value()), 1..5).prop_map(move |changes| {
        let mut table = table.clone();
        for (path, value) in changes {
            set(&mut table, &path, value);
        }
        toml::to_string(&table).unwrap_or_default()
    })
}

/// Uses what the checked settings drive, as a run would: the window of
/// `day`, the date format on text, the line bound on a file.
fn use_checked(config: &Config, day: NaiveDate) -> Result<(), TestCaseError> {
    let settings = &config.window;
    if let Ok(window) = Window::ending(settings, day) {
        prop_assert_eq!(window.days(), i64::from(settings.history_days));
        prop_assert!(window.first_day <= window.inner_first_day);
        prop_assert!(window.inner_first_day <= window.holdout_first_day);
        prop_assert!(window.holdout_first_day <= window.last_day);
        let held_out = (window.last_day - window.holdout_first_day).num_days() + 1;
        prop_assert_eq!(held_out, i64::from(settings.holdout_days));
        prop_assert!(window.trained_through() < window.holdout_first_day);
        let again = Window::holding_out(settings, window.holdout_first_day, window.last_day);
        prop_assert_eq!(again.ok(), Some(window));
    }
    let format = &config.data.date_format;
    let mut written = String::new();
    prop_assert!(
        write!(written, "{}", day.format(format)).is_ok(),
        "{format:?} cannot write {day}"
    );
    let column = Column::new("date".into(), [written.as_str(), "2024-03-15", "", "x%Q"]);
    let _ = crate::validate::parse_dates(&column, format, &Source::new("t.csv", true));
    let mut scanner = Scanner::new(Layout::Csv, config.validation.max_line_bytes);
    if let Err(too_long) = scanner.feed(b"date,store\n2024-03-15,S01\n") {
        prop_assert!((1..=2).contains(&too_long.line));
    }
    Ok(())
}

/// A location as users write them: folders, file:// and s3:// URIs, and
/// some that are refused.
fn location() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,6}(/[a-z0-9._-]{1,6}){0,2}",
        2 => "s3://[a-z0-9]{3,8}/[a-z]{0,6}".prop_map(String::from),
        1 => "file:///tmp/[a-z]{1,6}".prop_map(String::from),
        1 => prop::sample::select(vec!["gs://b/p", "http://x/y", "", "  "]).prop_map(String::from),
    ]
}

fn refused(location: &str) -> bool {
    location.trim().is_empty() || crate::storage::locate(location).is_err()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_file_text_gives_a_config_or_an_error_naming_file_or_key(text in toml_ish(), day in any_day()) {
        match parse_file(&text, Path::new(ORIGIN)) {
            Err(ConfigError::Parse { path, message }) => {
                prop_assert_eq!(path, ORIGIN);
                prop_assert!(!message.is_empty());
            }
            Err(other) => prop_assert!(false, "not a parse error: {other}"),
            Ok(config) => match check(&config) {
                Ok(()) => use_checked(&config, day)?,
                Err(ConfigError::Invalid { key, problem }) => prop_assert!(!key.is_empty() && !problem.is_empty()),
                Err(other) => prop_assert!(false, "not a key's error: {other}"),
            },
        }
    }

    /// Settings changed to edge values: the file is refused naming the
    /// file, or the check names a key of the file's sections, or every
    /// checked value is usable.
    #[test]
    fn checked_settings_are_usable_and_refusals_name_the_key(text in mutated_file(), day in any_day()) {
        let sections: Vec<String> = default_table().keys().cloned().collect();
        match parse_file(&text, Path::new(ORIGIN)) {
            Err(ConfigError::Parse { path, .. }) => prop_assert_eq!(path, ORIGIN),
            Err(other) => prop_assert!(false, "not a parse error: {other}"),
            Ok(config) => match merge(Some(config), &EnvLayer::default(), &FlagLayer::default()) {
                Ok(config) => use_checked(&config, day)?,
                Err(ConfigError::Invalid { key, .. }) => {
                    let section = key.split(['.', '[']).next().unwrap_or_default();
                    prop_assert!(sections.iter().any(|s| s == section), "{key:?}\n{text}");
                }
                Err(other) => prop_assert!(false, "{other}\n{text}"),
            },
        }
    }

    /// A key the file does not know, in any section, is refused by name.
    #[test]
    fn an_unknown_key_is_refused_by_name(
        section in prop::option::of(prop::sample::select(vec!["window", "validation", "features", "forecast", "training", "promotion", "s3", "cost", "serve", "data"])),
        name in "[a-z][a-z_]{0,10}_x",
    ) {
        let mut table = default_table();
        let target = match section {
            Some(s) => match table.get_mut(s) {
                Some(toml::Value::Table(inner)) => inner,
                _ => return Err(TestCaseError::fail(format!("no section {s}"))),
            },
            None => &mut table,
        };
        target.insert(name.clone(), toml::Value::Integer(1));
        let text = toml::to_string(&table).unwrap_or_default();
        let err = parse_file(&text, Path::new(ORIGIN)).map(drop).unwrap_err();
        let message = err.to_string();
        prop_assert!(message.contains(ORIGIN) && message.contains(&name), "{message}");
    }

    /// Any variables: the `SALESCAST_*` ones are known (the last value of
    /// each kept) or the unknown one is named; the others are ignored.
    #[test]
    fn environment_variables_give_a_layer_or_name_the_unknown_one(
        vars in prop::collection::vec((
            prop_oneof![
                prop::sample::select(KNOWN_ENV.to_vec()).prop_map(String::from),
                "SALESCAST_[A-Z_]{0,8}",
                "[A-Za-z_]{1,10}",
                any::<String>(),
            ],
            any::<String>(),
        ), 0..8),
    ) {
        match EnvLayer::from_vars(vars.clone()) {
            Ok(layer) => {
                let last = |name: &str| vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone());
                prop_assert_eq!(layer.lake, last(ENV_LAKE));
                prop_assert_eq!(layer.registry, last(ENV_REGISTRY));
                prop_assert_eq!(layer.log, last(ENV_LOG));
                prop_assert_eq!(layer.config, last(ENV_CONFIG).map(std::path::PathBuf::from));
                prop_assert!(vars.iter().all(|(n, _)| !n.starts_with("SALESCAST_") || KNOWN_ENV.contains(&n.as_str())));
            }
            Err(ConfigError::UnknownEnv { name, .. }) => {
                prop_assert!(name.starts_with("SALESCAST_") && !KNOWN_ENV.contains(&name.as_str()));
                prop_assert!(vars.iter().any(|(n, _)| *n == name));
            }
            Err(other) => prop_assert!(false, "{other}"),
        }
    }

    /// Flag > environment > file > default, for the lake, the registry and
    /// the S3 endpoint; a refused location is named where the winner was given.
    #[test]
    fn flags_beat_environment_beat_file_beat_default(
        lake in (prop::option::of(location()), prop::option::of(location()), prop::option::of(location())),
        registry in (prop::option::of(location()), prop::option::of(location()), prop::option::of(location())),
        endpoint in prop::option::of("http://[a-z]{1,8}:[0-9]{2,4}"),
    ) {
        let quoted = |v: &Option<String>| v.as_ref().map(|v| format!("{:?}", v));
        let mut text = String::new();
        if let Some(v) = quoted(&lake.0) { text.push_str(&format!("lake = {v}\n")); }
        if let Some(v) = quoted(&registry.0) { text.push_str(&format!("registry = {v}\n")); }
        let file = parse_file(&text, Path::new(ORIGIN)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let env = EnvLayer { lake: lake.1.clone(), registry: registry.1.clone(), ..EnvLayer::default() };
        let flags = FlagLayer { lake: lake.2.clone(), registry: registry.2.clone(), s3_endpoint: endpoint.clone(), ..FlagLayer::default() };
        let defaults = Config::default();
        let winner = |(file, env, flag): &(Option<String>, Option<String>, Option<String>), default: &str, flag_name: &str, env_name: &str| {
            match (flag, env, file) {
                (Some(v), _, _) => (v.clone(), flag_name.to_string()),
                (None, Some(v), _) => (v.clone(), format!("{env_name} (environment)")),
                (None, None, Some(v)) => (v.clone(), "file".to_string()),
                (None, None, None) => (default.to_string(), "default".to_string()),
            }
        };
        let lake_won = winner(&lake, &defaults.lake, "--lake", ENV_LAKE);
        let registry_won = winner(&registry, &defaults.registry, "--registry", ENV_REGISTRY);
        match merge(Some(file), &env, &flags) {
            Ok(config) => {
                prop_assert_eq!(&config.lake, &lake_won.0);
                prop_assert_eq!(&config.registry, &registry_won.0);
                prop_assert_eq!(&config.s3.endpoint, &endpoint);
                prop_assert!(!refused(&lake_won.0) && !refused(&registry_won.0));
            }
            Err(err) => {
                let culprits: Vec<String> = [(&lake_won, "lake"), (&registry_won, "registry")]
                    .into_iter()
                    .filter(|((value, _), _)| refused(value))
                    .map(|((_, given), key)| if given == "file" || given == "default" { key.to_string() } else { given.clone() })
                    .collect();
                let named = match &err {
                    ConfigError::Argument { flag, .. } => flag.clone(),
                    ConfigError::Invalid { key, .. } => key.clone(),
                    other => return Err(TestCaseError::fail(other.to_string())),
                };
                prop_assert!(culprits.contains(&named), "{err} (culprits {culprits:?})");
            }
        }
    }
}

#[test]
fn the_default_table_is_the_default_config() {
    let table = default_table();
    assert!(
        table.contains_key("window") && table.contains_key("data"),
        "{table}"
    );
    let text = toml::to_string(&table).unwrap();
    assert_eq!(parse_file(&text, Path::new(ORIGIN)).unwrap(), Config::default());
}

/// Found by `flags_beat_environment_beat_file_beat_default`: an empty
/// `--registry` (or `--lake`, or the variable) was blamed on the config key
/// `registry`, not on the option the user typed.
#[test]
fn an_empty_location_is_named_where_it_was_given() {
    let flags = FlagLayer {
        registry: Some(String::new()),
        ..FlagLayer::default()
    };
    let err = merge(None, &EnvLayer::default(), &flags).unwrap_err();
    assert_eq!(err.to_string(), "option --registry: must not be empty");
    let env = EnvLayer {
        lake: Some("  ".into()),
        ..EnvLayer::default()
    };
    let err = merge(None, &env, &FlagLayer::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "option SALESCAST_LAKE (environment): must not be empty"
    );
    let file = parse_file("lake = \"\"\n", Path::new(ORIGIN)).unwrap();
    let err = merge(Some(file), &EnvLayer::default(), &FlagLayer::default()).unwrap_err();
    assert_eq!(err.to_string(), "config key lake: must not be empty");
}
