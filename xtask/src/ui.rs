//! The printer, in the manner of uv's: one value, set up once by `main` from `--quiet` and
//! the terminal, that every command prints through. It owns the rules for what goes where
//! (data on stdout, status and warnings on stderr, secrets masked), progress bars (hidden
//! off a terminal or when quiet), tables, the y/N and typed prompts, and the broken-pipe
//! rule: a closed stdout (`| head`) is an error value that `main` treats as success, so
//! every `Drop` on the way up runs (throwaway clusters are stopped, never leaked).

use std::{
    fmt,
    io::{BufRead, IsTerminal, Write},
    sync::OnceLock,
};

use anyhow::{Context, Result, bail};
use app::secrets;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

/// What reaches the terminal, decided once per process.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    quiet: bool,
    stderr_terminal: bool,
    stdin_terminal: bool,
    color: bool,
}

static PRINTER: OnceLock<Printer> = OnceLock::new();

/// Sets up the printer for this process; the first call wins (tests call commands in
/// process and never set it, which means normal output).
pub fn init(quiet: bool) -> Printer {
    *PRINTER.get_or_init(|| Printer::detect(quiet))
}

/// The process's printer.
pub fn printer() -> Printer {
    *PRINTER.get_or_init(|| Printer::detect(false))
}

/// A status line on stderr, secrets masked; nothing when quiet.
pub fn status(line: impl AsRef<str>) {
    printer().status(line)
}

/// A warning on stderr, secrets masked; shown even when quiet.
pub fn warn(line: impl AsRef<str>) {
    printer().warn(line)
}

/// A line on stderr, secrets masked, shown even when quiet: a figure the user asked for
/// that is not the command's data (ci's section times, the peak memory benchmarks read).
pub fn report(line: impl AsRef<str>) {
    printer().report(line)
}

/// A line of data on stdout, secrets masked. A closed pipe returns [`BrokenPipe`].
pub fn data(line: impl AsRef<str>) -> Result<()> {
    printer().data(line)
}

/// Stdout was closed by the reader (`| head`): the command stops early, and `main` exits 0.
#[derive(Debug)]
pub struct BrokenPipe;

impl fmt::Display for BrokenPipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for BrokenPipe {}

/// Whether `err` (anywhere in its chain) is a closed stdout, which is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<BrokenPipe>())
}

impl Printer {
    fn detect(quiet: bool) -> Printer {
        let stderr_terminal = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Printer {
            quiet,
            stderr_terminal,
            stdin_terminal: std::io::stdin().is_terminal(),
            color: stderr_terminal && !no_color,
        }
    }

    pub fn is_quiet(self) -> bool {
        self.quiet
    }

