//! The command line, as clap parses it. Validation beyond parsing happens in `run`.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::core::model::Cloud;
use crate::core::snapref::SnapRef;

/// Keeps firewall allowlists in step with Microsoft's weekly Azure IP Ranges and Service Tags.
#[derive(Debug, Parser)]
#[command(name = "tagwall", version, about, long_about = None)]
pub struct Cli {
    /// History store URL: sqlite://FILE or postgres://USER@HOST/DB [default: sqlite://tagwall.db]
    #[arg(
        long,
        global = true,
        env = "TAGWALL_DB",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub db: Option<String>,

    /// Settings file [default: ./tagwall.toml when it exists]
    #[arg(long, global = true, env = "TAGWALL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log lines on stderr as text or JSON (one object per line)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "TAGWALL_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import ServiceTags files (*.json, *.json.gz; directories recursively) into the history
    Import(ImportArgs),
    /// List stored snapshots
    Snapshots(SnapshotsArgs),
    /// Write a stored snapshot as ServiceTags JSON
    Export(ExportArgs),
    /// List a snapshot's tags with their properties and prefix counts
    Tags(TagsArgs),
    /// What changed between two snapshots of a cloud: tags, prefixes, addresses, regions
    Diff(DiffArgs),
    /// One tag's weekly changelog: when each prefix appeared and disappeared
    History(HistoryArgs),
    /// Write each configured ruleset's firewall files to out/<ruleset>/ (atomically)
    Emit(EmitArgs),
    /// Which tags hold an address or network, which rulesets allow it, and since when
    Lookup(LookupArgs),
    /// Check the settings file against the stored data, or print an annotated example
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Merge CIDRs (files or stdin, one per line) into the fewest CIDRs, optionally at most N
    Aggregate(AggregateArgs),
    /// Find, download and import each cloud's newest file from Microsoft or a mirror
    Fetch(FetchArgs),
    /// Check the path to Microsoft's files step by step (DNS, proxy, TLS, page, file), with fixes
    Doctor(DoctorArgs),
    /// The scheduled job: fetch, report, rebuild rulesets, withhold dangerous changes, publish
    Sync(SyncArgs),
    /// Publish a ruleset's change that the guard withheld (or --show it first)
    Approve(ApproveArgs),
    /// Decline a ruleset's withheld change: the published files stay, later runs on the same
    /// file do not withhold and notify it again
    Reject(RejectArgs),
    /// Every approval and rejection: when, which ruleset and snapshot, by whom, and why
    Approvals(ApprovalsArgs),
    /// Run sync on the [schedule] cron until SIGTERM or SIGINT
    Daemon(DaemonArgs),
    /// Serve the published rulesets over HTTP for firewalls that poll a URL
    Serve(ServeArgs),
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines
    Text,
    /// One JSON object per line
    Json,
}

/// `tagwall sync`.
#[derive(Debug, Args, Clone)]
pub struct SyncArgs {
    /// Only this cloud, or all; repeatable [default: as for fetch]
    #[arg(long = "cloud", value_name = "CLOUD|all")]
    pub clouds: Vec<String>,
    /// Publish even the changes the guard would withhold
    #[arg(long)]
    pub force: bool,
    /// Fetch and write nothing: say what would be published or withheld
    #[arg(long)]
    pub dry_run: bool,
    /// Use this directory of ServiceTags files as the mirror (no network)
    #[arg(long, value_name = "DIR")]
    pub source: Option<PathBuf>,
    /// Seconds to wait for another run's lock, at most 86400 [default: [sync] lock_wait_seconds, else 600]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub lock_wait: Option<u64>,
}

/// `tagwall approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The ruleset whose withheld change to publish
    #[arg(value_name = "RULESET")]
    pub ruleset: String,
    /// Print the entries the change would add and remove, and publish nothing
    #[arg(long)]
    pub show: bool,
    /// Who approves (recorded in the store; default: $SUDO_USER, else $USER)
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Why (recorded in the store)
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub comment: String,
    /// Publish even when the selection gives an empty list now (every selected tag is gone)
    #[arg(long)]
    pub allow_empty: bool,
    /// Seconds to wait for another run's lock, at most 86400 [default: [sync] lock_wait_seconds, else 600]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub lock_wait: Option<u64>,
}

