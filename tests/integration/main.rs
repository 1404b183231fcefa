//! The integration tests: one test binary (as in ripgrep), one module per concern.
//! They run the real `salescast` binary on real files and the shared datasets.

mod architecture;
mod auth;
mod aws_cli;
mod backtest;
mod browser;
mod config;
mod crash;
mod crash_kills;
mod daily_pipeline;
mod dashboard;
mod dashboard_browser;
mod defects;
mod demo;
mod drift;
mod features;
mod ingest;
mod malformed;
mod pipelines;
mod plans;
mod predict;
mod predictions;
mod promoters;
mod raw_zone;
mod retrain;
mod serve;
mod server_util;
mod store_conformance;
mod store_in_runtime;
mod tokens;
mod users;
mod util;
mod web_tier;
mod window;
