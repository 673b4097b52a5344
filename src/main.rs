//! The `tagwall` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tagwall::cli::Cli::parse();
    tagwall::run::init_logging(
        cli.verbose,
        cli.log_format,
        matches!(cli.command, tagwall::cli::Command::Daemon(_)),
    );
    tagwall::run::main(cli)
}
