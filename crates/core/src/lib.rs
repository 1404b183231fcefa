//! salescast-core: everything salescast does that is not a front end: storage,
//! the lake, validation, features, models, training, evaluation, the registry,
//! and the pipelines that combine them. The `salescast` binary (`crates/cli`)
//! parses a command line, calls a pipeline here and renders its report.

pub mod accounts;
pub mod calendar;
pub mod charts;
pub mod config;
pub mod cost;
pub mod digest;
pub mod drift;
pub mod emf;
pub mod evaluate;
pub mod events;
pub mod features;
pub mod forecast;
pub mod ingest;
pub mod input;
pub mod insights;
pub mod lake;
pub mod live;
pub mod mapping;
pub mod models;
pub mod noise;
pub mod parquet_guard;
pub mod pipeline;
pub mod plans;
pub mod predictions;
pub mod predictions_shards;
pub mod progress;
pub mod registry;
pub mod report;
pub mod report_charts;
pub mod retrain_runs;
pub mod sample;
pub mod sampling;
pub mod scan;
pub mod scores;
pub mod scores_shards;
pub mod series_names;
pub mod serve;
pub mod setting;
pub mod shard;
pub mod staging;
pub mod storage;
pub mod tables;
pub mod thin_days;
pub mod train;
pub mod validate;
pub mod window;
