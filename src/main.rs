//! The `tagwall` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tagwall::app::cli::Cli::parse();
    tagwall::app::run::init_logging(
        cli.verbose,
        cli.log_format,
        matches!(
            cli.command,
            tagwall::app::cli::Command::Daemon(_) | tagwall::app::cli::Command::Serve(_)
        ),
    );
    tagwall::app::run::main(cli)
}
