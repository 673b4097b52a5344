//! Runs one command: loads the settings, opens the store, dispatches, and maps the outcome to a
//! documented exit code.
//!
//! Exit codes (also in README.md):
//! - 0: success (for `import`: every file imported or already stored);
//! - 1: an error, or at least one file failed to import (the others were still imported);
//! - 2: the command line is wrong (clap's usage error);
//! - 3: `sync` withheld a ruleset's change (the guard); the previous files stay.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::app::cli::{
    Cli, Command, ConfigCommand, DeleteArgs, DiffArgs, DiffFormat, ExportArgs, HistoryArgs,
    HistoryFormat, ImportArgs, ListFormat, SnapshotsArgs, SnapshotsCommand, TagsArgs,
};
use crate::app::config::Config;
use crate::core::canonical::{self, Style};
use crate::core::model::NetworkFeatures;
use crate::publish::artifacts::write_atomic;
use crate::render::report::table::Table;
use crate::rules::ruleset::TagPattern;
use crate::store::import::{collect_files, import_files, FileOutcome, ImportOptions};
use crate::store::{Store, TagSummary};

mod emit;
mod fetch;
mod reject;
mod rules;
mod ruleset_diff;
mod serve;
mod sync;

pub use rules::{parse_target, EXAMPLE};

/// Exit codes: success; an error, or some input failed (one definition, in the run summary).
pub use crate::rules::summary::{EXIT_FAILED as EXIT_FAILURE, EXIT_OK};

/// Sends `tracing` output to stderr as text or JSON lines: warnings by default (information for
/// the long-running `daemon` and `serve`), more with `-v`, or as `RUST_LOG` says. `serve`'s
/// access log, one line per request, has a buffered writer of its own (`serve::access`).
pub fn init_logging(verbose: u8, format: crate::app::cli::LogFormat, long_running: bool) {
    let default = match (verbose, long_running, format) {
        // JSON logs feed collectors: they also get the one summary line per ruleset.
        (0, false, crate::app::cli::LogFormat::Json) => "warn,tagwall::summary=info",
        (0, false, crate::app::cli::LogFormat::Text) => "warn",
        (0, true, _) | (1, _, _) => "info",
        _ => "debug",
    };
    crate::serve::access::set_json(format == crate::app::cli::LogFormat::Json);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let ansi = io::stderr().is_terminal();
    // `serve` and `daemon` never wait for stderr (crate::logsink); short commands write to it.
    let sink = crate::logsink::MakeWriter;
    let _ = match (format, long_running) {
        (crate::app::cli::LogFormat::Json, true) => builder.with_writer(sink).json().try_init(),
        (crate::app::cli::LogFormat::Json, false) => {
            builder.with_writer(io::stderr).json().try_init()
        }
        (crate::app::cli::LogFormat::Text, true) => {
            builder.with_writer(sink).with_ansi(ansi).try_init()
        }
        (crate::app::cli::LogFormat::Text, false) => {
            builder.with_writer(io::stderr).with_ansi(ansi).try_init()
        }
    };
}

/// Runs the command and returns the process exit code. Errors are printed to stderr; a closed
/// stdout (as with `| head`) is not an error.
pub fn main(cli: Cli) -> ExitCode {
    // Commands with no I/O to wait on run without starting the async runtime.
    match cli.command {
        Command::Aggregate(args) => return finish(rules::aggregate(args)),
        Command::Config(ConfigCommand::Example) => return finish(rules::config_example()),
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let outcome = runtime.block_on(run(cli));
    // Neither a blocked stderr nor a stuck blocking task keeps the process from ending.
    crate::logsink::flush(EXIT_WAIT);
    runtime.shutdown_timeout(EXIT_WAIT);
    finish(outcome)
}

/// How long the end of the process waits for log lines and blocking tasks.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The exit code for a command's outcome, printing the error if any.
fn finish(outcome: anyhow::Result<u8>) -> ExitCode {
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Whether the error is stdout closed by its reader, however it was wrapped.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let io = c.downcast_ref::<io::Error>().map(io::Error::kind);
        let json = c
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io.or(json) == Some(io::ErrorKind::BrokenPipe)
    })
}

