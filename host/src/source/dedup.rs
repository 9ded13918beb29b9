//! Duplicate removal for an at-least-once source (Pub/Sub): one message,
//! however often it is delivered, is handed to the pipeline once.
//!
//! Pub/Sub delivers a message again when its lease lapses (a paused or
//! starved process stops extending leases), when an ack is lost, or when a
//! publisher retried a publish (then with another message id, which is what
//! the id attribute, Beam's `id_label`, is for). Dataflow removes such
//! duplicates by id for about ten minutes; this does the same:
//!
//! - an id **held** (handed to the pipeline, not acknowledged yet because a
//!   window it fed is still open) is not handed over again: the source adds
//!   the new delivery's ack handle to the held one's, and acknowledges both
//!   once the results are written;
//! - an id **acknowledged** within the last `window` is acknowledged again
//!   at once and not handed over.
//!
//! With a journal file (`[source] dedup_file`), every acknowledged id is
//! appended to it before its acknowledgement is sent, and a run starting on
//! the same file remembers what an earlier run acknowledged within the
//! bound: an acknowledgement lost in a crash (`kill -9` before the client
//! sent it) brings the message back, and it is still recognised. The file
//! is rewritten with only the live ids once it holds twice as many.
//!
//! Ids are kept as 128-bit BLAKE3 digests (an id attribute is the
//! publisher's text: a keyed-free but collision-resistant digest keeps one
//! publisher from making another's events vanish), with the second they
//! were acknowledged: about 48 bytes per remembered id with the table's
//! overhead, at most `max_ids` of them (the oldest go first beyond it, and
//! the effective bound is then shorter: [`DedupStats::oldest_s`] says how
//! long it is).

use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A message's identity: the digest of its id, or of its id attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Id([u64; 2]);

impl Id {
    pub fn of(text: &str) -> Self {
        Self::of_parts(text, None)
    }

    /// A message id with its publish time (µs): the emulator numbers its
    /// message ids from 1 again after a restart, so an id alone could name
    /// another message than one a journal remembers; a redelivery carries
    /// the same publish time, a new message does not.
    pub fn of_parts(text: &str, published_us: Option<i64>) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(text.as_bytes());
        if let Some(t) = published_us {
            hasher.update(b"@");
            hasher.update(&t.to_le_bytes());
        }
        let hash = hasher.finalize();
        let b = hash.as_bytes();
        Id([u64::from_le_bytes(b[..8].try_into().expect("8 bytes")), u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"))])
    }
}

/// What a delivery is, given the ids seen.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not held, not acknowledged within the bound: hand it over.
    New,
    /// Held under this ack token: its results are not written yet.
    Held(u64),
    /// Acknowledged within the bound: its results are written.
    Acknowledged,
}

/// How the duplicate check is doing, for `runnel status` and `/metrics`.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct DedupStats {
    /// Deliveries of a message held at the time (lease lapsed, redelivered).
    pub duplicates_held: u64,
    /// Deliveries of a message acknowledged within the bound.
    pub duplicates_acknowledged: u64,
    /// Ids held now (delivered, results not yet written).
    pub ids_held: u64,
    /// Acknowledged ids remembered now.
    pub ids_remembered: u64,
    /// Age in seconds of the oldest remembered id: how far back a
    /// redelivery is recognised right now (`window_s` once that long has
    /// passed, less when `max_ids` cut it short).
    pub oldest_s: f64,
    /// The configured bound, seconds.
    pub window_s: f64,
    /// Remembered ids dropped before their time because of `max_ids`.
    pub evicted_early: u64,
}

impl DedupStats {
    /// All duplicates dropped.
    pub fn dropped(&self) -> u64 {
        self.duplicates_held + self.duplicates_acknowledged
    }
}

/// Held and recently acknowledged ids.
pub struct Dedup {
    held: HashMap<Id, u64>,
    recent: VecDeque<(Id, Instant)>,
    remembered: HashSet<Id>,
    window: Duration,
    max_ids: usize,
    stats: DedupStats,
    journal: Option<Journal>,
}

/// One journal record: the id's 16 bytes, then the Unix time (ms, little
/// endian) of its acknowledgement.
const RECORD: usize = 24;

