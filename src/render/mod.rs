//! Output formats. Each writes into any `Write`, so commands, files and tests share them.

pub mod table;
