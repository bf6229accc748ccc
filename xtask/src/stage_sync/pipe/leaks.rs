//! The leak check's record of source values, in bounded memory: per `table.column` (and,
//! inside JSON, per key) the 64-bit hashes of the values masked, held in a small buffer
//! that goes to disk as a sorted run when full (runs of one size merged into one of the next
//! size when there are many: few runs, and each hash rewritten only a few times),
//! in an unlinked temporary file that disappears with the process. The check then merges
//! the runs against the target's values, hashed and spilled the same way: exact for the
//! hashes (no false negatives), and memory does not grow with the rows.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    fs::File,
    hash::{DefaultHasher, Hash, Hasher},
    os::unix::fs::FileExt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::{Context, Result};

/// Hashes held in memory per set before they go to disk as a sorted run (64 KB).
const CAP: usize = 1 << 13;
/// Runs of one set and tier merged into one of the next tier when there are this many.
const FAN_IN: usize = 32;
/// Hashes read from a run at a time while merging.
const CHUNK: usize = 1 << 10;

/// Hashes of the masked values seen in the source, per `table.column` and, inside JSON, per
/// key (`""` for a column's own values and for JSON strings under no key): no target value
/// may hash into them.
#[derive(Default)]
pub(crate) struct LeakSets {
    sets: HashMap<String, HashMap<String, Spill>>,
    /// For JSON columns, the other side: what the masking wrote under a masked key. The
    /// target stores exactly these strings (json keeps the text, jsonb the strings), so
    /// they are checked here instead of by reading every document back.
    emitted: HashMap<String, HashMap<String, Spill>>,
    disk: Disk,
    /// The first failure to write a run (the masking's callbacks cannot return one): the
    /// merge after the table's copy reports it.
    failed: Option<anyhow::Error>,
}

impl LeakSets {
    pub(in crate::stage_sync) fn insert(&mut self, column: &str, value: &str) {
        let added = add(&mut self.sets, &mut self.disk, column, "", value);
        self.note(added);
    }

    fn note(&mut self, result: Result<()>) {
        if let Err(err) = result {
            self.failed.get_or_insert(err);
        }
    }

    /// What the JSON masking reports of one string under a masked key: the source's value
    /// (none for a number or boolean it replaced) and what it wrote.
    pub(in crate::stage_sync) fn seen(&mut self, column: &str, key: &str, original: Option<&str>, masked: &str) {
        if let Some(original) = original {
            let added = add(&mut self.sets, &mut self.disk, column, key, original);
            self.note(added);
        }
        let added = add(&mut self.emitted, &mut self.disk, column, key, masked);
        self.note(added);
    }

    pub(in crate::stage_sync) fn merge(&mut self, other: LeakSets) -> Result<()> {
        if let Some(err) = other.failed {
            return Err(err);
        }
        for (mine, theirs) in [(&mut self.sets, other.sets), (&mut self.emitted, other.emitted)] {
            for (column, keys) in theirs {
                let mine = mine.entry(column).or_default();
                for (key, spill) in keys {
                    mine.entry(key).or_insert_with(|| Spill::new(true)).absorb(spill, &mut self.disk)?;
                }
            }
        }
        Ok(())
    }

    /// How many distinct strings the masking wrote into a JSON column that equal a source
    /// value under the same key.
    pub(crate) fn emitted_leaks(&self, column: &str) -> Result<u64> {
        let Some(keys) = self.emitted.get(column) else { return Ok(0) };
        let mut total = 0;
        for (key, emitted) in keys {
            if let Some(source) = self.sets.get(column).and_then(|k| k.get(key)) {
                total += intersect(source, emitted)?;
            }
        }
        Ok(total)
    }

    /// How many of the target's values of `column` (with repeats) are in its set.
    pub(crate) fn count(&self, column: &str, values: &Values) -> Result<u64> {
        match self.sets.get(column).and_then(|keys| keys.get("")) {
            Some(source) => intersect(source, &values.spill),
            None => Ok(0),
        }
    }
}

/// A target column's values, hashed (repeats kept), to [`count`](LeakSets::count).
pub(crate) struct Values {
    spill: Spill,
    disk: Disk,
}

impl Default for Values {
    fn default() -> Values {
        Values { spill: Spill::new(false), disk: Disk::default() }
    }
}

impl Values {
    pub(crate) fn record(&mut self, value: &str) -> Result<()> {
        self.spill.push(hash(value), &mut self.disk)
    }

    pub(crate) fn merge(&mut self, other: Values) -> Result<()> {
        self.spill.absorb(other.spill, &mut self.disk)
    }
}