/// `tagwall reject`.
#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The ruleset whose withheld change will not be published
    #[arg(value_name = "RULESET")]
    pub ruleset: String,
    /// Who decides (recorded in the store; default: $SUDO_USER, else $USER)
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Why (recorded in the store)
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub comment: String,
    /// Seconds to wait for another run's lock, at most 86400 [default: [sync] lock_wait_seconds, else 600]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub lock_wait: Option<u64>,
}

/// `tagwall approvals`.
#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// Only this ruleset's
    #[arg(long, value_name = "RULESET")]
    pub ruleset: Option<String>,
    /// One JSON object per approval instead of a table
    #[arg(long)]
    pub json: bool,
}

/// `tagwall daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Also run once at start
    #[arg(long)]
    pub run_now: bool,
    /// Also serve the published rulesets on this address, as `tagwall serve` does
    #[arg(long, value_name = "ADDR:PORT")]
    pub serve: Option<String>,
    /// Each run's settings, as for sync
    #[command(flatten)]
    pub sync: SyncArgs,
}

/// `tagwall fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Only this cloud, or all; repeatable [default: [fetch] clouds, else the rulesets' clouds, else Public]
    #[arg(long = "cloud", value_name = "CLOUD|all")]
    pub clouds: Vec<String>,
    /// Stop after discovery: print what would be downloaded
    #[arg(long)]
    pub dry_run: bool,
}

/// `tagwall serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on this address and port [default: [serve] listen, else 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
}

/// `tagwall doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Only this cloud, or all; repeatable [default: as for fetch]
    #[arg(long = "cloud", value_name = "CLOUD|all")]
    pub clouds: Vec<String>,
}

/// `tagwall emit`.
#[derive(Debug, Args)]
pub struct EmitArgs {
    /// Only this ruleset; repeatable (default: every ruleset of the settings file)
    #[arg(long = "ruleset", value_name = "NAME")]
    pub rulesets: Vec<String>,
    /// Snapshot to build from, per ruleset's cloud: latest, latest~N, YYYY-MM-DD or id:N
    #[arg(long, default_value = "latest", value_name = "SNAP")]
    pub at: SnapRef,
    /// Output directory [default: [output] dir of the settings, else ./out]; another directory
    /// is written without the guard
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Publish into the settings' output directory even what the guard withholds (recorded
    /// with the approvals)
    #[arg(long)]
    pub force: bool,
    /// Who forces it (recorded; default: $SUDO_USER, else $USER)
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

/// `tagwall lookup`.
#[derive(Debug, Args)]
pub struct LookupArgs {
    /// An address (20.38.98.1, 2603:1000::1) or a network (20.38.98.0/24)
    #[arg(value_name = "ADDR|CIDR")]
    pub target: String,
    /// Cloud, or all
    #[arg(long, default_value = "all", value_name = "CLOUD|all")]
    pub cloud: String,
    /// Snapshot: latest, latest~N, YYYY-MM-DD (newest on or before) or id:N
    #[arg(long, default_value = "latest", value_name = "SNAP")]
    pub at: SnapRef,
    /// Also list the date ranges in which each tag contained it
    #[arg(long)]
    pub history: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

/// `tagwall config`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a settings file and show what each ruleset selects in the newest snapshot
    Check(ConfigCheckArgs),
    /// Print an annotated example settings file (with the entra-connector ruleset)
    Example,
}

/// `tagwall config check`.
#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// The file [default: --config, $TAGWALL_CONFIG or ./tagwall.toml]
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// `tagwall aggregate`.
#[derive(Debug, Args)]
pub struct AggregateArgs {
    /// Files with one address or CIDR per line ('#' starts a comment); none or '-': stdin
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// At most this many CIDRs per family, adding the fewest addresses (reported on stderr)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_entries: Option<u64>,
}

/// `tagwall history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The tag's exact name, e.g. AzureCloud.westeurope
    #[arg(value_name = "TAG")]
    pub tag: String,
    /// Cloud
    #[arg(long, value_parser = parse_cloud, default_value = "Public")]
    pub cloud: Cloud,
    /// Only snapshots dated on or after this day
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub since: Option<NaiveDate>,
    /// Output format
    #[arg(long, value_enum, default_value_t = HistoryFormat::Text)]
    pub format: HistoryFormat,
    /// Write to this file (atomically) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `tagwall diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Cloud
    #[arg(long, value_parser = parse_cloud, default_value = "Public")]
    pub cloud: Cloud,
    /// The older snapshot (SNAP)
    #[arg(default_value = "latest~1", value_name = "FROM")]
    pub from: SnapRef,
    /// The newer snapshot (SNAP)
    #[arg(default_value = "latest", value_name = "TO")]
    pub to: SnapRef,
    /// Only tags whose name matches this glob, case-insensitive; repeatable
    #[arg(long = "tag", value_name = "GLOB", conflicts_with = "ruleset")]
    pub tags: Vec<String>,
    /// What changes in this ruleset's list (its entries, aggregation and budget included), in
    /// the ruleset's cloud
    #[arg(long, value_name = "NAME")]
    pub ruleset: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Write to this file (atomically) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with 1 when the contents differ (like `git diff --exit-code`)
    #[arg(long)]
    pub exit_code: bool,
}