/// The acknowledged ids on disk.
struct Journal {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
    /// Records in the file.
    records: usize,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Journal {
    /// Opens (or creates) the journal; returns it with the records younger
    /// than `window`, oldest first, each with its age.
    fn open(path: &Path, window: Duration) -> Result<(Self, Vec<(Id, Duration)>)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create the folder of [source] dedup_file {}", path.display()))?;
        }
        crate::files::check_output(path, "[source] dedup_file")?;
        let mut bytes = Vec::new();
        match std::fs::File::open(path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes).with_context(|| format!("cannot read [source] dedup_file {}", path.display()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot open [source] dedup_file {}", path.display())),
        }
        let now = unix_ms(SystemTime::now());
        let live: Vec<(Id, Duration)> = bytes
            .chunks_exact(RECORD) // a record cut short by a crash is dropped
            .filter_map(|r| {
                let word = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().expect("8 bytes"));
                let age = Duration::from_millis(now.saturating_sub(word(16)));
                (age < window).then_some((Id([word(0), word(8)]), age))
            })
            .collect();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write [source] dedup_file {}", path.display()))?;
        Ok((Self { path: path.to_path_buf(), out: BufWriter::new(file), records: bytes.len() / RECORD }, live))
    }

    fn append(&mut self, id: Id, at: SystemTime) -> std::io::Result<()> {
        self.records += 1;
        self.out.write_all(&record(id, at))
    }

    /// Writes the file anew with only `live` (atomically: a new file renamed over it).
    fn rewrite(&mut self, live: &VecDeque<(Id, Instant)>, now: Instant) -> std::io::Result<()> {
        self.out.flush()?;
        let wall = SystemTime::now();
        let tmp = self.path.with_extension("rewrite");
        let mut out = BufWriter::new(std::fs::File::create(&tmp)?);
        for (id, at) in live {
            out.write_all(&record(*id, wall.checked_sub(now.saturating_duration_since(*at)).unwrap_or(wall)))?;
        }
        out.flush()?;
        drop(out);
        std::fs::rename(&tmp, &self.path)?;
        self.out = BufWriter::new(std::fs::OpenOptions::new().append(true).open(&self.path)?);
        self.records = live.len();
        Ok(())
    }
}

/// `id`, acknowledged at `at`, as a journal record.
fn record(id: Id, at: SystemTime) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..8].copy_from_slice(&id.0[0].to_le_bytes());
    r[8..16].copy_from_slice(&id.0[1].to_le_bytes());
    r[16..].copy_from_slice(&unix_ms(at).to_le_bytes());
    r
}

impl Dedup {
    pub fn new(window: Duration, max_ids: usize) -> Self {
        Self {
            held: HashMap::new(),
            recent: VecDeque::new(),
            remembered: HashSet::new(),
            window,
            max_ids,
            stats: DedupStats { window_s: window.as_secs_f64(), ..DedupStats::default() },
            journal: None,
        }
    }

    /// Keeps acknowledged ids in `path` too, and remembers those an earlier
    /// run wrote there within the bound.
    pub fn with_journal(mut self, path: &Path) -> Result<Self> {
        let (journal, live) = Journal::open(path, self.window)?;
        let now = Instant::now();
        for (id, age) in live {
            if self.remembered.insert(id) {
                self.recent.push_back((id, now.checked_sub(age).unwrap_or(now)));
            }
        }
        self.journal = Some(journal);
        Ok(self)
    }

    /// Classifies a delivery, counting duplicates.
    pub fn check(&mut self, id: Id, now: Instant) -> Seen {
        self.expire(now);
        if let Some(&token) = self.held.get(&id) {
            self.stats.duplicates_held += 1;
            Seen::Held(token)
        } else if self.remembered.contains(&id) {
            self.stats.duplicates_acknowledged += 1;
            Seen::Acknowledged
        } else {
            Seen::New
        }
    }

    /// A new message handed over under `token`.
    pub fn hold(&mut self, id: Id, token: u64) {
        self.held.insert(id, token);
    }

    /// The message's results are written and it is acknowledged: remember
    /// it for the bound.
    pub fn acknowledged(&mut self, id: Id, now: Instant) {
        self.held.remove(&id);
        if self.window.is_zero() || self.max_ids == 0 {
            return;
        }
        if self.remembered.insert(id) {
            self.recent.push_back((id, now));
            if let Some(j) = &mut self.journal {
                if let Err(e) = j.append(id, SystemTime::now()) {
                    self.journal_failed(e);
                }
            }
        }
        while self.recent.len() > self.max_ids {
            let (old, _) = self.recent.pop_front().expect("longer than max_ids");
            self.remembered.remove(&old);
            self.stats.evicted_early += 1;
        }
    }

    /// Makes every id passed to [`Dedup::acknowledged`] durable (against a
    /// crash of this process): call before sending their acknowledgements.
    pub fn sync(&mut self, now: Instant) {
        if self.journal.is_none() {
            return;
        }
        self.expire(now);
        let Some(j) = &mut self.journal else { return };
        let result = if j.records > 2 * self.recent.len().max(1024) { j.rewrite(&self.recent, now) } else { j.out.flush() };
        if let Err(e) = result {
            self.journal_failed(e);
        }
    }

    /// A journal that cannot be written is given up with a warning: the ids
    /// are still remembered in memory, only not across a crash.
    fn journal_failed(&mut self, e: std::io::Error) {
        if let Some(j) = self.journal.take() {
            tracing::warn!(
                "cannot write [source] dedup_file {}: {e}; acknowledged ids are remembered in memory only from now on \
                 (a message whose acknowledgement a crash loses will be counted again)",
                j.path.display()
            );
        }
    }

    /// The message was handed back unacknowledged (a stop): a later
    /// delivery is new again.
    pub fn released(&mut self, id: Id) {
        self.held.remove(&id);
    }