/// Adds `value`'s hash under `column` and `key`, allocating only for a new column or key.
fn add(
    sets: &mut HashMap<String, HashMap<String, Spill>>,
    disk: &mut Disk,
    column: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    let hashed = hash(value);
    if let Some(set) = sets.get_mut(column).and_then(|keys| keys.get_mut(key)) {
        return set.push(hashed, disk);
    }
    let set = sets.entry(column.to_string()).or_default().entry(key.to_string()).or_insert_with(|| Spill::new(true));
    set.push(hashed, disk)
}

fn hash(value: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The temporary file runs are written to, made on the first run: unlinked at once, so it
/// takes disk only while a run refers to it, and never outlives the process.
#[derive(Default, Clone)]
struct Disk(Option<Arc<TempFile>>);

struct TempFile {
    file: File,
    end: AtomicU64,
}

impl Disk {
    fn file(&mut self) -> Result<Arc<TempFile>> {
        if let Some(file) = &self.0 {
            return Ok(file.clone());
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "xtask-leaks-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("cannot create the leak check's temporary file {}", path.display()))?;
        std::fs::remove_file(&path).with_context(|| format!("cannot unlink {}", path.display()))?;
        let file = Arc::new(TempFile { file, end: AtomicU64::new(0) });
        self.0 = Some(file.clone());
        Ok(file)
    }
}

/// A sorted run of hashes in a temporary file.
struct Run {
    file: Arc<TempFile>,
    at: u64,
    len: u64,
    /// How many merges made it: runs of one tier are of about one size.
    tier: u32,
}

/// One set of hashes: a buffer, then sorted runs on disk. `distinct`: repeats are dropped
/// (a source set); else kept (a target's values, counted with repeats).
struct Spill {
    buf: Vec<u64>,
    runs: Vec<Run>,
    distinct: bool,
}

impl Spill {
    fn new(distinct: bool) -> Spill {
        Spill { buf: Vec::new(), runs: Vec::new(), distinct }
    }

    fn push(&mut self, hash: u64, disk: &mut Disk) -> Result<()> {
        self.buf.push(hash);
        if self.buf.len() >= CAP { self.flush(disk) } else { Ok(()) }
    }

    fn absorb(&mut self, other: Spill, disk: &mut Disk) -> Result<()> {
        self.runs.extend(other.runs);
        for chunk in other.buf.chunks(CAP) {
            self.buf.extend_from_slice(chunk);
            if self.buf.len() >= CAP {
                self.flush(disk)?;
            }
        }
        self.compact(disk)
    }

    /// The buffer, sorted, becomes a run.
    fn flush(&mut self, disk: &mut Disk) -> Result<()> {
        self.buf.sort_unstable();
        if self.distinct {
            self.buf.dedup();
        }
        let file = disk.file()?;
        let at = file.end.fetch_add(8 * self.buf.len() as u64, Ordering::Relaxed);
        let bytes: Vec<u8> = self.buf.iter().flat_map(|h| h.to_le_bytes()).collect();
        file.file.write_all_at(&bytes, at).context("cannot write the leak check's temporary file")?;
        self.runs.push(Run { file, at, len: self.buf.len() as u64, tier: 0 });
        self.buf.clear();
        self.compact(disk)
    }

    /// Many runs of one tier become one of the next, so that a merge reads a bounded number
    /// of runs at a time.
    fn compact(&mut self, disk: &mut Disk) -> Result<()> {
        loop {
            let mut tiers: HashMap<u32, usize> = HashMap::new();
            self.runs.iter().for_each(|r| *tiers.entry(r.tier).or_default() += 1);
            let Some(tier) = tiers.into_iter().filter(|(_, n)| *n >= FAN_IN).map(|(t, _)| t).min() else {
                return Ok(());
            };
            let (merging, kept): (Vec<Run>, Vec<Run>) =
                std::mem::take(&mut self.runs).into_iter().partition(|r| r.tier == tier);
            self.runs = kept;
            self.runs.push(merge_runs(&merging, self.distinct, tier + 1, disk)?);
        }
    }
}

/// Writes the merge of `runs` as one run of `tier`.
fn merge_runs(runs: &[Run], distinct: bool, tier: u32, disk: &mut Disk) -> Result<Run> {
    let file = disk.file()?;
    let room: u64 = runs.iter().map(|r| r.len).sum();
    let at = file.end.fetch_add(8 * room, Ordering::Relaxed);
    let (mut merged, mut out, mut len) = (Merged::new(runs, &[], distinct)?, Vec::new(), 0u64);
    while let Some(hash) = merged.next()? {
        out.extend_from_slice(&hash.to_le_bytes());
        if out.len() >= 8 * CHUNK {
            file.file.write_all_at(&out, at + 8 * len).context("cannot write the leak check's temporary file")?;
            len += CHUNK as u64;
            out.clear();
        }
    }
    file.file.write_all_at(&out, at + 8 * len).context("cannot write the leak check's temporary file")?;
    len += out.len() as u64 / 8;
    Ok(Run { file, at, len, tier })
}

/// Counts the hashes of `values` (each repeat) that are in `set`.
fn intersect(set: &Spill, values: &Spill) -> Result<u64> {
    let (mut sorted, mut buf) = (set.buf.clone(), values.buf.clone());
    sorted.sort_unstable();
    buf.sort_unstable();
    let mut a = Merged::new(&set.runs, &sorted, true)?;
    let mut b = Merged::new(&values.runs, &buf, values.distinct)?;
    let (mut x, mut y, mut count) = (a.next()?, b.next()?, 0);
    while let (Some(p), Some(q)) = (x, y) {
        if p < q {
            x = a.next()?;
        } else {
            count += u64::from(p == q);
            y = b.next()?;
        }
    }
    Ok(count)
}

/// The hashes of sorted runs and a sorted buffer, in order, through a heap.
struct Merged<'a> {
    sources: Vec<Source<'a>>,
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    distinct: bool,
    last: Option<u64>,
}

struct Source<'a> {
    run: Option<&'a Run>,
    read: u64,
    chunk: Vec<u64>,
    pos: usize,
}

