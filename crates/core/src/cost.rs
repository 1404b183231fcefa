//! The estimated cost of one run: build minutes (billed per started minute)
//! at the configured rate, plus the S3 requests the lake and the registry
//! stores sent, priced by request class.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::setting::{Invalid, invalid};
use crate::storage::RequestCounts;

/// Unit prices for the run's own cost estimate in the report. Defaults:
/// AWS us-east-1 list prices (see pipelines/README.md for their date).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostSettings {
    /// Build compute, per started minute (CodeBuild general1.small, Linux).
    pub build_usd_per_minute: f64,
    /// S3 PUT, COPY, POST and LIST requests, per 1,000.
    pub s3_write_usd_per_1000: f64,
    /// S3 GET, HEAD and other requests, per 1,000.
    pub s3_read_usd_per_1000: f64,
}

impl Default for CostSettings {
    fn default() -> Self {
        Self {
            build_usd_per_minute: 0.005,
            s3_write_usd_per_1000: 0.005,
            s3_read_usd_per_1000: 0.0004,
        }
    }
}

impl CostSettings {
    pub fn check(&self) -> Result<(), Invalid> {
        for (key, price) in [
            ("cost.build_usd_per_minute", self.build_usd_per_minute),
            ("cost.s3_write_usd_per_1000", self.s3_write_usd_per_1000),
            ("cost.s3_read_usd_per_1000", self.s3_read_usd_per_1000),
        ] {
            if !(price.is_finite() && price >= 0.0) {
                return Err(invalid(key, "must be a price >= 0"));
            }
        }
        Ok(())
    }
}

/// S3 operations billed at the PUT, COPY, POST, LIST rate.
const WRITE_CLASS: [&str; 7] = [
    "PutObject",
    "CopyObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "ListObjectsV2",
    "ListObjects",
];

/// S3 operations that are free (DELETE and the abort of an upload).
const FREE: [&str; 2] = ["DeleteObject", "AbortMultipartUpload"];

#[derive(Debug, Clone, Serialize)]
pub struct CostEstimate {
    pub run_seconds: f64,
    pub billed_minutes: u64,
    pub build_usd: f64,
    /// Requests by store (`lake`, `registry`) and operation.
    pub s3_requests: BTreeMap<String, RequestCounts>,
    pub s3_write_requests: u64,
    pub s3_read_requests: u64,
    pub s3_usd: f64,
    pub total_usd: f64,
    pub prices: CostSettings,
}

impl CostEstimate {
    pub fn new(prices: &CostSettings, run_seconds: f64, requests: BTreeMap<String, RequestCounts>) -> Self {
        let billed_minutes = (run_seconds / 60.0).ceil().max(1.0) as u64;
        let build_usd = billed_minutes as f64 * prices.build_usd_per_minute;
        let (mut writes, mut reads) = (0, 0);
        for (operation, count) in requests.values().flatten() {
            if WRITE_CLASS.contains(&operation.as_str()) {
                writes += count;
            } else if !FREE.contains(&operation.as_str()) {
                reads += count;
            }
        }
        let s3_usd = writes as f64 / 1000.0 * prices.s3_write_usd_per_1000
            + reads as f64 / 1000.0 * prices.s3_read_usd_per_1000;
        Self {
            run_seconds,
            billed_minutes,
            build_usd,
            s3_requests: requests,
            s3_write_requests: writes,
            s3_read_requests: reads,
            s3_usd,
            total_usd: build_usd + s3_usd,
            prices: prices.clone(),
        }
    }

    /// One line for the report.
    pub fn summary(&self) -> String {
        format!(
            "${:.4}: {} build minute(s) at ${}/min = ${:.4}; S3 {} write + {} read requests = ${:.6}",
            self.total_usd,
            self.billed_minutes,
            self.prices.build_usd_per_minute,
            self.build_usd,
            self.s3_write_requests,
            self.s3_read_requests,
            self.s3_usd
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_round_up_and_requests_are_priced_by_class() {
        let counts = |pairs: &[(&str, u64)]| -> RequestCounts {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let requests = BTreeMap::from([
            (
                "lake".to_string(),
                counts(&[("GetObject", 730), ("ListObjectsV2", 2)]),
            ),
            (
                "registry".to_string(),
                counts(&[("PutObject", 6), ("HeadObject", 4), ("DeleteObject", 1)]),
            ),
        ]);
        let cost = CostEstimate::new(&CostSettings::default(), 61.0, requests);
        assert_eq!(cost.billed_minutes, 2);
        assert_eq!((cost.s3_write_requests, cost.s3_read_requests), (8, 734));
        let expected_s3 = 8.0 / 1000.0 * 0.005 + 734.0 / 1000.0 * 0.0004;
        assert!((cost.s3_usd - expected_s3).abs() < 1e-12);
        assert!((cost.total_usd - (0.010 + expected_s3)).abs() < 1e-12);
    }
}
