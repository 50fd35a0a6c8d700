//! The journal's background writer: one thread that owns the database
//! connection, takes records off a bounded queue, and writes them in
//! batches of one transaction each. The decision path only ever calls
//! [`Journal::decision`] / [`Journal::outcome`], which never wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use crate::core::keys::Key;
use crate::domain::UnixMillis;
use crate::telemetry::Metrics;

use super::{
    DecisionEntry, Entry, JournalError, JournalSettings, JournalStore, OutcomeEntry, Target,
};

/// Most records written in one transaction.
const BATCH: usize = 2048;
/// How long the writer lets records gather after the first one before it
/// reads the queue. Reading each record as it arrives costs a thread wake-up
/// per decision (a system call on the decision path), and committing
/// whatever arrived since the last commit — a few records at a time —
/// rewrites the same table and index pages over and over; after a pause
/// each commit carries hundreds of records. The price: a decision reaches
/// the journal (and the console) up to this much later, and a flush or an
/// erasure may wait this much longer.
const LINGER: Duration = Duration::from_millis(200);
/// How long the writer sleeps with nothing to write.
const IDLE: Duration = Duration::from_secs(1);
/// How often retention is applied.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// First and longest wait before reconnecting to a failed database.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));
/// How long an admin call (forget) waits for the writer.
const CONTROL_DEADLINE: Duration = Duration::from_secs(30);

type Reply<T> = tokio::sync::oneshot::Sender<Result<T, JournalError>>;

enum Msg {
    Entry(Entry),
    /// Erase a user's decisions, after writing everything queued before.
    Forget(Key, Reply<u64>),
    /// Answer once everything queued before is written (or dropped).
    Flush(Reply<()>),
}

/// The journal of a running server.
pub struct Journal {
    tx: SyncSender<Msg>,
    target: Target,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Starts the writer for `settings.target` (which must not be
    /// [`Target::Off`]). A SQLite file that cannot be opened is an error;
    /// a PostgreSQL server that does not answer yet is only a warning —
    /// the writer keeps trying, dropping (and counting) records meanwhile.
    pub fn start(
        settings: &JournalSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Journal, JournalError> {
        // Opened on a thread of its own: the PostgreSQL client runs its own
        // runtime, which cannot start inside the caller's.
        let opened = std::thread::scope(|s| s.spawn(|| super::open(&settings.target)).join())
            .unwrap_or_else(|_| {
                Err(JournalError::Database(
                    "the connection attempt failed".into(),
                ))
            });
        let first = match opened {
            Ok(s) => Some(s),
            Err(e @ (JournalError::Off | JournalError::Corrupt { .. })) => return Err(e),
            Err(e) if matches!(settings.target, Target::Sqlite(_)) => return Err(e),
            Err(e) => {
                tracing::warn!(journal = %settings.target, error = %e, "journal database unavailable: records are dropped until it answers");
                None
            }
        };
        let (tx, rx) = sync_channel(settings.queue.max(1));
        let w = Writer {
            target: settings.target.clone(),
            retention: settings.retention,
            metrics: metrics.clone(),
            store: first,
            backoff: BACKOFF.0,
            next_try: Instant::now(),
            warned: AtomicBool::new(false),
            cpu_seen: None,
        };
        // The thread ends when the last sender is dropped, after writing
        // what was queued (graceful shutdown flushes before that).
        std::thread::Builder::new()
            .name("riskgate-journal".into())
            .spawn(move || w.run(rx))
            .map_err(|e| JournalError::Database(format!("cannot start the writer: {e}")))?;
        Ok(Journal {
            tx,
            target: settings.target.clone(),
            metrics,
        })
    }

    /// Where the journal lives.
    pub fn target(&self) -> &Target {
        &self.target
    }

    fn enqueue(&self, e: Entry) {
        match self.tx.try_send(Msg::Entry(e)) {
            Ok(()) => self.metrics.journal_queued(1),
            Err(TrySendError::Full(_)) => self.metrics.journal_dropped("queue_full", 1),
            Err(TrySendError::Disconnected(_)) => self.metrics.journal_dropped("stopped", 1),
        }
    }

    /// Queues a decision; never waits (a full queue drops and counts it).
    pub fn decision(&self, e: DecisionEntry) {
        self.enqueue(Entry::Decision(Box::new(e)));
    }

    /// Queues an outcome; never waits.
    pub fn outcome(&self, o: OutcomeEntry) {
        self.enqueue(Entry::Outcome(o));
    }

    async fn control<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> Msg + Send + 'static,
    ) -> Result<T, JournalError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let tx = self.tx.clone();
        // A control message waits for room in the queue (it is never
        // dropped), so it is sent from a blocking thread.
        let sent = tokio::task::spawn_blocking(move || tx.send(make(reply)).is_ok());
        let run = async {
            if !sent.await.unwrap_or(false) {
                return Err(JournalError::Stopped);
            }
            answer.await.unwrap_or(Err(JournalError::Stopped))
        };
        tokio::time::timeout(CONTROL_DEADLINE, run)
            .await
            .unwrap_or(Err(JournalError::Timeout(CONTROL_DEADLINE)))
    }

