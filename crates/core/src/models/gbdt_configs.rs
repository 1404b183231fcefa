//! Candidate configurations of the gradient-boosted trees
//! (`training.gbdt_configs`): each a name and the settings of
//! `[training.gbdt]` it changes. The daily job fits every one on the inner
//! training rows and keeps the best on the inner validation window, as it
//! picks among families, so the trees' shape is chosen by the data rather
//! than fixed for every dataset.

use serde::{Deserialize, Serialize};

use super::target::{TARGETS, Target};
use super::{GbdtParams, ModelError};

/// The most configurations one run fits: each costs a boosted-trees fit.
pub const MAX_GBDT_CONFIGS: usize = 6;

/// One candidate configuration: `name` and the `[training.gbdt]` settings it
/// overrides (the others as configured there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GbdtConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_leaf_weight: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subsample: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colsample_bytree: Option<f64>,
    /// The scale of the target: `none`, `log1p` or `sqrt` (see
    /// [`Target`]); text here so that an unknown value is refused naming
    /// this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl GbdtConfig {
    /// A configuration named `name` that changes nothing.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            max_depth: None,
            min_leaf_weight: None,
            l2: None,
            learning_rate: None,
            subsample: None,
            colsample_bytree: None,
            target: None,
        }
    }

    /// The scale this configuration sets, if any; an error names the value.
    pub fn target(&self) -> Result<Option<Target>, String> {
        self.target
            .as_deref()
            .map(|name| Target::parse(name).ok_or_else(|| format!("{name:?}: use {TARGETS}")))
            .transpose()
    }

    /// `base` with this configuration's settings (an unknown `target`, which
    /// [`check_configs`] refuses, changes nothing).
    pub fn apply(&self, base: &GbdtParams) -> GbdtParams {
        GbdtParams {
            max_depth: self.max_depth.unwrap_or(base.max_depth),
            min_leaf_weight: self.min_leaf_weight.unwrap_or(base.min_leaf_weight),
            l2: self.l2.unwrap_or(base.l2),
            learning_rate: self.learning_rate.unwrap_or(base.learning_rate),
            subsample: self.subsample.unwrap_or(base.subsample),
            colsample_bytree: self.colsample_bytree.unwrap_or(base.colsample_bytree),
            target: self.target().ok().flatten().unwrap_or(base.target),
            ..base.clone()
        }
    }
}

/// The default candidates (see BENCHMARKS.md, "Defaults chosen by the
/// data"): the configured trees as they are (depth 8, leaves of at least 20
/// rows: best on rossmann), and shallower trees with larger leaves (depth 6,
/// 50 rows), better on the short, noisy pharmacy series.
pub fn default_configs() -> Vec<GbdtConfig> {
    vec![
        GbdtConfig::named("deep"),
        GbdtConfig {
            max_depth: Some(6),
            min_leaf_weight: Some(50.0),
            ..GbdtConfig::named("regularised")
        },
    ]
}