    pub fn status(self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", secrets::redact(line.as_ref()));
        }
    }

    pub fn warn(self, line: impl AsRef<str>) {
        eprintln!("{} {}", self.paint("warning:", YELLOW), secrets::redact(line.as_ref()));
    }

    pub fn report(self, line: impl AsRef<str>) {
        eprintln!("{}", secrets::redact(line.as_ref()));
    }

    /// The `error: ...` line `main` prints, with its `hint:` lines as they are.
    pub fn error(self, message: &str) {
        eprintln!("{} {}", self.paint("error:", RED), secrets::redact(message));
    }

    pub fn data(self, line: impl AsRef<str>) -> Result<()> {
        let mut out = std::io::stdout().lock();
        match writeln!(out, "{}", secrets::redact(line.as_ref())) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Err(BrokenPipe.into()),
            Err(err) => Err(err).context("cannot write to stdout"),
        }
    }

    /// Whether progress is drawn: on a terminal, and not when quiet.
    pub fn shows_progress(self) -> bool {
        self.stderr_terminal && !self.quiet
    }

    /// Where a command's bars go; every bar of a command is added to one of these.
    pub fn progress(self) -> MultiProgress {
        MultiProgress::with_draw_target(self.draw_target())
    }

    /// One bar on its own (a single redrawn line).
    pub fn progress_line(self) -> ProgressBar {
        ProgressBar::with_draw_target(None, self.draw_target())
    }

    fn draw_target(self) -> ProgressDrawTarget {
        if self.shows_progress() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() }
    }

    /// A y/N question on a terminal. Without one, refuses with `hint` (the flag that
    /// confirms instead); any answer but yes fails with `declined`.
    pub fn confirm(self, question: &str, refusal: &str, declined: &str) -> Result<()> {
        if !self.stdin_terminal {
            bail!("{refusal}");
        }
        let answer = self.ask(&format!("{question} [y/N] "))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("{declined}");
        }
        Ok(())
    }

    /// A typed answer: `given` (a `--confirm` flag) if any, else asked on a terminal; without
    /// one, refuses with `refusal`. Never auto-accepts.
    pub fn typed(self, given: Option<&str>, prompt: &str, refusal: &str) -> Result<String> {
        match given {
            Some(given) => Ok(given.to_string()),
            None if self.stdin_terminal => self.ask(prompt),
            None => bail!("{refusal}"),
        }
    }

    fn ask(self, prompt: &str) -> Result<String> {
        eprint!("{prompt}");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the answer")?;
        Ok(line)
    }

    fn paint(self, text: &str, color: &str) -> String {
        if self.color { format!("\x1b[{color}m{text}\x1b[0m") } else { text.to_string() }
    }
}

const RED: &str = "1;31";
const YELLOW: &str = "1;33";

/// A table of text: columns as wide as their widest cell, two spaces apart, no trailing
/// blanks; numbers are right-aligned by asking for [`Align::Right`].
pub struct Table {
    columns: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

impl Table {
    pub fn new(columns: &[(&str, Align)]) -> Table {
        Table { columns: columns.iter().map(|(name, align)| (name.to_string(), *align)).collect(), rows: Vec::new() }
    }

    /// Adds a row; missing cells are blank.
    pub fn row(&mut self, cells: impl IntoIterator<Item = impl ToString>) {
        self.rows.push(cells.into_iter().map(|c| c.to_string()).collect());
    }

    /// The header and the rows, formatted.
    pub fn lines(&self) -> Vec<String> {
        let header: Vec<String> = self.columns.iter().map(|(name, _)| name.clone()).collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                std::iter::once(&header)
                    .chain(&self.rows)
                    .map(|row| row.get(i).map_or(0, |c| c.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        std::iter::once(&header).chain(&self.rows).map(|row| self.line(row, &widths)).collect()
    }

    fn line(&self, row: &[String], widths: &[usize]) -> String {
        let cells = self.columns.iter().zip(widths).enumerate().map(|(i, ((_, align), &width))| {
            let cell = row.get(i).map_or("", String::as_str);
            match align {
                Align::Left => format!("{cell:<width$}"),
                Align::Right => format!("{cell:>width$}"),
            }
        });
        cells.collect::<Vec<_>>().join("  ").trim_end().to_string()
    }

    /// Every line as data on stdout.
    pub fn print_data(&self) -> Result<()> {
        self.lines().iter().try_for_each(data)
    }

    /// Every line as status on stderr (summaries that are not the command's data).
    pub fn print_status(&self) {
        self.lines().iter().for_each(status)
    }

    /// Every line on stderr, even when quiet (see [`report`]).
    pub fn print_report(&self) {
        self.lines().iter().for_each(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_to_the_widest_cell_without_trailing_blanks() {
        let mut table = Table::new(&[("section", Align::Left), ("time", Align::Right), ("note", Align::Left)]);
        table.row(["format", "0.4s", ""]);
        table.row(["migrate verify", "12.0s", "slow"]);
        assert_eq!(
            table.lines(),
            ["section          time  note", "format           0.4s", "migrate verify  12.0s  slow",]
        );
    }

    #[test]
    fn a_broken_pipe_is_found_under_context() {
        let err = anyhow::Error::from(BrokenPipe).context("printing the report");
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("stdout was closed")));
    }
}