    /// Forgets acknowledged ids older than the bound.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(id, at)) = self.recent.front() {
            if now.saturating_duration_since(at) < self.window {
                break;
            }
            self.recent.pop_front();
            self.remembered.remove(&id);
        }
    }

    pub fn stats(&self, now: Instant) -> DedupStats {
        DedupStats {
            ids_held: self.held.len() as u64,
            ids_remembered: self.recent.len() as u64,
            oldest_s: self.recent.front().map(|(_, at)| now.saturating_duration_since(*at).as_secs_f64()).unwrap_or(0.0),
            ..self.stats.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_id_is_a_duplicate_of_its_token_and_an_acknowledged_one_for_the_bound() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(600), 1000);
        let (a, b) = (Id::of("1"), Id::of("2"));
        assert_eq!(d.check(a, t0), Seen::New);
        d.hold(a, 7);
        assert_eq!(d.check(a, t0), Seen::Held(7));
        assert_eq!(d.check(b, t0), Seen::New, "another id is new");
        d.acknowledged(a, t0);
        assert_eq!(d.check(a, t0 + Duration::from_secs(599)), Seen::Acknowledged);
        assert_eq!(d.check(a, t0 + Duration::from_secs(600)), Seen::New, "forgotten once the bound has passed");
        let s = d.stats(t0 + Duration::from_secs(600));
        assert_eq!((s.duplicates_held, s.duplicates_acknowledged, s.ids_remembered, s.ids_held), (1, 1, 0, 0));
    }

    #[test]
    fn a_released_id_is_new_again() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(600), 1000);
        let a = Id::of("a");
        d.hold(a, 1);
        d.released(a);
        assert_eq!(d.check(a, t0), Seen::New, "handed back unacknowledged: the next delivery must be counted");
    }

    #[test]
    fn a_journal_carries_acknowledged_ids_into_the_next_run_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/ids");
        let t0 = Instant::now();
        let mut first = Dedup::new(Duration::from_secs(600), 1000).with_journal(&path).unwrap();
        for (i, n) in ["a", "b"].iter().enumerate() {
            first.hold(Id::of(n), i as u64);
            first.acknowledged(Id::of(n), t0);
        }
        first.sync(t0);
        // Crashed: no drop, no flush beyond what sync did.
        std::mem::forget(first);
        let mut second = Dedup::new(Duration::from_secs(600), 1000).with_journal(&path).unwrap();
        assert_eq!(second.check(Id::of("a"), Instant::now()), Seen::Acknowledged, "remembered across the restart");
        assert_eq!(second.check(Id::of("c"), Instant::now()), Seen::New);
        // A run with a shorter bound forgets them (they are older than it).
        let mut third = Dedup::new(Duration::ZERO, 1000).with_journal(&path).unwrap();
        assert_eq!(third.check(Id::of("b"), Instant::now()), Seen::New);
    }

    #[test]
    fn a_journal_is_rewritten_with_the_live_ids_once_it_holds_twice_as_many() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids");
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(10), 100_000).with_journal(&path).unwrap();
        for i in 0..3000 {
            d.acknowledged(Id::of(&i.to_string()), t0);
        }
        d.sync(t0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3000 * RECORD as u64, "not rewritten while all are live");
        // Ten seconds later those are past the bound; 100 new ones.
        let t1 = t0 + Duration::from_secs(10);
        for i in 0..100 {
            d.acknowledged(Id::of(&format!("new {i}")), t1);
        }
        d.sync(t1);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 100 * RECORD as u64, "only the live ids are kept");
        let mut again = Dedup::new(Duration::from_secs(600), 100_000).with_journal(&path).unwrap();
        assert_eq!(again.check(Id::of("new 7"), Instant::now()), Seen::Acknowledged);
        assert_eq!(again.check(Id::of("7"), Instant::now()), Seen::New);
    }

    #[test]
    fn max_ids_drops_the_oldest_first_and_says_so() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(600), 3);
        for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
            let id = Id::of(n);
            d.hold(id, i as u64);
            d.acknowledged(id, t0 + Duration::from_secs(i as u64));
        }
        let now = t0 + Duration::from_secs(4);
        assert_eq!(d.check(Id::of("a"), now), Seen::New, "the oldest went first");
        assert_eq!(d.check(Id::of("b"), now), Seen::Acknowledged);
        let s = d.stats(now);
        assert_eq!((s.ids_remembered, s.evicted_early, s.oldest_s), (3, 1, 3.0));
    }

    #[test]
    fn a_zero_bound_remembers_nothing_acknowledged_but_still_knows_what_it_holds() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::ZERO, 1000);
        let a = Id::of("a");
        d.hold(a, 3);
        assert_eq!(d.check(a, t0), Seen::Held(3));
        d.acknowledged(a, t0);
        assert_eq!(d.check(a, t0), Seen::New);
        assert_eq!(d.stats(t0).ids_remembered, 0);
    }
}