    /// Erases every journaled decision of `user` (after writing what is
    /// queued, so none of them survives); returns how many.
    pub async fn forget(&self, user: Key) -> Result<u64, JournalError> {
        self.control(move |r| Msg::Forget(user, r)).await
    }

    /// Waits until everything queued so far is written, at most `deadline`.
    pub async fn flush(&self, deadline: Duration) {
        let r = tokio::time::timeout(deadline, self.control(Msg::Flush)).await;
        if !matches!(r, Ok(Ok(()))) {
            tracing::warn!(journal = %self.target, "the journal did not flush in time");
        }
    }
}

struct Writer {
    target: Target,
    retention: Duration,
    metrics: Arc<Metrics>,
    store: Option<Box<dyn JournalStore>>,
    backoff: Duration,
    next_try: Instant,
    warned: AtomicBool,
    /// The thread's CPU seconds when last exported.
    cpu_seen: Option<f64>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        self.cpu_seen = crate::telemetry::process::thread_cpu();
        let mut last_prune: Option<Instant> = None;
        let mut batch: Vec<Entry> = Vec::with_capacity(BATCH);
        loop {
            // Wait for the first record, then let more arrive: the queue is
            // read only after LINGER, so a busy decision path neither wakes
            // this thread per record nor makes it commit a few records at
            // a time.
            let first = match rx.recv_timeout(IDLE) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if matches!(first, Some(Msg::Entry(_))) {
                std::thread::sleep(LINGER);
            }
            let mut next = first;
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Entry(e) => {
                        batch.push(e);
                        if batch.len() >= BATCH {
                            self.write(&mut batch);
                        }
                    }
                    Msg::Forget(user, reply) => {
                        self.write(&mut batch);
                        let r = self
                            .connected()
                            .ok_or(JournalError::Database(
                                "the journal database is unavailable".into(),
                            ))
                            .and_then(|s| s.forget(user));
                        if let Err(e) = &r {
                            self.failed(e);
                        }
                        let _ = reply.send(r);
                    }
                    Msg::Flush(reply) => {
                        self.write(&mut batch);
                        let _ = reply.send(Ok(()));
                    }
                }
                next = rx.try_recv().ok();
            }
            self.write(&mut batch);
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) && self.prune() {
                last_prune = Some(Instant::now());
            }
        }
    }

    /// The connection, reconnecting when the backoff allows.
    fn connected(&mut self) -> Option<&mut Box<dyn JournalStore>> {
        if self.store.is_none() && Instant::now() >= self.next_try {
            match super::open(&self.target) {
                Ok(s) => {
                    tracing::info!(journal = %self.target, "journal database connected");
                    self.warned.store(false, Ordering::Relaxed);
                    self.backoff = BACKOFF.0;
                    self.store = Some(s);
                }
                Err(e) => self.failed(&e),
            }
        }
        self.store.as_mut()
    }

    /// Forgets the connection and waits longer before the next try; warns
    /// once per outage.
    fn failed(&mut self, e: &JournalError) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(journal = %self.target, error = %e, "journal database failed: records are dropped until it answers again");
        }
        self.store = None;
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF.1);
    }

    fn write(&mut self, batch: &mut Vec<Entry>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        self.metrics.journal_queued(-(n as i64));
        let started = Instant::now();
        // Only a real attempt (a connection or a write) moves the backoff:
        // records arriving while it runs are dropped without delaying it.
        match self.connected().map(|s| s.append(batch)) {
            Some(Ok(())) => self.metrics.journal_appended(n, started.elapsed()),
            Some(Err(e)) => {
                self.metrics.journal_dropped("write_failed", n);
                self.failed(&e);
            }
            None => self.metrics.journal_dropped("unavailable", n),
        }
        batch.clear();
        self.charge_cpu();
    }

    /// Exports the CPU this thread used since the last call, so a reader
    /// can tell the writer's share of the process's CPU from the decision
    /// path's.
    fn charge_cpu(&mut self) {
        if let Some(now) = crate::telemetry::process::thread_cpu() {
            let used = now - self.cpu_seen.unwrap_or(now);
            if used > 0.0 {
                self.metrics.journal_writer_cpu(used);
            }
            self.cpu_seen = Some(now);
        }
    }

    /// Applies retention; true when it ran.
    fn prune(&mut self) -> bool {
        let cutoff = UnixMillis(
            UnixMillis::now()
                .0
                .saturating_sub(i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX)),
        );
        let Some(s) = self.connected() else {
            return false;
        };
        match s.prune(cutoff) {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(journal.pruned = n, "journal retention applied");
                }
                self.metrics.journal_pruned(n);
                true
            }
            Err(e) => {
                self.failed(&e);
                false
            }
        }
    }
}