/// Runs the command; returns the exit code for outcomes that are not errors.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    let config_file = match &cli.command {
        // Commands that need neither settings nor the store.
        Command::Aggregate(_) | Command::Config(ConfigCommand::Example) => None,
        Command::Config(ConfigCommand::Check(args)) => {
            let file = args.file.clone().or(cli.config);
            if file.is_none() && !Path::new(crate::app::config::DEFAULT_CONFIG).is_file() {
                bail!(
                    "no settings file to check: name one, or create ./{} (`tagwall config example > {}`)",
                    crate::app::config::DEFAULT_CONFIG,
                    crate::app::config::DEFAULT_CONFIG
                );
            }
            Some(file)
        }
        _ => Some(cli.config),
    };
    let Some(config_file) = config_file else {
        return match cli.command {
            Command::Aggregate(args) => rules::aggregate(args),
            _ => rules::config_example(),
        };
    };
    let config = Config::load(config_file.as_deref(), cli.db.as_deref())?;
    if matches!(cli.command, Command::Config(ConfigCommand::Check(_)))
        && config.db.sqlite_file().is_some_and(|f| !f.exists())
    {
        // Checking settings creates no store: say what could not be checked instead.
        return rules::config_check(None, &config).await;
    }
    // Checking the network needs no store.
    let command = match cli.command {
        Command::Doctor(args) => return fetch::doctor(&config, args).await,
        // Serving opens the store only to serve from it ([serve] source = "store").
        Command::Serve(args) => return serve::serve(&config, args).await,
        other => other,
    };
    let store = Store::open(&config.db).await?;
    let code = match command {
        Command::Import(args) => import(&store, args).await,
        Command::Snapshots(args) => snapshots(&store, args).await,
        Command::Export(args) => export(&store, args).await,
        Command::Tags(args) => tags(&store, args).await,
        Command::Diff(args) => diff(&store, &config, args).await,
        Command::History(args) => history(&store, args).await,
        Command::Emit(args) => emit::emit(&store, &config, args).await,
        Command::Lookup(args) => rules::lookup(&store, &config, args).await,
        Command::Config(ConfigCommand::Check(_)) => {
            rules::config_check(Some(&store), &config).await
        }
        Command::Config(ConfigCommand::Example) => rules::config_example(),
        Command::Aggregate(args) => rules::aggregate(args),
        Command::Fetch(args) => fetch::fetch(&store, &config, args).await,
        Command::Doctor(_) | Command::Serve(_) => unreachable!("dispatched above"),
        Command::Sync(args) => sync::sync(&store, &config, &args).await,
        Command::Approve(args) => sync::approve(&store, &config, args).await,
        Command::Reject(args) => reject::reject(&store, &config, args).await,
        Command::Approvals(args) => sync::approvals(&store, args).await,
        Command::Daemon(args) => sync::daemon(&store, &config, args).await,
    };
    store.close().await;
    code
}

async fn import(store: &Store, args: ImportArgs) -> anyhow::Result<u8> {
    let files = collect_files(&args.paths).context("could not list the files to import")?;
    if files.is_empty() {
        bail!("no *.json or *.json.gz files found in the given paths");
    }
    let options = ImportOptions {
        cloud: args.cloud,
        date: args.date,
    };
    let bar = progress_bar(files.len());
    let mut out = io::stdout().lock();
    let (mut imported, mut stored, mut failed) = (0, 0, 0);
    let count = files.len();
    import_files(store, files, options, |file, outcome| {
        let name = file.display();
        let line = match outcome {
            Ok(FileOutcome::Imported { info, warnings }) => {
                imported += 1;
                for w in warnings {
                    tracing::warn!("{name}: {w}");
                }
                format!(
                    "imported  {name}: {} {} changeNumber {}, {} tags, {} prefixes (id:{})",
                    info.cloud,
                    info.file_date,
                    info.change_number,
                    info.tags,
                    info.prefixes,
                    info.id
                )
            }
            Ok(FileOutcome::AlreadyStored { info, file_date }) => {
                stored += 1;
                let same = if info.file_date == file_date {
                    String::new()
                } else {
                    format!(", same content as dated {file_date}")
                };
                format!(
                    "stored    {name}: already stored as id:{} ({} {}{same})",
                    info.id, info.cloud, info.file_date
                )
            }
            Err(e) => {
                failed += 1;
                format!("failed    {name}: {e}")
            }
        };
        bar.suspend(|| writeln!(out, "{line}"))?;
        bar.inc(1);
        Ok(())
    })
    .await?;
    bar.finish_and_clear();
    if count > 1 {
        writeln!(
            out,
            "{imported} imported, {stored} already stored, {failed} failed"
        )?;
    }
    Ok(if failed > 0 { EXIT_FAILURE } else { EXIT_OK })
}

/// A progress bar on stderr when it is a terminal and there is more than one file; hidden otherwise.
fn progress_bar(len: usize) -> ProgressBar {
    if len < 2 || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} files {elapsed}") {
        bar.set_style(style);
    }
    bar
}

