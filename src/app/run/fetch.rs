//! `tagwall fetch` and `tagwall doctor`: the network side, from the settings' `[fetch]`.

use std::io::{self, Write};

use anyhow::Context;
use chrono::NaiveDate;

use crate::app::cli::{DoctorArgs, FetchArgs};
use crate::app::config::Config;
use crate::core::model::Cloud;
use crate::fetch::doctor::{self, Status};
use crate::fetch::proxy::Route;
use crate::fetch::{fetch_cloud, line, Client, Mode};
use crate::store::Store;

use super::{EXIT_FAILURE, EXIT_OK};

/// The clouds named on the command line (`all` for every one), else the settings' default.
pub fn clouds(config: &Config, args: &[String]) -> anyhow::Result<Vec<Cloud>> {
    if args.is_empty() {
        return Ok(config.fetch_clouds());
    }
    Cloud::parse_list(args).map_err(|e| anyhow::anyhow!("--cloud: {e}"))
}

/// The HTTP client for the settings, with the route read from the environment.
pub fn client(config: &Config) -> anyhow::Result<Client> {
    let s = &config.fetch;
    let route = Route::resolve(&s.proxy, &s.no_proxy, &s.credentials, &|k| {
        std::env::var(k).ok()
    })
    .map_err(|e| anyhow::anyhow!("{}: [fetch] proxy: {e}", config.source_name()))?;
    Ok(Client::new(s, route)?)
}

/// Today in UTC: Microsoft dates its files by day, and "overdue" counts whole days.
pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// `tagwall fetch`: one line per cloud; exit 1 when any cloud failed (the others still ran).
pub async fn fetch(store: &Store, config: &Config, args: FetchArgs) -> anyhow::Result<u8> {
    let clouds = clouds(config, &args.clouds)?;
    let client = client(config)?;
    let today = today();
    let mut out = io::stdout().lock();
    let mut failed = 0;
    for cloud in clouds {
        match fetch_cloud(
            store,
            &client,
            &config.fetch,
            cloud,
            today,
            Mode::dry_run_if(args.dry_run),
        )
        .await
        {
            Ok(f) => {
                writeln!(out, "{}", line(&f))?;
                f.warn();
            }
            Err(e) => {
                failed += 1;
                writeln!(out, "{:<16} failed: {e}", cloud.name())?;
            }
        }
    }
    Ok(if failed > 0 { EXIT_FAILURE } else { EXIT_OK })
}

/// `tagwall doctor`: one line per step; exit 1 when a step failed.
pub async fn doctor(config: &Config, args: DoctorArgs) -> anyhow::Result<u8> {
    let clouds = clouds(config, &args.clouds)?;
    let client = client(config).context("could not set up the HTTP client")?;
    let today = today();
    let mut out = io::stdout().lock();
    let mut failed = false;
    for cloud in clouds {
        for step in doctor::check(&client, &config.fetch, cloud, today).await {
            failed |= step.status == Status::Fail;
            writeln!(
                out,
                "{:<4}  {:<16} {:<8} {}",
                step.status.label(),
                step.cloud.name(),
                step.name,
                step.detail
            )?;
            if let Some(fix) = &step.fix {
                writeln!(out, "{:<4}  {:<16} {:<8} fix: {fix}", "", "", "")?;
            }
        }
    }
    Ok(if failed { EXIT_FAILURE } else { EXIT_OK })
}
