//! The data mapping: how a retailer's columns map onto what salescast needs
//! (date, series keys, target, covariates, categories, open flag, attribute
//! tables, calendar tables), and its checks. Every module that reads the
//! user's data takes it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::setting::{Invalid, invalid};

mod calendar;
pub use calendar::{CalendarTable, Texts};

/// How the user's columns map onto what salescast needs. A `[data]` section
/// in a file must name the date, series keys and target; the rest is optional
/// and empty when left out (a run with no `[data]` section at all uses the
/// demo sample's mapping, [`crate::sample::mapping`]).
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
    /// How ingest treats several rows of one day and series: `none` refuses
    /// them, `sum` adds up events (timestamps allowed in the date column).
    #[serde(default, with = "aggregate_field")]
    pub aggregate: Aggregate,
    /// Tables joined onto every row by its date (and optionally an attribute
    /// column): holidays, events, paydays. Known in advance, so also joined
    /// onto the days a forecast is for.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "calendars_field")]
    pub calendars: Vec<CalendarTable>,
}

/// What ingest does with input rows finer than a day (`data.aggregate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// One row per day and series; a second one is refused.
    #[default]
    None,
    /// Rows are events: the date column may hold a timestamp (UTC), the
    /// target is summed per day and series, covariates must agree.
    Sum,
}

/// `data.aggregate` is an ingest setting that a model never needs. Model
/// artifacts embed the mapping with bincode (not self-describing), so the
/// field is written there as nothing (a unit, zero bytes) and read back as
/// the default: artifacts keep their bytes and older ones still decode. In
/// text formats (TOML, the JSON manifests) it is the plain value.
mod aggregate_field {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Aggregate;

    pub fn serialize<S: Serializer>(value: &Aggregate, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            value.serialize(serializer)
        } else {
            serializer.serialize_unit()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Aggregate, D::Error> {
        if deserializer.is_human_readable() {
            Aggregate::deserialize(deserializer)
        } else {
            <()>::deserialize(deserializer).map(|()| Aggregate::None)
        }
    }
}

/// `data.calendars` in a model artifact: written by the artifact itself
/// after its other bytes, and only when there are calendars (see
/// `models::artifact`), so an artifact without calendars keeps the bytes it
/// had before calendars existed and older artifacts still decode. Here, in
/// bincode, the field is nothing (a unit, zero bytes) and reads back empty;
/// in text formats it is the plain list.
mod calendars_field {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::CalendarTable;

