//! Unit tests of calendar tables: cleaning a Favorita-like holiday file
//! (filter, duplicates, bad rows) and joining by date and by state.

use super::*;
use crate::mapping::{AttributeTable, Texts};
use crate::tables::join_calendars;

fn mapping(calendars: Vec<CalendarTable>) -> DataMapping {
    DataMapping {
        series_keys: vec!["store".into()],
        covariates: vec![],
        categorical: vec!["state".into()],
        open_flag: None,
        attributes: vec![AttributeTable {
            table: "stores".into(),
            join_keys: vec!["store".into()],
            columns: vec!["state".into()],
        }],
        calendars,
        ..DataMapping::default()
    }
}

fn calendar(name: &str, locale: &str, by: Option<&str>, flag: &str) -> CalendarTable {
    CalendarTable {
        name: name.into(),
        date_column: "date".into(),
        date_format: "%Y-%m-%d".into(),
        by: by.map(str::to_string),
        by_column: by.map(|_| "locale_name".into()),
        filter: [
            ("locale".to_string(), Texts::One(locale.into())),
            ("transferred".to_string(), Texts::One("False".into())),
        ]
        .into(),
        flag: Some(flag.into()),
        columns: vec![],
    }
}

/// date, locale, locale_name, transferred
fn holidays(rows: &[(&str, &str, &str, &str)]) -> DataFrame {
    df!(
        "date" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "type" => vec!["Holiday"; rows.len()],
        "locale" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "locale_name" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        "transferred" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
    )
    .unwrap()
}

const FILE: &[(&str, &str, &str, &str)] = &[
    ("2020-01-01", "National", "Ecuador", "False"),
    ("2020-01-01", "National", "Ecuador", "False"),
    ("2020-01-03", "Regional", "Pichincha", "False"),
    ("2020-01-04", "National", "Ecuador", "True"),
    ("2020-01-05", "Regional", "Azuay", "False"),
    ("2020-01-09", "Local", "Quito", "False"),
];

#[test]
fn where_keeps_its_rows_and_agreeing_duplicates_are_one() {
    let national = calendar("national", "National", None, "national_holiday");
    let m = mapping(vec![national.clone()]);
    let out = clean_calendar(holidays(FILE), &national, &m, &Source::new("h.csv", true)).unwrap();
    assert_eq!(out.height(), 1, "{out}");
    assert_eq!(
        out.get_column_names()
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["date", COVERS_UNTIL]
    );
    assert_eq!(
        covers_until(&out),
        NaiveDate::from_ymd_opt(2020, 1, 9),
        "the file's last day"
    );

    let regional = calendar("regional", "Regional", Some("state"), "regional_holiday");
    let out = clean_calendar(holidays(FILE), &regional, &m, &Source::new("h.csv", true)).unwrap();
    let states: Vec<_> = out.column("locale_name").unwrap().str().unwrap().iter().collect();
    assert_eq!(states, [Some("Pichincha"), Some("Azuay")]);
}

#[test]
fn bad_files_are_refused_naming_the_row() {
    let national = calendar("national", "National", None, "f");
    let m = mapping(vec![national.clone()]);
    let source = Source::new("h.csv", true);
    let mut rows = FILE.to_vec();
    rows[2].0 = "2020-13-01";
    let err = clean_calendar(holidays(&rows), &national, &m, &source).unwrap_err();
    assert_eq!(
        err.to_string(),
        "h.csv, line 4, column \"date\": \"2020-13-01\" is not a date in format \"%Y-%m-%d\""
    );
    let none = calendar("x", "Nowhere", None, "f");
    let err = clean_calendar(holidays(FILE), &none, &m, &source).unwrap_err();
    assert!(err.to_string().contains("no row is left after `where`"), "{err}");
    let mut with_value = national.clone();
    with_value.columns = vec!["type".into()];
    let mut m = mapping(vec![with_value.clone()]);
    m.categorical.push("type".into());
    let mut df = holidays(FILE);
    df.with_column(Column::new(
        "type".into(),
        ["Holiday", "Bridge", "Holiday", "Holiday", "Holiday", "Holiday"],
    ))
    .unwrap();
    let err = clean_calendar(df, &with_value, &m, &source).unwrap_err();
    assert_eq!(
        err.to_string(),
        "h.csv, line 3, column \"type\": same day as line 2 (date=2020-01-01) with another value \
         (\"Holiday\" there, \"Bridge\" here): which one applies is ambiguous; keep one row, or narrow `where`"
    );
}

#[test]
fn calendars_join_by_date_and_by_the_stores_state() {
    let national = calendar("national", "National", None, "national_holiday");
    let regional = calendar("regional", "Regional", Some("state"), "regional_holiday");
    let m = mapping(vec![national.clone(), regional.clone()]);
    let source = Source::new("h.csv", true);
    let tables = vec![
        (
            national.clone(),
            clean_calendar(holidays(FILE), &national, &m, &source).unwrap(),
        ),
        (
            regional.clone(),
            clean_calendar(holidays(FILE), &regional, &m, &source).unwrap(),
        ),
    ];
    let day = |d: u32| crate::ingest::days_from_date(NaiveDate::from_ymd_opt(2020, 1, d).unwrap());
    let rows = [
        (1, "Pichincha"),
        (3, "Pichincha"),
        (3, "Azuay"),
        (5, "Azuay"),
        (5, "Pichincha"),
        (4, "Azuay"),
    ];
    let frame = df!(
        "date" => rows.iter().map(|r| day(r.0)).collect::<Vec<_>>(),
        "state" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
    )
    .unwrap()
    .lazy()
    .with_column(col("date").cast(DataType::Date));
    let out = join_calendars(frame, &tables, &m)
        .unwrap()
        .sort(["date", "state"], Default::default())
        .collect()
        .unwrap();
    let values =
        |name: &str| -> Vec<Option<f64>> { out.column(name).unwrap().f64().unwrap().iter().collect() };
    // Sorted: (1,P) (3,A) (3,P) (4,A) (5,A) (5,P).
    assert_eq!(
        values("national_holiday"),
        [Some(1.0), Some(0.0), Some(0.0), Some(0.0), Some(0.0), Some(0.0)]
    );
    assert_eq!(
        values("regional_holiday"),
        [Some(0.0), Some(0.0), Some(1.0), Some(0.0), Some(1.0), Some(0.0)]
    );
}
