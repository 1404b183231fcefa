//! Calendar tables in the mapping (`[[data.calendars]]`): tables that join
//! onto sales rows by date (national holidays, events, paydays), or by date
//! and the value of an attribute column of the row's series (a regional
//! holiday by the store's state, a local one by its city). Their
//! configuration and its checks; reading, storing and joining them is
//! `crate::calendar`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{DataMapping, check_date_format, default_date_format};
use crate::setting::{Invalid, invalid};

/// One calendar table, ingested with `salescast ingest --calendar NAME=FILE`
/// and stored in the lake at `calendars/<name>.parquet`.
///
/// Its features are the `flag` (1 on a day, and `by` value, with a row in
/// the table after `where`, 0 on any other day) and the `columns` (numbers,
/// or categories when listed in `data.categorical`). A day the table does
/// not hold gets 0 (numbers and the flag) or no category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarTable {
    /// Letters, digits, '_' or '-'; several calendars may be read from one file.
    pub name: String,
    /// The file's column holding the day.
    pub date_column: String,
    /// chrono format of the date column when it is text.
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// An attribute column (of a `[[data.attributes]]` table, and listed in
    /// `data.categorical`) whose value a row's series must hold for the
    /// table's row to apply, for example `state` or `city`.
    #[serde(default)]
    pub by: Option<String>,
    /// The file's column holding the `by` value (default: the `by` name).
    #[serde(default)]
    pub by_column: Option<String>,
    /// Only rows whose column holds one of these texts are kept, for example
    /// `{ locale = "Regional", transferred = "False" }`; a list allows any
    /// of its values: `{ type = ["Holiday", "Transfer"] }`.
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, Texts>,
    /// The name of a 0/1 feature: 1 where the table has a row.
    #[serde(default)]
    pub flag: Option<String>,
    /// The file's columns to use as features.
    #[serde(default)]
    pub columns: Vec<String>,
}

/// One text or a list of texts (a `where` value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Texts {
    One(String),
    Any(Vec<String>),
}

impl Texts {
    pub fn values(&self) -> &[String] {
        match self {
            Texts::One(one) => std::slice::from_ref(one),
            Texts::Any(any) => any,
        }
    }
}

impl CalendarTable {
    /// The file's column holding the `by` values, if the table has a `by`.
    pub fn by_column(&self) -> Option<&str> {
        self.by
            .as_ref()
            .map(|by| self.by_column.as_deref().unwrap_or(by.as_str()))
    }

