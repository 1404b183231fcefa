//! The registry's run reports: `runs/<date>/report.json` and `report.md`
//! (with the SVG charts it links beside them),
//! written by each retrain (the newest run of a date wins) and read back as
//! any view of their fields (the dashboard's model page reads a few).

use chrono::NaiveDate;
use serde::de::DeserializeOwned;

use super::{Registry, RegistryError};
use crate::storage::{PutMode, StoreError};

impl Registry {
    /// The JSON report of a run date read as `T` (any view of its fields),
    /// or `None` when that date has no report.
    pub fn report<T: DeserializeOwned>(&self, run_date: NaiveDate) -> Result<Option<T>, RegistryError> {
        match self.read_json(&self.key(&format!("runs/{run_date}/report.json"))) {
            Ok((report, _)) => Ok(Some(report)),
            Err(RegistryError::Store(StoreError::NotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The Markdown report of a run date, or `None` when that date has none.
    pub fn report_markdown(&self, run_date: NaiveDate) -> Result<Option<String>, RegistryError> {
        match self.store.get(&self.key(&format!("runs/{run_date}/report.md"))) {
            Ok(object) => Ok(Some(String::from_utf8_lossy(&object.bytes).into_owned())),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(RegistryError::Store(e)),
        }
    }

    /// Writes files beside the report of a run date (its charts), by name.
    pub fn put_report_files(
        &self,
        run_date: NaiveDate,
        files: &[(String, Vec<u8>)],
    ) -> Result<(), RegistryError> {
        let base = self.key(&format!("runs/{run_date}"));
        for (name, bytes) in files {
            self.store
                .put(&format!("{base}/{name}"), bytes, PutMode::Overwrite)?;
        }
        Ok(())
    }

    /// Writes the report of a run date (the newest run of that date wins).
    pub fn put_report(&self, run_date: NaiveDate, json: &[u8], markdown: &str) -> Result<(), RegistryError> {
        let base = self.key(&format!("runs/{run_date}"));
        self.store
            .put(&format!("{base}/report.json"), json, PutMode::Overwrite)?;
        self.store.put(
            &format!("{base}/report.md"),
            markdown.as_bytes(),
            PutMode::Overwrite,
        )?;
        Ok(())
    }
}
