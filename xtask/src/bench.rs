//! `cargo xtask bench`: benchmarks that print ratios measured side by side in one run. With
//! no subcommand, every benchmark in turn (each prints its own table as it finishes), then
//! one table of every target: what was measured, the target, met or not.

mod db_up;
mod readers;
mod reset;
mod rls;
mod seed;
mod stage_sync;

/// `cargo xtask ci`'s stage-sync section, the one way into this room from a command: the
/// benchmark's pair of clusters with a seeded source, synced and verified.
pub(crate) use self::stage_sync::end_to_end;

use anyhow::Result;
use xshell::Shell;

use self::stage_sync::{self as sync_bench, Schema};
use crate::{
    context::{data, status},
    flags::{self, BenchCommand, BenchSchema, Global},
    generated,
    ui::{self, Align},
};

/// Rows the `large` seed profile writes per clinic (1,051,091 rows for 150 clinics).
const LARGE_ROWS_PER_CLINIC: u64 = 7_007;

impl flags::Bench {
    pub(crate) fn run(self, global: &Global) -> Result<()> {
        match self.command {
            None => all(global),
            Some(BenchCommand::Seed) => seed::run(global).map(drop),
            Some(BenchCommand::StageSync { rows, schema }) => {
                sync_bench::run(&Shell::new()?, &schemas(rows, schema)).map(drop)
            }
            Some(BenchCommand::DbUp) => db_up::run().map(drop),
            Some(BenchCommand::Reset) => reset::run().map(drop),
            Some(BenchCommand::RlsMatrix { tables }) => rls::run(tables).map(drop),
        }
    }
}

/// The schemas `bench stage-sync` copies: both unless `--schema` picks one; `--rows` sizes
/// each.
fn schemas(rows: Option<u64>, only: Option<BenchSchema>) -> Vec<Schema> {
    let large = Schema::Large { clinics: rows.map(|rows| rows.div_ceil(LARGE_ROWS_PER_CLINIC).max(1)) };
    let generated = Schema::Generated { rows: rows.unwrap_or(generated::DEFAULT_ROWS) };
    match only {
        None => vec![large, generated],
        Some(BenchSchema::Large) => vec![large],
        Some(BenchSchema::Generated) => vec![generated],
    }
}

/// Every benchmark, one after another (never at once: each needs the machine to itself),
/// then the summary. A benchmark that fails stops the run: a summary with a hole in it
/// would read as a target met.
fn all(global: &Global) -> Result<()> {
    let section = |name: &str| -> Result<()> {
        status(format!("bench {name}"));
        data(format!("== bench {name}"))
    };
    section("seed")?;
    let seeded = seed::run(global)?;
    data("")?;
    section("stage-sync")?;
    let synced = sync_bench::run(&Shell::new()?, &schemas(None, None))?;
    data("")?;
    section("stage-sync memory")?;
    let memory = sync_memory()?;
    data("")?;
    section("reset")?;
    let reset = reset::run()?;
    data("")?;
    section("db-up")?;
    let up = db_up::run()?;
    data("")?;

    data("== targets")?;
    let mut targets = Targets::new();
    targets.seed(&seeded);
    targets.stage_sync(&synced, memory);
    targets.reset(&reset);
    targets.db_up(&up);
    targets.table.lines().iter().try_for_each(data)?;
    Ok(())
}

/// The summary's table: what was measured, the target, met or not.
struct Targets {
    table: ui::Table,
}

impl Targets {
    fn new() -> Targets {
        let table = ui::Table::new(&[
            ("what", Align::Left),
            ("measured", Align::Right),
            ("target", Align::Right),
            ("met", Align::Left),
        ]);
        Targets { table }
    }

    /// One target's row; `met` is `None` for a figure shown without a target of its own.
    fn row(&mut self, name: String, measured: String, target: String, met: Option<bool>) {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        self.table.row([name, measured, target, met.to_string()]);
    }

    fn seed(&mut self, seeded: &seed::Figures) {
        self.row(
            "seed: rows/s (large)".into(),
            format!("{:.0}k", seeded.rate / 1e3),
            format!(">= {:.0}k", seed::TARGET_RATE / 1e3),
            Some(seeded.rate >= seed::TARGET_RATE),
        );
        self.row(
            "seed: rate / server-side insert-select".into(),
            format!("{:.2}", seeded.ratio),
            format!(">= {}", seed::TARGET_RATIO),
            Some(seeded.ratio >= seed::TARGET_RATIO),
        );
        self.row(
            "seed: peak memory".into(),
            format!("{:.0} MB", seeded.peak_mb),
            format!("< {:.0} MB", seed::TARGET_MEMORY_MB),
            Some(seeded.peak_mb < seed::TARGET_MEMORY_MB),
        );
    }

