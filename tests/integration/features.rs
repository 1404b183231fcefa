//! Features on real data: nothing about day D leaks into the features of day D
//! or earlier, while later days do see it.

use chrono::NaiveDate;
use polars::prelude::*;
use salescast_core::config::{self, Config};
use salescast_core::features::build_features;
use salescast_core::ingest::{clean_attributes, clean_sales, days_from_date, read_input};
use salescast_core::tables::Tables;

use crate::util::{repo_file, shared_data};

fn rossmann_config() -> Config {
    let path = repo_file("examples/rossmann.toml");
    config::parse_file(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
}

fn features_of(sales: &DataFrame, stores: &DataFrame, config: &Config) -> DataFrame {
    let tables = Tables::attributes(vec![(config.data.attributes[0].clone(), stores.clone())]);
    build_features(sales, &tables, &config.data, &config.features).unwrap()
}

/// The feature rows of days up to `day` (inclusive) or after it, without the target.
fn rows(df: &DataFrame, config: &Config, day: NaiveDate, up_to: bool) -> DataFrame {
    let date = col(config.data.date_column.as_str());
    let cut = lit(days_from_date(day)).cast(DataType::Date);
    let keep = if up_to { date.lt_eq(cut) } else { date.gt(cut) };
    df.clone()
        .lazy()
        .filter(keep)
        .drop(cols([config.data.target.as_str()]))
        .collect()
        .unwrap()
}

#[test]
fn changing_day_d_changes_no_feature_of_day_d_or_before() {
    let config = rossmann_config();
    let (raw, source) = read_input(
        &shared_data("rossmann/train.csv"),
        config.validation.max_line_bytes,
    )
    .unwrap();
    let sales = clean_sales(raw, &config.data, chrono::NaiveDate::MAX, &source).unwrap();
    let (raw_stores, store_source) = read_input(
        &shared_data("rossmann/store.csv"),
        config.validation.max_line_bytes,
    )
    .unwrap();
    let stores = clean_attributes(
        raw_stores,
        &config.data.attributes[0],
        &config.data,
        &store_source,
    )
    .unwrap();

    let day = NaiveDate::from_ymd_opt(2015, 3, 10).unwrap();
    let changed = sales
        .clone()
        .lazy()
        .with_column(
            when(col("Date").eq(lit(days_from_date(day)).cast(DataType::Date)))
                .then(col("Sales") * lit(10.0) + lit(1.0))
                .otherwise(col("Sales"))
                .alias("Sales"),
        )
        .collect()
        .unwrap();
    assert!(!changed.equals(&sales), "the change must touch real rows");

    let before = features_of(&sales, &stores, &config);
    let after = features_of(&changed, &stores, &config);
    assert_eq!(before.height(), sales.height());
    assert!(
        rows(&before, &config, day, true).equals_missing(&rows(&after, &config, day, true)),
        "a feature of day {day} or earlier changed when only day {day}'s sales changed"
    );
    assert!(
        !rows(&before, &config, day, false).equals_missing(&rows(&after, &config, day, false)),
        "later days must see the change (lags, rolling means), or this test proves nothing"
    );
}
