//! Both cores on one stream: a reader thread frames items (rows, lines) into batches,
//! workers process the batches, each with its own state, and the caller's thread takes the
//! results in reading order. The pipe and the leak check use it. Memory: a few batches in
//! flight. Any error (reading, processing, the caller's) ends every thread and is returned.

use std::sync::{Arc, Mutex, mpsc};

use anyhow::{Result, anyhow};

/// About how many bytes a batch holds.
const BATCH_BYTES: usize = 1 << 19;

/// Runs the stream to its end: `frame` appends the next item to a batch (`false` at the end),
/// `work` turns a batch and its item count into a result with the worker's state, and
/// `take` receives the results in the order read. Returns the items read and each worker's
/// state.
pub(super) fn run<R, S, T>(
    mut reader: R,
    frame: impl Fn(&mut R, &mut Vec<u8>) -> Result<bool> + Sync,
    workers: usize,
    state: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, Vec<u8>, u64) -> Result<T> + Sync,
    mut take: impl FnMut(T, u64) -> Result<()>,
) -> Result<(u64, Vec<S>)>
where
    R: Send,
    S: Send,
    T: Send,
{
    std::thread::scope(|scope| {
        let (batches, queue) = mpsc::sync_channel::<(usize, Vec<u8>, u64)>(2 * workers);
        let (results, done) = mpsc::sync_channel::<(usize, Result<T>, u64)>(2 * workers);
        let frame = &frame;
        let read = scope.spawn(move || -> Result<u64> {
            let (mut total, mut index) = (0u64, 0usize);
            loop {
                let (mut batch, mut count, mut more) = (Vec::with_capacity(BATCH_BYTES + (1 << 16)), 0u64, true);
                while more && batch.len() < BATCH_BYTES {
                    more = frame(&mut reader, &mut batch)?;
                    count += u64::from(more);
                }
                total += count;
                if count > 0 && batches.send((index, batch, count)).is_err() || !more {
                    return Ok(total);
                }
                index += 1;
            }
        });
        // The workers share the queue; when the last one ends, the queue closes and the
        // reader stops.
        let queue = Arc::new(Mutex::new(queue));
        let (state, work) = (&state, &work);
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (queue, results) = (Arc::clone(&queue), results.clone());
                scope.spawn(move || {
                    let mut mine = state();
                    while let Ok((index, batch, count)) =
                        queue.lock().map_err(|_| ()).and_then(|q| q.recv().map_err(|_| ()))
                    {
                        if results.send((index, work(&mut mine, batch, count), count)).is_err() {
                            break;
                        }
                    }
                    mine
                })
            })
            .collect();
        drop((queue, results));
        let taken = in_order(&done, &mut take);
        // Ends the workers still sending, and through them the reader.
        drop(done);
        let states = handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("a worker thread panicked")))
            .collect::<Result<Vec<S>>>()?;
        let read = read.join().map_err(|_| anyhow!("the reader thread panicked"))??;
        let taken = taken?;
        if read != taken {
            anyhow::bail!("read {read} items but passed on {taken}");
        }
        Ok((read, states))
    })
}

/// Hands the results on as they come, each in its turn; the items they held.
fn in_order<T>(
    done: &mpsc::Receiver<(usize, Result<T>, u64)>,
    take: &mut impl FnMut(T, u64) -> Result<()>,
) -> Result<u64> {
    let (mut pending, mut next, mut items) = (std::collections::BTreeMap::new(), 0usize, 0u64);
    for (index, result, count) in done {
        pending.insert(index, (result?, count));
        while let Some((result, count)) = pending.remove(&next) {
            take(result, count)?;
            items += count;
            next += 1;
        }
    }
    Ok(items)
}