    /// The features this table adds, in order: the flag, then the columns.
    pub fn features(&self) -> impl Iterator<Item = &String> {
        self.flag.iter().chain(&self.columns)
    }
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Checks `data.calendars`, naming the key at fault. `taken` holds every
/// column name the mapping already uses (date, keys, target, covariates,
/// attribute columns); calendar features must not reuse one.
pub(super) fn check(mapping: &DataMapping, taken: &BTreeSet<String>) -> Result<(), Invalid> {
    let mut names = BTreeSet::new();
    let mut features = BTreeSet::new();
    for (i, calendar) in mapping.calendars.iter().enumerate() {
        let key = |field: &str| format!("data.calendars[{i}].{field}");
        if !is_name(&calendar.name) {
            return Err(invalid(&key("name"), "use letters, digits, '_' or '-'"));
        }
        if !names.insert(calendar.name.as_str()) {
            return Err(invalid(
                &key("name"),
                format!("{:?} names two calendars", calendar.name),
            ));
        }
        if calendar.date_column.trim().is_empty() {
            return Err(invalid(&key("date_column"), "must not be empty"));
        }
        check_date_format(&key("date_format"), &calendar.date_format)?;
        if let Some(by) = &calendar.by {
            if !mapping.attribute_columns().any(|c| c == by) {
                return Err(invalid(
                    &key("by"),
                    format!("{by:?} is not a column of any attribute table (data.attributes[].columns)"),
                ));
            }
            if !mapping.categorical.contains(by) {
                return Err(invalid(
                    &key("by"),
                    format!("{by:?} must also be listed in data.categorical: it is matched as text"),
                ));
            }
        } else if calendar.by_column.is_some() {
            return Err(invalid(&key("by_column"), "is only used with `by`"));
        }
        if calendar.flag.is_none() && calendar.columns.is_empty() {
            return Err(invalid(
                &key("flag"),
                "give a flag, columns, or both: the calendar adds no feature",
            ));
        }
        for (column, values) in &calendar.filter {
            if values.values().is_empty() {
                return Err(invalid(&key("where"), format!("{column:?} lists no value")));
            }
        }
        let own = [Some(calendar.date_column.as_str()), calendar.by_column()];
        for feature in calendar.features() {
            let field = if calendar.flag.as_ref() == Some(feature) {
                "flag"
            } else {
                "columns"
            };
            if feature.trim().is_empty() {
                return Err(invalid(&key(field), "a feature name must not be empty"));
            }
            if own.contains(&Some(feature.as_str())) {
                return Err(invalid(
                    &key(field),
                    format!("{feature:?} is the calendar's date or by column, not a feature"),
                ));
            }
            if taken.contains(feature) || !features.insert(feature.clone()) {
                return Err(invalid(&key(field), format!("column {feature:?} is used twice")));
            }
        }
        if let Some(flag) = &calendar.flag
            && mapping.categorical.contains(flag)
        {
            return Err(invalid(&key("flag"), "a flag is a 0/1 number, not a category"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(calendar: &str) -> Result<(), Invalid> {
        let text = format!(
            "date_column = \"date\"\nseries_keys = [\"store\"]\ntarget = \"sales\"\n\
             categorical = [\"state\"]\n\
             [[attributes]]\ntable = \"stores\"\njoin_keys = [\"store\"]\ncolumns = [\"state\", \"size\"]\n\
             [[calendars]]\n{calendar}"
        );
        let mapping: DataMapping = toml::from_str(&text).map_err(|e| invalid("toml", e.to_string()))?;
        mapping.check()
    }

    #[test]
    fn a_favorita_like_calendar_is_accepted() {
        mapping(
            "name = \"regional\"\ndate_column = \"date\"\nby = \"state\"\nby_column = \"locale_name\"\n\
             where = { locale = \"Regional\", type = [\"Holiday\", \"Transfer\"] }\nflag = \"regional_holiday\"",
        )
        .unwrap();
        mapping("name = \"paydays\"\ndate_column = \"day\"\ncolumns = [\"payday\"]").unwrap();
    }

    #[test]
    fn mistakes_are_refused_naming_the_key() {
        let cases = [
            (
                "name = \"a b\"\ndate_column = \"d\"\nflag = \"f\"",
                "data.calendars[0].name",
            ),
            ("name = \"c\"\ndate_column = \"d\"", "data.calendars[0].flag"),
            (
                "name = \"c\"\ndate_column = \"d\"\nflag = \"f\"\nby = \"city\"",
                "data.calendars[0].by",
            ),
            (
                "name = \"c\"\ndate_column = \"d\"\nflag = \"f\"\nby = \"size\"",
                "data.calendars[0].by",
            ),
            (
                "name = \"c\"\ndate_column = \"d\"\nflag = \"size\"",
                "data.calendars[0].flag",
            ),
            (
                "name = \"c\"\ndate_column = \"d\"\nflag = \"f\"\ndate_format = \"%Y\"",
                "data.calendars[0].date_format",
            ),
            (
                "name = \"c\"\ndate_column = \"d\"\nflag = \"f\"\nby_column = \"x\"",
                "data.calendars[0].by_column",
            ),
            (
                "name = \"c\"\ndate_column = \"d\"\ncolumns = [\"d\"]",
                "data.calendars[0].columns",
            ),
            (
                "name = \"c\"\ndate_column = \"d\"\nflag = \"f\"\nwhere = { t = [] }",
                "data.calendars[0].where",
            ),
        ];
        for (calendar, key) in cases {
            let err = mapping(calendar).unwrap_err();
            assert_eq!(err.key, key, "{calendar}: {err:?}");
        }
        let unknown = mapping("name = \"c\"\ndate_column = \"d\"\nflag = \"f\"\nlocale = \"x\"").unwrap_err();
        assert!(unknown.problem.contains("unknown field `locale`"), "{unknown:?}");
    }
}
