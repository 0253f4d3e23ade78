//! `client-config-dir` files: parsed by the directive table with the
//! instance scope in [`crate::config::ccd`]; re-exported here so the
//! server's paths stay as they were.

pub use crate::config::ccd::*;
