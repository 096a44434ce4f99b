//! Tests that run the real `storectl` binary (one test binary, several modules).

mod commands;
mod corrupt;
mod large;
mod migrate;
mod readme;
mod support;
mod usage;