/// Checks `configs` against `base`: unique names of letters, digits, '_' or
/// '-', at most [`MAX_GBDT_CONFIGS`], and every resulting parameter set
/// valid. The error's key is `gbdt_configs[i]` or `gbdt_configs[i].KEY`
/// (`i` from 0, in the order of the file).
pub fn check_configs(configs: &[GbdtConfig], base: &GbdtParams) -> Result<(), ModelError> {
    let invalid = |key: String, problem: String| ModelError::InvalidParam { key, problem };
    if configs.len() > MAX_GBDT_CONFIGS {
        return Err(invalid(
            "gbdt_configs".into(),
            format!(
                "{} configurations: at most {MAX_GBDT_CONFIGS} (each is a boosted-trees fit in every run)",
                configs.len()
            ),
        ));
    }
    for (i, config) in configs.iter().enumerate() {
        let name = &config.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                format!("gbdt_configs[{i}].name"),
                format!("{name:?}: use letters, digits, '_' or '-'"),
            ));
        }
        if configs[..i].iter().any(|earlier| &earlier.name == name) {
            return Err(invalid(
                format!("gbdt_configs[{i}].name"),
                format!("{name:?} is used twice"),
            ));
        }
        if let Err(problem) = config.target() {
            return Err(invalid(
                format!("gbdt_configs[{i}].target"),
                format!("{problem} (in {name:?})"),
            ));
        }
        config.apply(base).check().map_err(|e| match e {
            ModelError::InvalidParam { key, problem } => invalid(
                format!("gbdt_configs[{i}].{key}"),
                format!("{problem} (in {name:?})"),
            ),
            other => other,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_changes_only_what_it_names() {
        let base = GbdtParams {
            learning_rate: 0.1,
            ..GbdtParams::default()
        };
        let shallow = GbdtConfig {
            max_depth: Some(3),
            l2: Some(5.0),
            ..GbdtConfig::named("shallow")
        };
        let applied = shallow.apply(&base);
        assert_eq!(applied.max_depth, 3);
        assert_eq!(applied.l2, 5.0);
        assert_eq!(applied.learning_rate, 0.1, "from [training.gbdt]");
        assert_eq!(applied.max_rounds, base.max_rounds);
        assert_eq!(GbdtConfig::named("same").apply(&base), base);
        assert_eq!(applied.target, Target::None);
        for (name, target) in [
            ("log1p", Target::Log1p),
            ("sqrt", Target::Sqrt),
            ("none", Target::None),
        ] {
            let config = GbdtConfig {
                target: Some(name.into()),
                ..GbdtConfig::named("t")
            };
            assert_eq!(config.apply(&base).target, target);
            let log_base = GbdtParams {
                target: Target::Log1p,
                ..base.clone()
            };
            assert_eq!(
                config.apply(&log_base).target,
                target,
                "the configuration's own scale wins"
            );
        }
    }

    #[test]
    fn bad_configs_are_refused_naming_the_key() {
        let base = GbdtParams::default();
        let cases: Vec<(Vec<GbdtConfig>, &str)> = vec![
            (
                vec![
                    GbdtConfig::named("a"),
                    GbdtConfig {
                        max_depth: Some(0),
                        ..GbdtConfig::named("b")
                    },
                ],
                "gbdt_configs[1].max_depth",
            ),
            (
                vec![GbdtConfig {
                    min_leaf_weight: Some(-1.0),
                    ..GbdtConfig::named("a")
                }],
                "gbdt_configs[0].min_leaf_weight",
            ),
            (
                vec![GbdtConfig {
                    learning_rate: Some(f32::NAN),
                    ..GbdtConfig::named("a")
                }],
                "gbdt_configs[0].learning_rate",
            ),
            (
                vec![GbdtConfig {
                    subsample: Some(1.5),
                    ..GbdtConfig::named("a")
                }],
                "gbdt_configs[0].subsample",
            ),
            (
                vec![GbdtConfig {
                    colsample_bytree: Some(0.0),
                    ..GbdtConfig::named("a")
                }],
                "gbdt_configs[0].colsample_bytree",
            ),
            (
                vec![
                    GbdtConfig {
                        target: Some("log1p".into()),
                        ..GbdtConfig::named("a")
                    },
                    GbdtConfig {
                        target: Some("log".into()),
                        ..GbdtConfig::named("b")
                    },
                ],
                "gbdt_configs[1].target",
            ),
            (vec![GbdtConfig::named("a b")], "gbdt_configs[0].name"),
            (vec![GbdtConfig::named("")], "gbdt_configs[0].name"),
            (
                vec![GbdtConfig::named("a"), GbdtConfig::named("a")],
                "gbdt_configs[1].name",
            ),
            (
                (0..=MAX_GBDT_CONFIGS)
                    .map(|i| GbdtConfig::named(&format!("c{i}")))
                    .collect(),
                "gbdt_configs:",
            ),
        ];
        for (configs, key) in cases {
            let err = check_configs(&configs, &base).unwrap_err().to_string();
            assert!(err.starts_with(key), "{key}: {err}");
        }
        assert!(check_configs(&default_configs(), &base).is_ok());
        assert!(check_configs(&[], &base).is_ok());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<GbdtConfig>("name = \"a\"\nmax_leaves = 8\n").unwrap_err();
        assert!(err.to_string().contains("max_leaves"), "{err}");
        assert!(
            toml::from_str::<GbdtConfig>("max_depth = 3\n").is_err(),
            "a name is required"
        );
    }
}
