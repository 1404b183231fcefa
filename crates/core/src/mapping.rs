//! The data mapping: how a retailer's columns map onto what salescast needs
//! (date, series keys, target, covariates, categories, open flag, attribute
//! tables), and its checks. Every module that reads the user's data takes it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::setting::{Invalid, invalid};

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
fn check_date_format(format: &str) -> Result<(), Invalid> {
    use std::fmt::Write as _;
    let key = "data.date_format";
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
        check_date_format(&self.date_format)?;
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
        for column in &self.categorical {
            if !self.covariates.contains(column) && !attribute_columns.contains(column) {
                return Err(invalid(
                    "data.categorical",
                    format!("{column:?} is neither a covariate nor an attribute column"),
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
