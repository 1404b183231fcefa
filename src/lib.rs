//! salescast: keeps a retail sales-forecast model fresh every day and ships it safely.
//!
//! The binary in `main.rs` only parses arguments and maps errors to exit codes;
//! everything else lives here so integration tests can call it.

pub mod cli;
pub mod commands;
pub mod config;
pub mod cost;
pub mod evaluate;
pub mod exit;
pub mod features;
pub mod ingest;
pub mod lake;
pub mod models;
pub mod registry;
pub mod report;
pub mod sample;
pub mod storage;
pub mod train;
pub mod validate;
