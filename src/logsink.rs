//! stderr for the long-running commands (`serve`, `daemon`): writers never wait for it.
//!
//! Log lines (the access log's and every `tracing` event's) are appended to one in-memory buffer;
//! a thread of its own takes the buffer every [`FLUSH`] and writes it to stderr in one write. When
//! stderr is blocked (a full pipe nobody reads), only that thread waits: once [`MAX_PENDING`]
//! bytes are waiting, new lines are dropped and counted ([`dropped`]), and serving, the schedule
//! and the stop signal go on. [`flush`] writes what is left before the process exits, waiting at
//! most the time it is given. Short commands write to stderr directly.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The most bytes that may wait for stderr; past it lines are dropped and counted.
pub const MAX_PENDING: usize = 1024 * 1024;
/// How often the buffer is written.
pub const FLUSH: Duration = Duration::from_millis(200);

#[derive(Debug, Default)]
struct Sink {
    pending: Mutex<Vec<u8>>,
    /// True while the thread holds lines it has not finished writing.
    writing: AtomicBool,
    dropped: AtomicU64,
}

static SINK: OnceLock<Sink> = OnceLock::new();

fn sink() -> &'static Sink {
    SINK.get_or_init(|| {
        std::thread::Builder::new()
            .name("tagwall-stderr".into())
            .spawn(write_forever)
            .expect("a thread can be started");
        Sink::default()
    })
}

fn write_forever() {
    let mut stderr = std::io::stderr();
    loop {
        std::thread::sleep(FLUSH);
        let Some(sink) = SINK.get() else { continue };
        sink.writing.store(true, Ordering::SeqCst);
        let lines = std::mem::take(&mut *sink.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if !lines.is_empty() {
            // Only this thread waits when stderr is blocked.
            let _ = stderr.write_all(&lines);
            let _ = stderr.flush();
        }
        sink.writing.store(false, Ordering::SeqCst);
    }
}

/// Appends one or more whole lines; false (and counted) when too much is waiting already.
pub fn write(line: &[u8]) -> bool {
    let sink = sink();
    let mut pending = sink.pending.lock().unwrap_or_else(|e| e.into_inner());
    if pending.len() + line.len() > MAX_PENDING {
        sink.dropped.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    pending.extend_from_slice(line);
    true
}

/// Writes dropped because stderr did not take the lines fast enough.
pub fn dropped() -> u64 {
    SINK.get().map_or(0, |s| s.dropped.load(Ordering::Relaxed))
}

/// Waits until what was appended has been written, for at most `wait` (stderr may be blocked).
pub fn flush(wait: Duration) {
    let Some(sink) = SINK.get() else { return };
    let until = Instant::now() + wait;
    while Instant::now() < until {
        let empty = sink
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if empty && !sink.writing.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `tracing` writer into the sink: each event is one write.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeWriter;

/// One event's bytes, handed to the sink as they are written.
#[derive(Debug)]
pub struct Writer;

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A dropped line is counted, not an error: the event is gone either way.
        write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MakeWriter {
    type Writer = Writer;

    fn make_writer(&'a self) -> Self::Writer {
        Writer
    }
}