async fn snapshots(store: &Store, args: SnapshotsArgs) -> anyhow::Result<u8> {
    if let Some(SnapshotsCommand::Delete(d)) = args.action {
        return delete_snapshot(store, d).await;
    }
    let list = store.snapshots(args.cloud).await?;
    let mut out = io::stdout().lock();
    match args.format {
        ListFormat::Json => write_json(&mut out, &list)?,
        ListFormat::Table => {
            if list.is_empty() {
                eprintln!(
                    "no snapshots stored yet in {}: run `tagwall import PATH`",
                    store.url()
                );
                return Ok(EXIT_OK);
            }
            let mut t = Table::new(&[
                "id",
                "cloud",
                "file date",
                "change",
                "tags",
                "prefixes",
                "sha256",
            ])
            .right_align(&[0, 3, 4, 5]);
            for s in &list {
                t.row(vec![
                    s.id.to_string(),
                    s.cloud.to_string(),
                    s.file_date.to_string(),
                    s.change_number.to_string(),
                    s.tags.to_string(),
                    s.prefixes.to_string(),
                    s.sha256.clone(),
                ]);
            }
            t.write(&mut out)?;
        }
    }
    Ok(EXIT_OK)
}

async fn delete_snapshot(store: &Store, args: DeleteArgs) -> anyhow::Result<u8> {
    let info = store.resolve(args.cloud, &args.snap).await?;
    let what = format!(
        "{} snapshot id:{} of {} (changeNumber {}, {} tags, from {})",
        info.cloud,
        info.id,
        info.file_date,
        info.change_number,
        info.tags,
        crate::core::text::terminal(&info.source)
    );
    if !args.yes {
        eprintln!("would delete the {what}: add --yes to delete it");
        return Ok(EXIT_FAILURE);
    }
    if !store.delete_snapshot(info.id).await? {
        bail!("snapshot id:{} is no longer stored", info.id);
    }
    writeln!(
        io::stdout(),
        "deleted the {what}; published rulesets change only at the next sync or emit"
    )?;
    Ok(EXIT_OK)
}

async fn export(store: &Store, args: ExportArgs) -> anyhow::Result<u8> {
    let info = store.resolve(args.cloud, &args.at).await?;
    let bytes = if args.raw {
        store.original(&info).await?
    } else {
        canonical::render(&store.snapshot(&info).await?, Style::default())
    };
    write_output(args.output.as_deref(), &bytes)?;
    Ok(EXIT_OK)
}

#[derive(Serialize)]
struct TagJson<'a> {
    name: &'a str,
    id: &'a str,
    region: &'a str,
    region_id: Option<i64>,
    platform: &'a str,
    system_service: &'a str,
    network_features: Option<&'a [String]>,
    change_number: i64,
    ipv4_prefixes: i64,
    ipv6_prefixes: i64,
}

async fn tags(store: &Store, args: TagsArgs) -> anyhow::Result<u8> {
    let info = store.resolve(args.cloud, &args.at).await?;
    let mut list = store.tag_summaries(&info).await?;
    if let Some(pattern) = &args.pattern {
        let glob = tag_globs(std::slice::from_ref(pattern), "--match")?;
        list.retain(|t| glob.is_match(&t.name));
        if list.is_empty() {
            bail!(
                "no tag of {} {} matches {pattern:?}: run `tagwall tags` to list them",
                info.cloud,
                info.file_date
            );
        }
    }
    let mut out = io::stdout().lock();
    match args.format {
        ListFormat::Json => {
            let rows: Vec<TagJson> = list.iter().map(tag_json).collect();
            write_json(&mut out, &rows)?;
        }
        ListFormat::Table => {
            let mut t = Table::new(&[
                "name",
                "region",
                "systemService",
                "networkFeatures",
                "ipv4",
                "ipv6",
            ])
            .right_align(&[4, 5]);
            for tag in &list {
                t.row(vec![
                    tag.name.clone(),
                    tag.meta.region.clone(),
                    tag.meta.system_service.clone(),
                    features_text(&tag.meta.network_features),
                    tag.ipv4_prefixes.to_string(),
                    tag.ipv6_prefixes.to_string(),
                ]);
            }
            t.write(&mut out)?;
        }
    }
    Ok(EXIT_OK)
}

fn tag_json(t: &TagSummary) -> TagJson<'_> {
    TagJson {
        name: &t.name,
        id: &t.meta.id,
        region: &t.meta.region,
        region_id: t.meta.region_id,
        platform: &t.meta.platform,
        system_service: &t.meta.system_service,
        network_features: match &t.meta.network_features {
            NetworkFeatures::List(l) => Some(l),
            _ => None,
        },
        change_number: t.meta.change_number,
        ipv4_prefixes: t.ipv4_prefixes,
        ipv6_prefixes: t.ipv6_prefixes,
    }
}

fn features_text(f: &NetworkFeatures) -> String {
    match f {
        NetworkFeatures::Absent | NetworkFeatures::Null => "-".to_string(),
        NetworkFeatures::List(l) => l.join(","),
    }
}

