//! Output formats. Each writes into any `Write`, so commands, files and tests share them.

pub mod diff_json;
pub mod diff_markdown;
pub mod diff_text;
pub mod history;
pub mod html;
pub mod table;
