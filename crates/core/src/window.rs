//! Which days a run reads and how it splits them: the window settings and the
//! one [`Window`] value built from them and a run's dates. Retrain, check and
//! backtest (and the coming predict) all take a `Window`, so "a backtest over
//! the holdout scores what retrain scores" holds by construction.
//!
//! ```text
//! first_day ............ inner_first_day ... holdout_first_day ... last_day
//! |-- inner training --|-- inner validation --|------ holdout ------|
//! |------------- training (trained_through) --|
//! ```

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::setting::{Invalid, invalid};

/// Which days of the lake a run reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowSettings {
    /// Days of history read, ending with the run's data day (inclusive).
    pub history_days: u32,
    /// The newest days held out to compare challenger and champion; the same
    /// number of days before them is the inner validation window.
    pub holdout_days: u32,
}

impl Default for WindowSettings {
    fn default() -> Self {
        Self {
            history_days: 730,
            holdout_days: 28,
        }
    }
}

/// The longest history a window may read: a hundred years of days.
const MAX_HISTORY_DAYS: u32 = 36_525;

impl WindowSettings {
    pub fn check(&self) -> Result<(), Invalid> {
        if self.history_days == 0 || self.history_days > MAX_HISTORY_DAYS {
            return Err(invalid(
                "window.history_days",
                format!("must be between 1 and {MAX_HISTORY_DAYS}"),
            ));
        }
        if self.holdout_days == 0 {
            return Err(invalid("window.holdout_days", "must be at least 1"));
        }
        if self.holdout_days >= self.history_days {
            return Err(invalid(
                "window.holdout_days",
                "must be smaller than window.history_days",
            ));
        }
        Ok(())
    }
}

/// The days of one run, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// The first day read.
    pub first_day: NaiveDate,
    /// The first day of the inner validation window (the days before it are
    /// the inner training days).
    pub inner_first_day: NaiveDate,
    /// The first day of the holdout; training days end the day before.
    pub holdout_first_day: NaiveDate,
    /// The newest day read: the run's data day (the partition must exist).
    pub last_day: NaiveDate,
}

/// A window whose dates fall outside the calendar chrono can represent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the window {what} reaches outside the calendar; use fewer window.history_days")]
pub struct OutOfRange {
    what: String,
}

impl Window {
    /// The window of a run whose data day is `last_day`: `history_days`
    /// ending on it, the newest `holdout_days` held out.
    pub fn ending(settings: &WindowSettings, last_day: NaiveDate) -> Result<Self, OutOfRange> {
        let holdout_first_day = before(last_day, settings.holdout_days.saturating_sub(1), "ending")?;
        Self::holding_out(settings, holdout_first_day, last_day)
    }

    /// The window that holds out `holdout_first_day ..= last_day` (a
    /// backtest's days) and trains on the same amount of history a run does:
    /// `history_days - holdout_days` days before the holdout.
    pub fn holding_out(
        settings: &WindowSettings,
        holdout_first_day: NaiveDate,
        last_day: NaiveDate,
    ) -> Result<Self, OutOfRange> {
        let training_days = settings.history_days.saturating_sub(settings.holdout_days);
        Ok(Self {
            first_day: before(holdout_first_day, training_days, "holding out")?,
            inner_first_day: before(holdout_first_day, settings.holdout_days, "holding out")?,
            holdout_first_day,
            last_day,
        })
    }

    /// The newest day training rows may come from.
    pub fn trained_through(&self) -> NaiveDate {
        self.holdout_first_day
            .pred_opt()
            .unwrap_or(self.holdout_first_day)
    }

    /// Days read, first to last inclusive.
    pub fn days(&self) -> i64 {
        (self.last_day - self.first_day).num_days() + 1
    }
}

fn before(day: NaiveDate, days: u32, what: &str) -> Result<NaiveDate, OutOfRange> {
    day.checked_sub_days(Days::new(u64::from(days)))
        .ok_or_else(|| OutOfRange {
            what: format!("{what} {day}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn a_runs_window_splits_its_days() {
        let settings = WindowSettings::default();
        let window = Window::ending(&settings, day("2015-07-31")).unwrap();
        assert_eq!(window.last_day, day("2015-07-31"));
        assert_eq!(window.holdout_first_day, day("2015-07-04"), "28 days held out");
        assert_eq!(window.trained_through(), day("2015-07-03"));
        assert_eq!(
            window.inner_first_day,
            day("2015-06-06"),
            "28 days of inner validation"
        );
        assert_eq!(window.days(), 730);
        assert_eq!(window.first_day, day("2013-08-01"), "730 days ending 2015-07-31");
    }

    #[test]
    fn a_backtest_over_a_runs_holdout_is_that_runs_window() {
        let settings = WindowSettings {
            history_days: 400,
            holdout_days: 14,
        };
        let run = Window::ending(&settings, day("2015-07-31")).unwrap();
        let backtest = Window::holding_out(&settings, run.holdout_first_day, run.last_day).unwrap();
        assert_eq!(run, backtest);
    }

    #[test]
    fn defect_3_out_of_range_settings_are_refused_not_panicked_on() {
        let huge = WindowSettings {
            history_days: u32::MAX,
            holdout_days: 28,
        };
        assert_eq!(huge.check().unwrap_err().key, "window.history_days");
        assert!(Window::ending(&huge, day("2015-07-31")).is_err(), "no panic");
        let none_held_out = WindowSettings {
            history_days: 730,
            holdout_days: 0,
        };
        assert_eq!(none_held_out.check().unwrap_err().key, "window.holdout_days");
        assert!(WindowSettings::default().check().is_ok());
    }
}
