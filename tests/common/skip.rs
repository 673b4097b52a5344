//! The one place a test decides that it cannot run. Each requirement has a variable that
//! `.ci/run` sets to 1: then a missing requirement fails the test. Otherwise the test is
//! reported as skipped, on its own line of `cargo test`'s output, with what is missing and how
//! to enable it, and the caller returns.
//!
//! The line is written to the process's stderr itself: `cargo test` shows it even when the test
//! passes (libtest captures only `print!`/`eprint!`).

use std::io::Write;

/// What a skipped test needs, the variable that makes its absence a failure, and how to get it.
pub struct Needs<'a> {
    /// What is missing ("PostgreSQL", "tinyproxy is not installed").
    pub what: &'a str,
    /// The variable `.ci/run` sets to 1 to require it.
    pub required_by: &'a str,
    /// How to enable the test ("apt-get install tinyproxy").
    pub how: &'a str,
}

/// Whether `variable` is set to 1.
pub fn required(variable: &str) -> bool {
    std::env::var(variable).as_deref() == Ok("1")
}

/// Fails the test when the requirement is required; else reports the skip. The caller returns.
pub fn skip(needs: Needs<'_>) {
    let Needs {
        what,
        required_by,
        how,
    } = needs;
    assert!(!required(required_by), "{required_by}=1 but {what}: {how}");
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {what} (to run it: {how}; {required_by}=1 makes this a failure)"
    );
}

/// Reports a part of a test that did not run (the rest did), on its own line of the output.
pub fn part(what: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let _ = writeln!(std::io::stderr(), "PARTLY SKIPPED {test}: {what}");
}
