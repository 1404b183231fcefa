//! The search rules of `recipe.rs`: which signal forces a full search, in
//! which order, and when a day is warm.

use super::*;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2015, 7, d).unwrap()
}

fn recipe(searched_on: NaiveDate) -> Recipe {
    Recipe {
        family: Family::Gbdt,
        gbdt_config: Some("deep".into()),
        params: ModelParams::default(),
        rounds: Some(321),
        fingerprint: "f1".into(),
        searched_on,
    }
}

/// A warm day: a champion with a recipe searched 2 days ago with the same
/// settings, a search every 7 days, no drift, live accuracy as promised.
fn signals<'a>(recipe: &'a Recipe, alerts: &'a [String]) -> Signals<'a> {
    Signals {
        run_date: day(10),
        forced: false,
        every_days: 7,
        fingerprint: "f1",
        champion: Some(("abcdef0123456789", Some(recipe))),
        last_full_search: Some(day(8)),
        drift_alerts: alerts,
        live_excess: Some(0.05),
        live_limit: 0.25,
    }
}

#[test]
fn a_day_with_nothing_calling_for_a_search_is_warm() {
    let r = recipe(day(8));
    let warm = plan(&signals(&r, &[]));
    assert_eq!(warm.mode, SearchMode::Warm, "{warm:?}");
    assert_eq!(warm.trigger, Trigger::None);
    assert!(warm.reason.contains("321 rounds"), "{}", warm.reason);
    assert!(warm.reason.contains("2 days since"), "{}", warm.reason);
    let no_live = Signals {
        live_excess: None,
        ..signals(&r, &[])
    };
    assert_eq!(
        plan(&no_live).mode,
        SearchMode::Warm,
        "no live scores yet is no alarm"
    );
}

#[test]
fn each_signal_forces_a_full_search_with_its_reason() {
    let r = recipe(day(8));
    let alerts = vec!["sales_lag_7".to_string()];
    let other_settings = Recipe {
        fingerprint: "f2".into(),
        ..r.clone()
    };
    let cases: Vec<(Signals, Trigger, &str)> = vec![
        (
            Signals {
                forced: true,
                ..signals(&r, &[])
            },
            Trigger::Forced,
            "--full-search",
        ),
        (
            Signals {
                every_days: 0,
                ..signals(&r, &[])
            },
            Trigger::EveryDay,
            "every day",
        ),
        (
            Signals {
                champion: None,
                ..signals(&r, &[])
            },
            Trigger::NoChampion,
            "no champion",
        ),
        (
            Signals {
                champion: Some(("abcdef0123456789", None)),
                ..signals(&r, &[])
            },
            Trigger::NoRecipe,
            "no recipe",
        ),
        (
            Signals {
                champion: Some(("abcdef0123456789", Some(&other_settings))),
                ..signals(&r, &[])
            },
            Trigger::SettingsChanged,
            "settings differ",
        ),
        (
            Signals {
                run_date: day(15),
                ..signals(&r, &[])
            },
            Trigger::Schedule,
            "7 days since the last full search on 2015-07-08",
        ),
        (signals(&r, &alerts), Trigger::Drift, "sales_lag_7"),
        (
            Signals {
                live_excess: Some(0.3),
                ..signals(&r, &[])
            },
            Trigger::LiveAccuracy,
            "30.0% above",
        ),
    ];
    for (s, trigger, words) in cases {
        let p = plan(&s);
        assert_eq!(p.mode, SearchMode::Full, "{trigger:?}: {p:?}");
        assert_eq!(p.trigger, trigger, "{p:?}");
        assert!(p.reason.contains(words), "{trigger:?}: {}", p.reason);
    }
}

#[test]
fn the_schedule_counts_from_the_newest_full_search_of_the_log_or_the_recipe() {
    let r = recipe(day(1));
    // The champion's recipe is 9 days old, but a full search ran 3 days ago
    // (its challenger was kept): not due yet.
    let s = Signals {
        last_full_search: Some(day(7)),
        ..signals(&r, &[])
    };
    assert_eq!(plan(&s).mode, SearchMode::Warm);
    // No full search found in the log: the recipe's date counts.
    let s = Signals {
        last_full_search: None,
        ..signals(&r, &[])
    };
    assert_eq!(plan(&s).trigger, Trigger::Schedule);
    // One day short of the schedule is warm; the day it falls due is not.
    let r8 = recipe(day(8));
    let s = Signals {
        run_date: day(14),
        ..signals(&r8, &[])
    };
    assert_eq!(plan(&s).mode, SearchMode::Warm);
    // A run for a day before the last search (a backfill) searches again.
    let s = Signals {
        run_date: day(5),
        ..signals(&r8, &[])
    };
    assert_eq!(plan(&s).trigger, Trigger::Schedule);
    // every_days = 1: a full search every day but through the schedule.
    let s = Signals {
        every_days: 1,
        run_date: day(9),
        ..signals(&r8, &[])
    };
    assert_eq!(plan(&s).trigger, Trigger::Schedule);
}

#[test]
fn the_rules_apply_in_order_forced_first() {
    let r = recipe(day(8));
    let alerts = vec!["x".to_string()];
    let s = Signals {
        forced: true,
        champion: None,
        live_excess: Some(1.0),
        ..signals(&r, &alerts)
    };
    assert_eq!(plan(&s).trigger, Trigger::Forced);
    let s = Signals {
        run_date: day(20),
        live_excess: Some(1.0),
        ..signals(&r, &alerts)
    };
    assert_eq!(plan(&s).trigger, Trigger::Schedule);
}

#[test]
fn search_records_read_back_and_name_their_trigger_in_snake_case() {
    let record = plan(&Signals {
        live_excess: Some(0.5),
        ..signals(&recipe(day(8)), &[])
    });
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["mode"], "full");
    assert_eq!(json["trigger"], "live_accuracy");
    assert_eq!(serde_json::from_value::<SearchRecord>(json).unwrap(), record);
    let r = recipe(day(8));
    let back: Recipe = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}
