//! Property tests of the feature settings a config check lets through: any
//! lags and rolling means that pass `config::check` build the features they
//! name without a panic, and each value is what it says (the history of that
//! many calendar days before, closed days not history), and the walk over
//! the sorted window builds the join's frame bit for bit.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::config::Config;

/// 256 cases a property (proptest's default; `PROPTEST_CASES` sets more for
/// a deeper search); failures are not written into the source tree (a case
/// found failing is kept as a named test instead).
/// About half the generated settings are refused by the check (and skipped):
/// up to four refusals a case are allowed, so a check that refused (nearly)
/// everything would fail the test rather than pass it empty.
fn config() -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        failure_persistence: None,
        max_global_rejects: base.cases.saturating_mul(4),
        ..base
    }
}

/// Days as users might write them: small, a year, the window's bound, and
/// the edges of 32-bit integers.
fn days() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => 1u32..40,
        2 => prop::sample::select(vec![0, 7, 14, 28, 365, 366, 36_525, 36_526, 1 << 20, i32::MAX as u32, 1 << 31, u32::MAX]),
        1 => 1u32..=36_600,
        1 => any::<u32>(),
    ]
}

const FIRST_DAY: i32 = 18_262; // 2020-01-01

/// Two stores over 40 days with gaps; every sixth day closed.
fn sales() -> (DataFrame, BTreeMap<(String, i32), Option<f64>>) {
    let mut rows = Vec::new();
    for (s, store) in ["s", "t"].into_iter().enumerate() {
        for d in (0..40).filter(|d| (d + 3 * s as i32) % 9 != 4) {
            let open = if d % 6 == 5 { 0.0 } else { 1.0 };
            rows.push((
                store.to_string(),
                FIRST_DAY + d,
                10.0 * f64::from(d + 1) + s as f64,
                open,
            ));
        }
    }
    let history = rows
        .iter()
        .map(|(store, day, sales, open)| ((store.clone(), *day), (*open == 1.0).then_some(*sales)))
        .collect();
    let frame = DataFrame::new(
        rows.len(),
        vec![
            Column::new("date".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>())
                .cast(&DataType::Date)
                .unwrap_or_else(|_| Column::new_empty("date".into(), &DataType::Date)),
            Column::new(
                "store".into(),
                rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            ),
            Column::new("sales".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
            Column::new("open".into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
        ],
    )
    .unwrap_or_default();
    (frame, history)
}

fn mapping() -> DataMapping {
    DataMapping {
        series_keys: vec!["store".into()],
        covariates: vec!["open".into()],
        categorical: vec![],
        open_flag: Some("open".into()),
        attributes: vec![],
        ..DataMapping::default()
    }
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        (a, b) => a == b,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn checked_feature_settings_build_the_features_they_name(
        extra_lags in prop::collection::btree_set(days(), 0..4),
        rolling_means in prop::collection::btree_set(days(), 0..4),
    ) {
        // The seasonal-naive baseline, always scored, needs lags 7 and 14.
        // (Days given twice are refused: see the test below.)
        let lags: Vec<u32> = extra_lags.into_iter().filter(|d| *d != 7 && *d != 14).chain([7, 14]).collect();
        let rolling_means = rolling_means.into_iter().collect();
        let settings = FeatureSettings { lags, rolling_means };
        let checked = Config {
            data: mapping(),
            features: settings.clone(),
            ..Config::default()
        };
        prop_assume!(crate::config::check(&checked).is_ok());
        let (frame, history) = sales();
        let out = build_features(&frame, &Default::default(), &mapping(), &settings)
            .map_err(|e| TestCaseError::fail(format!("{settings:?} passed the check: {e}")))?;
        // The walk over the sorted window and the join per lag: the same frame.
        let joined = build(&frame, &Default::default(), &mapping(), &settings, Lags::Join)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        super::tests::assert_same_bits(&out, &joined);
        let names = FeatureLayout::new(&mapping(), &settings).names();
        for name in &names {
            prop_assert!(out.column(name).is_ok(), "{name} missing");
        }
        let days: Vec<Option<i32>> = out
            .column("date")
            .and_then(|c| c.date().map(|d| d.physical().iter().collect()))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let stores: Vec<Option<&str>> = out
            .column("store")
            .and_then(|c| c.str().map(|s| s.iter().collect()))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(days.len(), history.len());
        let value = |name: &str| -> Result<Vec<Option<f64>>, TestCaseError> {
            out.column(name)
                .and_then(|c| c.f64().map(|v| v.iter().collect()))
                .map_err(|e| TestCaseError::fail(e.to_string()))
        };
        for &lag in &settings.lags {
            let got = value(&lag_name(lag))?;
            for (i, (day, store)) in days.iter().zip(&stores).enumerate() {
                let (Some(day), Some(store)) = (day, store) else { continue };
                let before = i64::from(*day) - i64::from(lag);
                let expected = i32::try_from(before)
                    .ok()
                    .and_then(|b| history.get(&(store.to_string(), b)).copied().flatten());
                prop_assert!(close(got[i], expected), "lag {lag}, {store} day {day}: {:?}, expected {expected:?}", got[i]);
            }
        }
        for &window in &settings.rolling_means {
            let got = value(&rolling_mean_name(window))?;
            for (i, (day, store)) in days.iter().zip(&stores).enumerate() {
                let (Some(day), Some(store)) = (day, store) else { continue };
                let start = i64::from(*day) - i64::from(window);
                let seen: Vec<f64> = history
                    .iter()
                    .filter(|((s, d), _)| s == store && i64::from(*d) >= start && *d < *day)
                    .filter_map(|(_, v)| *v)
                    .collect();
                let expected = (!seen.is_empty()).then(|| seen.iter().sum::<f64>() / seen.len() as f64);
                prop_assert!(close(got[i], expected), "mean {window}, {store} day {day}: {:?}, expected {expected:?}", got[i]);
            }
        }
    }
}

/// Found by the property above: lags given twice passed the check, and
/// building the features then failed (two columns `lag_N`); a lag of 2^31
/// days or more wrapped to a negative shift, a value from the future.
#[test]
fn duplicate_and_overlong_lags_are_refused_by_the_check() {
    for (lags, rolling_means, key) in [
        (vec![2_147_483_648, 2_147_483_648, 7, 14], vec![], "features.lags"),
        (vec![7, 14, 7], vec![], "features.lags"),
        (vec![1 << 31, 7, 14], vec![], "features.lags"),
        (vec![u32::MAX, 7, 14], vec![], "features.lags"),
        (vec![7, 14], vec![28, 28], "features.rolling_means"),
        (vec![7, 14], vec![36_526], "features.rolling_means"),
    ] {
        let settings = FeatureSettings { lags, rolling_means };
        assert_eq!(settings.check().unwrap_err().key, key, "{settings:?}");
    }
    let longest = FeatureSettings {
        lags: vec![7, 14, MAX_FEATURE_DAYS],
        rolling_means: vec![MAX_FEATURE_DAYS],
    };
    assert!(longest.check().is_ok());
    let (frame, _) = sales();
    let out = build_features(&frame, &Default::default(), &mapping(), &longest).unwrap();
    let lag = out.column("lag_36525").unwrap().f64().unwrap();
    assert_eq!(
        lag.null_count(),
        lag.len(),
        "no day has history a hundred years before"
    );
}
