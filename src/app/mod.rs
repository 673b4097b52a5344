//! The application: settings validated once (`config`), the command line (`cli`), and command
//! dispatch with exit codes (`run`).

pub mod cli;
pub mod config;
pub mod run;