    /// Each schema's ratios and peak, then the peak's growth with the rows.
    fn stage_sync(&mut self, synced: &[sync_bench::Figures], memory: f64) {
        for figures in synced {
            let (j2, raw) = (figures.ratio(figures.dump_j2), figures.ratio(figures.raw));
            let name = figures.schema;
            self.row(
                format!("stage-sync / pg_dump -Fd -j2 + pg_restore -j2 ({name})"),
                format!("{j2:.2}"),
                format!("<= {}", sync_bench::TARGET_J2),
                Some(j2 <= sync_bench::TARGET_J2),
            );
            self.row(
                format!("stage-sync / raw COPY pipe ({name})"),
                format!("{raw:.2}"),
                format!("<= {:.1}", sync_bench::TARGET_RAW),
                Some(raw <= sync_bench::TARGET_RAW),
            );
            self.row(
                format!("stage-sync peak memory ({name})"),
                format!("{:.0} MB", figures.peak_mb()),
                format!("<= {:.0} MB", sync_bench::TARGET_PEAK_MB),
                Some(figures.peak_mb() <= sync_bench::TARGET_PEAK_MB),
            );
        }
        self.row(
            format!(
                "stage-sync peak memory {}M / {}M rows (generated)",
                MEMORY_ROWS[1] / 1_000_000,
                MEMORY_ROWS[0] / 1_000_000
            ),
            format!("{memory:.2}"),
            format!("<= {MEMORY_GROWTH:.1}"),
            Some(memory <= MEMORY_GROWTH),
        );
    }

    fn reset(&mut self, reset: &reset::Figures) {
        let target = reset::TARGET_RATIO;
        for (name, hit, raw) in [("realistic", reset.hit, reset.raw), ("large", reset.large_hit, reset.large_raw)] {
            self.row(
                format!("db reset template hit / raw clone ({name})"),
                format!("{:.2}", hit / raw),
                format!("<= {target:.1}"),
                Some(hit / raw <= target),
            );
        }
        // No target of its own: shown so that a hit's gain over a rebuild is in the same table.
        self.row(
            "db reset template miss / raw clone (realistic)".into(),
            format!("{:.2}", reset.miss / reset.raw),
            "-".into(),
            None,
        );
        self.row(
            "db undo (realistic)".into(),
            format!("{:.2} s", reset.undo),
            format!("< {:.1} s", reset::TARGET_UNDO),
            Some(reset.undo < reset::TARGET_UNDO),
        );
    }

    fn db_up(&mut self, up: &db_up::Figures) {
        self.row(
            "db up from nothing, seeded".into(),
            format!("{:.2} s", up.seeded),
            format!("<= {:.1} s", db_up::TARGET_SECONDS),
            Some(up.seeded <= db_up::TARGET_SECONDS),
        );
    }
}

/// The generated schema's sizes whose stage-sync peaks are compared, and the most the
/// larger's may exceed the smaller's: what is kept per row or value must not grow with them.
const MEMORY_ROWS: [u64; 2] = [1_000_000, 4_000_000];
const MEMORY_GROWTH: f64 = 1.2;

/// Stage-sync's peak memory at both sizes, printed; returns their ratio.
fn sync_memory() -> Result<f64> {
    let mut peaks = Vec::new();
    for rows in MEMORY_ROWS {
        let (synced, peak_kb) = sync_bench::peak_kb(Schema::Generated { rows })?;
        data(format!("stage-sync peak memory, generated schema, {synced} rows: {:.0} MB", peak_kb as f64 / 1024.0))?;
        peaks.push(peak_kb.max(1) as f64);
    }
    let growth = peaks[1] / peaks[0];
    data(format!(
        "peak at {}M rows / peak at {}M rows: {growth:.2} (target <= {MEMORY_GROWTH:.1})",
        MEMORY_ROWS[1] / 1_000_000,
        MEMORY_ROWS[0] / 1_000_000
    ))?;
    Ok(growth)
}
