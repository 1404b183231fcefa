//! Series names: a series is named by its key values joined with "/" (in
//! forecasts, scores, reports and the API). A key value may hold "/" itself
//! (Favorita's family "BREAD/BAKERY"); what must not happen is two series
//! getting one name ("a/b" + "c" and "a" + "b/c"), which would merge them.

use std::collections::HashMap;

use polars::prelude::*;

use crate::validate::{DataError, Source};

/// Refuses two series of `df` (rows with the key columns `keys`, as text)
/// whose joined names are the same, naming both.
pub fn refuse_shared_names(df: &DataFrame, keys: &[String], source: &Source) -> Result<(), DataError> {
    if keys.len() < 2 {
        return Ok(());
    }
    let polars_error = |e: PolarsError| source.error(e.to_string());
    // Only a "/" in a key value can make two names one: a scan of the key
    // columns first (every window read runs this), the series only then.
    let slash = keys.iter().try_fold(false, |found, k| {
        let column = df.column(k)?.str()?;
        PolarsResult::Ok(found || column.iter().any(|v| v.is_some_and(|v| v.contains('/'))))
    });
    if !slash.map_err(polars_error)? {
        return Ok(());
    }
    let series = df
        .select(keys.iter().map(String::as_str))
        .and_then(|s| s.unique_stable(None, UniqueKeepStrategy::First, None))
        .map_err(polars_error)?;
    let columns = keys
        .iter()
        .map(|k| series.column(k).and_then(|c| c.str().cloned()))
        .collect::<PolarsResult<Vec<StringChunked>>>()
        .map_err(polars_error)?;
    let mut named: HashMap<String, Vec<&str>> = HashMap::new();
    for i in 0..series.height() {
        let values: Vec<&str> = columns.iter().map(|c| c.get(i).unwrap_or_default()).collect();
        let name = values.join("/");
        if let Some(other) = named.get(&name) {
            return Err(source.error(format!(
                "the series {other:?} and {values:?} (keys {}) are both named {name:?}: a series is \
                 named by its keys joined with \"/\"; change a key value of one of them",
                keys.join(", ")
            )));
        }
        named.insert(name, values);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slash_in_a_key_is_fine_unless_two_series_share_a_name() {
        let keys = ["store".to_string(), "family".to_string()];
        let source = Source::new("s.csv", true);
        let df = df!(
            "store" => ["1", "1", "2"],
            "family" => ["BREAD/BAKERY", "BREAD/BAKERY", "DAIRY"],
        )
        .unwrap();
        refuse_shared_names(&df, &keys, &source).unwrap();
        let df = df!("store" => ["a/b", "a"], "family" => ["c", "b/c"]).unwrap();
        let err = refuse_shared_names(&df, &keys, &source).unwrap_err();
        assert!(err.to_string().contains("are both named \"a/b/c\""), "{err}");
        refuse_shared_names(&df, &keys[..1], &source).unwrap();
    }
}