impl Source<'_> {
    fn next(&mut self) -> Result<Option<u64>> {
        if self.pos == self.chunk.len() {
            let Some(run) = self.run.filter(|r| self.read < r.len) else { return Ok(None) };
            let take = (run.len - self.read).min(CHUNK as u64) as usize;
            let mut bytes = vec![0u8; 8 * take];
            run.file
                .file
                .read_exact_at(&mut bytes, run.at + 8 * self.read)
                .context("cannot read the leak check's temporary file")?;
            self.read += take as u64;
            self.chunk = bytes.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default())).collect();
            self.pos = 0;
        }
        self.pos += 1;
        Ok(Some(self.chunk[self.pos - 1]))
    }
}

impl<'a> Merged<'a> {
    fn new(runs: &'a [Run], sorted: &[u64], distinct: bool) -> Result<Merged<'a>> {
        let mut sources: Vec<Source> =
            runs.iter().map(|run| Source { run: Some(run), read: 0, chunk: Vec::new(), pos: 0 }).collect();
        sources.push(Source { run: None, read: 0, chunk: sorted.to_vec(), pos: 0 });
        let mut heap = BinaryHeap::new();
        for (i, source) in sources.iter_mut().enumerate() {
            if let Some(hash) = source.next()? {
                heap.push(Reverse((hash, i)));
            }
        }
        Ok(Merged { sources, heap, distinct, last: None })
    }

    fn next(&mut self) -> Result<Option<u64>> {
        while let Some(Reverse((hash, i))) = self.heap.pop() {
            if let Some(next) = self.sources[i].next()? {
                self.heap.push(Reverse((next, i)));
            }
            if self.distinct && self.last == Some(hash) {
                continue;
            }
            self.last = Some(hash);
            return Ok(Some(hash));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_sets_count_exactly_what_a_hash_set_would() {
        let mut leaks = LeakSets::default();
        let mut other = LeakSets::default();
        // Far more values than one buffer holds, with repeats, from two workers.
        for i in 0..(1_000_000u64).max((3 * CAP * FAN_IN / 2) as u64) {
            let set = if i % 2 == 0 { &mut leaks } else { &mut other };
            set.insert("t.c", &format!("v{}", i % 500_000));
        }
        leaks.merge(other).unwrap();
        let mut values = Values::default();
        let mut more = Values::default();
        for i in 0..200_000u64 {
            // Half are source values (the ones below 500000), each recorded twice.
            let v = format!("v{}", if i % 2 == 0 { i * 7 % 500_000 } else { 1_000_000 + i });
            values.record(&v).unwrap();
            more.record(&v).unwrap();
        }
        values.merge(more).unwrap();
        assert_eq!(leaks.count("t.c", &values).unwrap(), 200_000);
        assert_eq!(leaks.count("t.other", &values).unwrap(), 0);

        let mut json = LeakSets::default();
        json.seen("t.j", "name", Some("Ann"), "Xyz");
        json.seen("t.j", "name", Some("Bob"), "Ann");
        json.seen("t.j", "name", Some("Cy"), "Ann");
        json.seen("t.j", "city", None, "Bob");
        assert_eq!(json.emitted_leaks("t.j").unwrap(), 1, "distinct strings written under the same key");
    }
}
