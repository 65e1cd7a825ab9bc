//! The load tool: thousands of headless players and spectators over every transport, verified
//! and measured, with a report.
//!
//! The pieces, in the order a run uses them:
//!
//! - [`cli`]: the flags and their checked form ([`cli::Settings`]).
//! - [`rooms`]: the server is there, the rooms exist (created through the API), they are big
//!   enough — or the user is told which server setting to raise.
//! - [`plan`]: who each client is (role, transport, room, source address, start time, verify
//!   or skim).
//! - [`run`]: starts the clients at the ramp's rate, scrapes the server, stops, gathers.
//! - [`vu`]: one client, through the `bots` library like any test or bot; [`wander`] flies
//!   the clients that skim, [`changes`] counts what verified frames changed, [`inject`]
//!   corrupts a frame for `--inject-desync`.
//! - [`record`]: what the clients measure, shared (HDR histograms, per-second series).
//! - [`metrics_scrape`]: the server's `/metrics`, and what two scrapes say about the time
//!   between them.
//! - [`sys`]: the generator's own CPU and memory, and its open-files limit.
//! - [`progress`]: the live progress line.
//! - [`report`], [`timeline`], [`table`], [`html`] and [`plot`]: the results as JSON, text and
//!   a page.

pub mod changes;
pub mod cli;
pub mod html;
pub mod inject;
pub mod metrics_scrape;
pub mod plan;
pub mod plot;
pub mod progress;
pub mod record;
pub mod report;
pub mod rooms;
pub mod run;
pub mod sys;
pub mod table;
pub mod timeline;
pub mod vu;
pub mod wander;

use anyhow::Context;

use cli::Args;
use report::Report;

/// Runs the tool with `args`: the run, then the table, `--json` and `--report`. Returns the
/// exit status (see [`report`]).
pub async fn main(args: Args) -> anyhow::Result<i32> {
    let settings = args.settings()?;
    let (json, html, quiet) = (
        settings.json.clone(),
        settings.report.clone(),
        settings.quiet,
    );
    let data = run::run(settings).await?;
    let report = Report::build(&data);
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = html {
        std::fs::write(&path, html::page(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !quiet {
        print!("{}", report.table());
    }
    Ok(report.exit_code)
}
