//! A generated, realistic sample of retail sales for the demo and for tests
//! that need a lake without a dataset: weekly and yearly seasonality, a trend,
//! promotions, holidays, closed days (Sundays in some stores, holidays
//! everywhere), noise, and a few series with gaps. Deterministic per seed.
//!
//! Its columns are the embedded default mapping's: `date, store, item, sales,
//! promo, holiday, open`, plus a `stores` table with `store_type, store_size`.

use chrono::{Datelike, NaiveDate, Weekday};
use polars::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone)]
pub struct SampleSpec {
    pub stores: usize,
    pub items: usize,
    pub first_day: NaiveDate,
    pub days: usize,
    pub seed: u64,
}

impl Default for SampleSpec {
    fn default() -> Self {
        Self {
            stores: 6,
            items: 5,
            first_day: NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid date"),
            days: 2 * 365,
            seed: 7,
        }
    }
}

impl SampleSpec {
    pub fn last_day(&self) -> NaiveDate {
        self.first_day + chrono::Days::new(self.days as u64 - 1)
    }
}

/// The generated sales and store attribute tables.
pub struct Sample {
    pub sales: DataFrame,
    pub stores: DataFrame,
}

const STORE_TYPES: [&str; 3] = ["mall", "street", "outlet"];

fn holiday_of(day: NaiveDate) -> &'static str {
    match (day.month(), day.day()) {
        (1, 1) => "new_year",
        (5, 1) => "labour_day",
        (12, 25) | (12, 26) => "christmas",
        _ => "0",
    }
}

/// One standard normal draw (Box-Muller), to keep the dependency list short.
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

pub fn generate(spec: &SampleSpec) -> PolarsResult<Sample> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let store_type: Vec<&str> = (0..spec.stores)
        .map(|s| STORE_TYPES[s % STORE_TYPES.len()])
        .collect();
    let store_size: Vec<f64> = (0..spec.stores)
        .map(|_| rng.random_range(400.0..2000.0_f64).round())
        .collect();
    let item_level: Vec<f64> = (0..spec.items).map(|_| rng.random_range(8.0..60.0)).collect();
    // Promotions run per store, a few days at a time.
    let promo_days: Vec<Vec<bool>> = (0..spec.stores)
        .map(|_| {
            let mut on = vec![false; spec.days];
            let mut d = 0;
            while d < spec.days {
                if rng.random_bool(0.08) {
                    let len = rng.random_range(3..8).min(spec.days - d);
                    on[d..d + len].iter_mut().for_each(|p| *p = true);
                    d += len + 7;
                } else {
                    d += 1;
                }
            }
            on
        })
        .collect();

    let (mut date, mut store, mut item, mut sales) = (vec![], vec![], vec![], vec![]);
    let (mut promo, mut holiday, mut open) = (vec![], vec![], vec![]);
    let calendar = (0..spec.days as u64).map(|d| spec.first_day + chrono::Days::new(d));
    for (d, day) in calendar.enumerate() {
        let year_phase = 2.0 * std::f64::consts::PI * f64::from(day.ordinal()) / 365.25;
        let season = 1.0 + 0.25 * (year_phase - 5.5).cos();
        let weekly = [1.0, 0.95, 0.97, 1.05, 1.25, 1.45, 0.6][day.weekday().num_days_from_monday() as usize];
        let trend = 1.0 + 0.15 * d as f64 / 365.0;
        let holiday_name = holiday_of(day);
        for s in 0..spec.stores {
            // "outlet" stores close on Sundays; every store closes on holidays.
            let is_open =
                holiday_name == "0" && !(store_type[s] == "outlet" && day.weekday() == Weekday::Sun);
            let size = store_size[s] / 1000.0;
            for (i, level) in item_level.iter().enumerate() {
                // Two series go quiet for 90 days (a refit, a delisting).
                let in_gap = (s * spec.items + i) % 13 == 5 && (200..290).contains(&d);
                if in_gap {
                    continue;
                }
                let lift = if promo_days[s][d] { 1.35 } else { 1.0 };
                let mean = level * size * season * weekly * trend * lift;
                let value = if is_open {
                    (mean * (1.0 + 0.12 * normal(&mut rng))).max(0.0).round()
                } else {
                    0.0
                };
                date.push(day.format("%Y-%m-%d").to_string());
                store.push(format!("S{:02}", s + 1));
                item.push(format!("I{:02}", i + 1));
                sales.push(value);
                promo.push(i64::from(promo_days[s][d]));
                holiday.push(holiday_name);
                open.push(i64::from(is_open));
            }
        }
    }
    let sales = df!(
        "date" => date, "store" => store, "item" => item, "sales" => sales,
        "promo" => promo, "holiday" => holiday, "open" => open,
    )?;
    let stores = df!(
        "store" => (1..=spec.stores).map(|s| format!("S{s:02}")).collect::<Vec<_>>(),
        "store_type" => store_type,
        "store_size" => store_size,
    )?;
    Ok(Sample { sales, stores })
}

/// Writes a frame as CSV, the way users' exports arrive.
pub fn write_csv(df: &mut DataFrame, path: &std::path::Path) -> PolarsResult<()> {
    let file = std::fs::File::create(path)?;
    CsvWriter::new(file).include_header(true).finish(df)
}

/// The default mapping is the demo sample's (defined here, beside the sample,
/// so the mapping module knows nothing of the demo).
impl Default for crate::mapping::DataMapping {
    fn default() -> Self {
        mapping()
    }
}

/// The mapping of the sample's columns: the embedded default of a run with no
/// `[data]` section.
pub fn mapping() -> crate::mapping::DataMapping {
    use crate::mapping::{AttributeTable, DataMapping, default_date_format};
    DataMapping {
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
        aggregate: Default::default(),
        calendars: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_deterministic_and_has_gaps_and_closed_days() {
        let spec = SampleSpec {
            days: 400,
            ..SampleSpec::default()
        };
        let a = generate(&spec).unwrap();
        let b = generate(&spec).unwrap();
        assert!(a.sales.equals(&b.sales));
        let full = spec.stores * spec.items * spec.days;
        assert!(a.sales.height() < full, "some series have gaps");
        let open = a.sales.column("open").unwrap().i64().unwrap();
        assert!(open.iter().any(|v| v == Some(0)), "some days are closed");
    }
}
