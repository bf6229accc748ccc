//! Progress of the load, on a terminal only: one bar per table and one for all rows.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::{
    catalog::Table,
    rules::{Mode, Rules},
};
use crate::ui;

/// Progress on a terminal: a bar per table and one overall.
pub(super) struct Progress {
    multi: MultiProgress,
    pub overall: ProgressBar,
}

impl Progress {
    pub(super) fn new(tables: &[Table], order: &[usize], rules: &Rules) -> Progress {
        let multi = ui::printer().progress();
        let total: i64 = order
            .iter()
            .map(|&i| &tables[i])
            .filter(|t| rules.tables[&t.key()].mode == Mode::Copy)
            .map(|t| t.estimate)
            .sum();
        let overall = multi.add(ProgressBar::new(total.max(0) as u64));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>28} [{bar:30}] {human_pos}/{human_len} rows, {per_sec}, eta {eta}")
                .expect("template")
                .progress_chars("=> "),
        );
        overall.set_prefix("all tables");
        Progress { multi, overall }
    }

    pub(super) fn table(&self, table: &Table) -> ProgressBar {
        let bar = self.multi.insert_before(&self.overall, ProgressBar::new(table.estimate.max(0) as u64));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>28} [{bar:30}] {human_pos} rows, {per_sec}")
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_prefix(table.key());
        bar
    }
}