/// Formats of `tagwall diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Plain text for terminals and logs
    Text,
    /// Markdown for e-mail and tickets
    Markdown,
    /// JSON, schema tagwall.diff/1 (docs/diff-json.md)
    Json,
    /// A self-contained HTML page
    Html,
}

/// Formats of `tagwall history`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HistoryFormat {
    /// One line per snapshot, then the prefixes added and removed
    Text,
    /// JSON for programs
    Json,
    /// A self-contained HTML page with an SVG chart of the prefix counts
    Html,
}

/// `tagwall import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The cloud every file must be for (default: the cloud each file names)
    #[arg(long, value_parser = parse_cloud)]
    pub cloud: Option<Cloud>,
    /// File date to record (default: the _YYYYMMDD in each file name)
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<NaiveDate>,
    /// Files or directories
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `tagwall snapshots`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SnapshotsArgs {
    /// Only this cloud (default: every cloud)
    #[arg(long, value_parser = parse_cloud)]
    pub cloud: Option<Cloud>,
    /// Output format
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// What to do instead of listing
    #[command(subcommand)]
    pub action: Option<SnapshotsCommand>,
}

/// `tagwall snapshots delete`.
#[derive(Debug, Subcommand)]
pub enum SnapshotsCommand {
    /// Delete a mistaken snapshot (one transaction; the other snapshots' history is recomputed)
    Delete(DeleteArgs),
}

/// `tagwall snapshots delete SNAP --yes`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The snapshot: id:N, YYYY-MM-DD (newest on or before), latest or latest~N
    #[arg(value_name = "SNAP")]
    pub snap: SnapRef,
    /// Cloud (for dates and latest; id:N names one snapshot of any cloud)
    #[arg(long, value_parser = parse_cloud, default_value = "Public")]
    pub cloud: Cloud,
    /// Really delete (without it, only say what would be deleted)
    #[arg(long)]
    pub yes: bool,
}

/// `tagwall export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Cloud
    #[arg(long, value_parser = parse_cloud, default_value = "Public")]
    pub cloud: Cloud,
    /// Snapshot: latest, latest~N, YYYY-MM-DD (newest on or before) or id:N
    #[arg(long, default_value = "latest", value_name = "SNAP")]
    pub at: SnapRef,
    /// Write to this file (atomically) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The original file's bytes exactly as imported, instead of the canonical rendering
    #[arg(long)]
    pub raw: bool,
}

/// `tagwall tags`.
#[derive(Debug, Args)]
pub struct TagsArgs {
    /// Cloud
    #[arg(long, value_parser = parse_cloud, default_value = "Public")]
    pub cloud: Cloud,
    /// Snapshot: latest, latest~N, YYYY-MM-DD (newest on or before) or id:N
    #[arg(long, default_value = "latest", value_name = "SNAP")]
    pub at: SnapRef,
    /// Only tags whose name matches this glob, case-insensitive (e.g. 'Storage.*')
    #[arg(long = "match", value_name = "GLOB")]
    pub pattern: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

/// Formats of listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for people
    Table,
    /// JSON for programs
    Json,
}

fn parse_cloud(s: &str) -> Result<Cloud, String> {
    s.parse()
        .map_err(|e: crate::core::model::UnknownCloud| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
