//! Where log lines go: a shared buffer that a background thread writes to
//! stderr every [`FLUSH_EVERY`], so logging a decision costs the request an
//! append under a short lock instead of a `write` system call.
//!
//! - **Nothing is lost.** A buffer over [`MAX_BUFFERED`] bytes (stderr
//!   stalled, e.g. a full pipe) is written by the thread that filled it,
//!   which then waits like an unbuffered logger would; a closed sink writes
//!   each line directly; [`SinkGuard`]'s drop writes what is left.
//! - **Lines stay whole.** The formatting layer writes each event with one
//!   `write_all` of a complete line; the sink appends it under the lock.
//! - **Bounded delay.** A line reaches stderr at most about
//!   [`FLUSH_EVERY`] after it was logged.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// How often the writer thread writes the buffer out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);

/// Bytes the buffer may hold before the logging thread writes it itself.
pub const MAX_BUFFERED: usize = 4 << 20;

struct Shared {
    buf: Mutex<Vec<u8>>,
    closed: AtomicBool,
    /// Wakes the writer thread early when closing.
    wake: Condvar,
    /// The output; its lock also keeps batches in order.
    out: Mutex<Box<dyn Write + Send>>,
}

impl Shared {
    /// Writes the buffer, then `extra`, in order with every other batch.
    /// `spare` is swapped in as the new buffer (its allocation reused).
    fn write_through(&self, spare: &mut Vec<u8>, extra: &[u8]) {
        spare.clear();
        let mut out = self.out.lock();
        std::mem::swap(&mut *self.buf.lock(), spare);
        // Nowhere to report a failing stderr; the bytes are dropped then,
        // as any logger's would be.
        let _ = out.write_all(spare);
        let _ = out.write_all(extra);
        let _ = out.flush();
        drop(out);
        // Do not keep a burst's worth of memory forever.
        if spare.capacity() > MAX_BUFFERED {
            *spare = Vec::new();
        }
    }
}

/// The `MakeWriter` for the formatting layer.
#[derive(Clone)]
pub struct Sink {
    shared: Arc<Shared>,
}

/// Stops the writer thread and writes every buffered line when dropped.
pub struct SinkGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A sink writing to stderr, and the guard that flushes it.
pub fn stderr() -> (Sink, SinkGuard) {
    sink(Box::new(std::io::stderr()))
}

/// A sink writing to `out`, and the guard that flushes it. Starts the
/// writer thread; if the thread cannot be started, lines are written
/// directly.
pub fn sink(out: Box<dyn Write + Send>) -> (Sink, SinkGuard) {
    let shared = Arc::new(Shared {
        buf: Mutex::new(Vec::with_capacity(64 * 1024)),
        closed: AtomicBool::new(false),
        wake: Condvar::new(),
        out: Mutex::new(out),
    });
    let worker = shared.clone();
    let thread = std::thread::Builder::new()
        .name("riskgate-log".into())
        .spawn(move || {
            let mut spare = Vec::with_capacity(64 * 1024);
            loop {
                {
                    let mut buf = worker.buf.lock();
                    if !worker.closed.load(Ordering::Acquire) {
                        worker.wake.wait_for(&mut buf, FLUSH_EVERY);
                    }
                }
                worker.write_through(&mut spare, &[]);
                if worker.closed.load(Ordering::Acquire) {
                    return;
                }
            }
        })
        .ok();
    if thread.is_none() {
        shared.closed.store(true, Ordering::Release);
    }
    (
        Sink {
            shared: shared.clone(),
        },
        SinkGuard { shared, thread },
    )
}

impl Drop for SinkGuard {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Lines appended after the thread's last batch.
        self.shared.write_through(&mut Vec::new(), &[]);
    }
}

/// One event's writer.
pub struct Line<'a> {
    shared: &'a Shared,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.shared.closed.load(Ordering::Acquire) {
            // After the guard: straight out, behind what was buffered.
            self.shared.write_through(&mut Vec::new(), bytes);
            return Ok(bytes.len());
        }
        let full = {
            let mut buf = self.shared.buf.lock();
            buf.extend_from_slice(bytes);
            buf.len() >= MAX_BUFFERED
        };
        if full {
            // The output is not keeping up: this thread writes (and waits).
            self.shared.write_through(&mut Vec::new(), &[]);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::MakeWriter as _;

    /// An output the test can read.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_whole_in_order_and_none_is_lost() {
        let out = Shared::default();
        let (sink, guard) = sink(Box::new(out.clone()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        let line = format!("thread {t} line {i:05}\n");
                        sink.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Written by the thread within a few flush intervals.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while out.0.lock().len() < 4 * 2000 * 20 && std::time::Instant::now() < deadline {
            std::thread::sleep(FLUSH_EVERY);
        }
        drop(guard);
        sink.make_writer().write_all(b"after close\n").unwrap();
        let text = String::from_utf8(out.0.lock().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4 * 2000 + 1);
        assert_eq!(lines.last(), Some(&"after close"));
        for t in 0..4 {
            let mine: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            assert_eq!(mine.len(), 2000);
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "in order per thread");
        }
    }

    #[test]
    fn an_overfull_buffer_is_written_by_the_logging_thread() {
        let out = Shared::default();
        let (sink, guard) = sink(Box::new(out.clone()));
        let big = vec![b'x'; MAX_BUFFERED + 1];
        sink.make_writer().write_all(&big).unwrap();
        // Written at once, not after a flush interval.
        assert_eq!(out.0.lock().len(), MAX_BUFFERED + 1);
        drop(guard);
    }
}