    pub fn serialize<S: Serializer>(value: &Vec<CalendarTable>, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            value.serialize(serializer)
        } else {
            serializer.serialize_unit()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<CalendarTable>, D::Error> {
        if deserializer.is_human_readable() {
            Vec::deserialize(deserializer)
        } else {
            <()>::deserialize(deserializer).map(|()| Vec::new())
        }
    }
}

pub(crate) fn default_date_format() -> String {
    "%Y-%m-%d".into()
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

/// Checks a chrono date format at config time, so a bad one is a usage error
/// (naming `data.date_format`) and not blamed on the data: every specifier
/// must be known, and a date written with it must read back as that date
/// (so it holds a year, a month and a day).
fn check_date_format(key: &str, format: &str) -> Result<(), Invalid> {
    use std::fmt::Write as _;
    let probe = chrono::NaiveDate::from_ymd_opt(2024, 3, 15).unwrap_or_default();
    let mut text = String::new();
    if write!(text, "{}", probe.format(format)).is_err() {
        return Err(invalid(
            key,
            format!("{format:?} is not a valid chrono date format (an unknown or incomplete % specifier)"),
        ));
    }
    match chrono::NaiveDate::parse_from_str(&text, format) {
        Ok(back) if back == probe => Ok(()),
        _ => Err(invalid(
            key,
            format!(
                "{format:?} does not name a whole date (it needs a year, a month and a day, e.g. \"%Y-%m-%d\")"
            ),
        )),
    }
}

impl DataMapping {
    /// Whether a model built with `self` reads rows as `other` maps them:
    /// equal in everything but `aggregate`, an ingest setting that model
    /// artifacts do not keep (a stored champion reads it back as the
    /// default, see `aggregate_field`).
    pub fn same_for_models(&self, other: &DataMapping) -> bool {
        let aggregate = other.aggregate;
        *other
            == DataMapping {
                aggregate,
                ..self.clone()
            }
    }

    /// The columns that name one row of the lake: the date, then the series keys.
    pub fn day_and_series(&self) -> Vec<String> {
        std::iter::once(self.date_column.clone())
            .chain(self.series_keys.iter().cloned())
            .collect()
    }

    /// Every attribute column of every table.
    pub fn attribute_columns(&self) -> impl Iterator<Item = &String> {
        self.attributes.iter().flat_map(|t| &t.columns)
    }

    /// Checks the mapping for contradictions, naming the key at fault.
    pub fn check(&self) -> Result<(), Invalid> {
        for (key, value) in [
            ("data.date_column", &self.date_column),
            ("data.target", &self.target),
            ("data.date_format", &self.date_format),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(key, "must not be empty"));
            }
        }
        check_date_format("data.date_format", &self.date_format)?;
        if self.series_keys.is_empty() {
            return Err(invalid("data.series_keys", "name at least one column"));
        }
        let mut seen = BTreeSet::new();
        let roles = std::iter::once(&self.date_column)
            .chain(&self.series_keys)
            .chain(std::iter::once(&self.target))
            .chain(&self.covariates);
        for column in roles {
            if !seen.insert(column.as_str()) {
                return Err(invalid(
                    "data",
                    format!("column {column:?} is given two roles (date, series key, target, covariate)"),
                ));
            }
        }
        let mut attribute_columns = BTreeSet::new();
        for (i, table) in self.attributes.iter().enumerate() {
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
                if !self.series_keys.contains(join_key) {
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
        let taken: BTreeSet<String> = seen
            .iter()
            .map(|c| c.to_string())
            .chain(attribute_columns.iter().cloned())
            .collect();
        calendar::check(self, &taken)?;
        let calendar_columns: BTreeSet<&String> = self.calendars.iter().flat_map(|c| &c.columns).collect();
        for column in &self.categorical {
            if !self.covariates.contains(column)
                && !attribute_columns.contains(column)
                && !calendar_columns.contains(column)
            {
                return Err(invalid(
                    "data.categorical",
                    format!("{column:?} is neither a covariate, an attribute column nor a calendar column"),
                ));
            }
        }
        if let Some(open) = &self.open_flag {
            if !self.covariates.contains(open) {
                return Err(invalid(
                    "data.open_flag",
                    format!("{open:?} must also be listed in data.covariates"),
                ));
            }
            if self.categorical.contains(open) {
                return Err(invalid(
                    "data.open_flag",
                    "the open flag is a 0/1 number, not a category",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_is_read_from_text_and_left_out_of_artifacts() {
        let sum = DataMapping {
            aggregate: Aggregate::Sum,
            ..DataMapping::default()
        };
        let json = serde_json::to_string(&sum).unwrap();
        assert!(json.contains("\"aggregate\":\"sum\""), "{json}");
        let back: DataMapping = serde_json::from_str(&json).unwrap();
        assert_eq!(back.aggregate, Aggregate::Sum);
        let config = bincode::config::standard();
        let encoded = bincode::serde::encode_to_vec(&sum, config).unwrap();
        assert_eq!(
            encoded,
            bincode::serde::encode_to_vec(DataMapping::default(), config).unwrap(),
            "artifacts do not change with data.aggregate"
        );
        let (decoded, used): (DataMapping, usize) =
            bincode::serde::decode_from_slice(&encoded, config).unwrap();
        assert_eq!(used, encoded.len());
        assert_eq!(
            decoded.attributes, sum.attributes,
            "the fields after it still line up"
        );
        // A champion stored under data.aggregate = "sum" reads rows as the
        // configuration does (warm days, scoring and predict depend on it).
        assert_ne!(decoded, sum);
        assert!(decoded.same_for_models(&sum) && sum.same_for_models(&decoded));
        let other = DataMapping {
            target: "other".into(),
            ..sum.clone()
        };
        assert!(!decoded.same_for_models(&other));
        let bad = toml::from_str::<DataMapping>(
            "date_column = \"d\"\nseries_keys = [\"s\"]\ntarget = \"t\"\naggregate = \"mean\"",
        )
        .unwrap_err();
        assert!(bad.to_string().contains("unknown variant `mean`"), "{bad}");
    }
}
