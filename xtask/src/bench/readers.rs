//! The stage-sync benchmark's reader: while a sync runs, a session on the target reads one
//! row of every synced table every 50 ms, as a demo or a test on staging would, and
//! records the longest any read took. The sync through the shadow keeps it to the swap
//! (goal: under [`TARGET_WAIT`]); a sync in place made it wait for the whole sync.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use app::guard::op;

use crate::throwaway::Throwaway;

/// The goal for the longest read during a sync of the `large` seed.
pub(crate) const TARGET_WAIT: Duration = Duration::from_secs(1);
const EVERY: Duration = Duration::from_millis(50);

/// Runs `sync` while reading `target`'s public tables every 50 ms; returns what `sync`
/// returned and the longest read.
pub(crate) fn watch<T>(target: &Throwaway, sync: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    let mut conn = target.guard()?.write::<op::LoadTesting>()?.connect()?;
    let tables: Vec<String> = conn
        .client()
        .query(
            "select format('(select 1 from %I.%I limit 1)', schemaname, relname) from pg_stat_user_tables
             where schemaname = 'public' order by 1",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let read = format!("select {}", if tables.is_empty() { "1".to_string() } else { tables.join(", ") });
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| -> Result<Duration> {
            let mut longest = Duration::ZERO;
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                conn.client().simple_query(&read).context("the benchmark's reader failed")?;
                longest = longest.max(started.elapsed());
                std::thread::sleep(EVERY.saturating_sub(started.elapsed()));
            }
            Ok(longest)
        });
        let result = sync();
        done.store(true, Ordering::Relaxed);
        let longest = reader.join().map_err(|_| anyhow::anyhow!("the benchmark's reader panicked"))??;
        Ok((result?, longest))
    })
}