fn write_json(out: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// The tag patterns of a flag, compiled as rulesets compile theirs.
fn tag_globs(patterns: &[String], flag: &str) -> anyhow::Result<TagPatterns> {
    patterns
        .iter()
        .map(|p| TagPattern::new(p).map_err(|e| anyhow::anyhow!("{flag} {e}")))
        .collect::<anyhow::Result<Vec<_>>>()
        .map(TagPatterns)
}

/// Several tag patterns: a name matches when one of them does.
struct TagPatterns(Vec<TagPattern>);

impl TagPatterns {
    fn is_match(&self, name: &str) -> bool {
        self.0.iter().any(|p| p.matches(name))
    }
}

async fn diff(store: &Store, config: &Config, args: DiffArgs) -> anyhow::Result<u8> {
    if let Some(name) = &args.ruleset {
        let ruleset = config
            .pick(std::slice::from_ref(name))
            .map_err(anyhow::Error::msg)?[0];
        return ruleset_diff::ruleset_diff(store, ruleset, &args).await;
    }
    let from = store.resolve(args.cloud, &args.from).await?;
    let to = store.resolve(args.cloud, &args.to).await?;
    if from.cloud != to.cloud {
        bail!(
            "{} is a {} snapshot and {} a {} one: diff two snapshots of one cloud",
            args.from,
            from.cloud,
            args.to,
            to.cloud
        );
    }
    let d = if args.tags.is_empty() {
        // The whole cloud: from the intervals that differ, without reading whole snapshots.
        store.diff(&from, &to).await?
    } else {
        // Some tags: their addresses are counted over those tags alone, so read both snapshots.
        let (mut older, mut newer) = (store.snapshot(&from).await?, store.snapshot(&to).await?);
        let globs = tag_globs(&args.tags, "--tag")?;
        older.tags.retain(|t| globs.is_match(&t.name));
        newer.tags.retain(|t| globs.is_match(&t.name));
        if older.tags.is_empty() && newer.tags.is_empty() {
            bail!(
                "no tag of either snapshot matches --tag {}: run `tagwall tags` to list them",
                args.tags.join(" --tag ")
            );
        }
        crate::core::diff::diff(&older, &newer)
    };
    let mut bytes = Vec::new();
    match args.format {
        DiffFormat::Text => {
            crate::render::report::diff_text::write(&mut bytes, &d, &from, &to)?;
            // Colour only for a person at a terminal, and never with NO_COLOR set.
            if args.output.is_none()
                && io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none()
            {
                bytes =
                    crate::render::report::diff_text::colourize(&String::from_utf8_lossy(&bytes))
                        .into_bytes();
            }
        }
        DiffFormat::Markdown => {
            crate::render::report::diff_markdown::write(&mut bytes, &d, &from, &to)?
        }
        DiffFormat::Json => crate::render::report::diff_json::write(&mut bytes, &d, &from, &to)?,
        DiffFormat::Html => crate::render::report::html::write_diff(&mut bytes, &d, &from, &to)?,
    }
    write_output(args.output.as_deref(), &bytes)?;
    Ok(if args.exit_code && !d.is_empty() {
        EXIT_FAILURE
    } else {
        EXIT_OK
    })
}

async fn history(store: &Store, args: HistoryArgs) -> anyhow::Result<u8> {
    let Some(mut entries) = store.tag_history(args.cloud, &args.tag).await? else {
        bail!(
            "{} has never had a tag named {:?} (names are exact and case-sensitive): run `tagwall tags --cloud {} --match '*{}*'`",
            args.cloud, args.tag, args.cloud, args.tag
        );
    };
    if let Some(since) = args.since {
        entries.retain(|e| e.snapshot.file_date >= since);
    }
    let mut bytes = Vec::new();
    match args.format {
        HistoryFormat::Text => {
            crate::render::report::history::write_text(&mut bytes, &args.tag, &entries)?
        }
        HistoryFormat::Json => {
            crate::render::report::history::write_json(&mut bytes, &args.tag, &entries)?
        }
        HistoryFormat::Html => {
            crate::render::report::html::write_history(&mut bytes, &args.tag, &entries)?
        }
    }
    write_output(args.output.as_deref(), &bytes)?;
    Ok(EXIT_OK)
}

/// Writes a command's output to `path` atomically, or to stdout.
fn write_output(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            write_atomic(path, bytes).with_context(|| format!("could not write {}", path.display()))
        }
        None => Ok(io::stdout().lock().write_all(bytes)?),
    }
}

/// Completes on SIGTERM or SIGINT. Registered before the first run, so a signal during a run is
/// kept and ends the daemon once that run has finished.
fn shutdown() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("could not listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("could not listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}
