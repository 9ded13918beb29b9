//! The file source: NDJSON, one event per line, `.gz` decompressed on the
//! fly. Blank lines are skipped (but still counted for line numbers).

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use super::{now_us, Origin, Source, SourceBatch};
use crate::batch::EventBatch;

pub struct FileSource {
    reader: Box<dyn BufRead + Send>,
    name: Arc<str>,
    line: u64,
    /// The largest batch so far, in bytes: the next one is allocated at
    /// that size once, instead of growing (and copying) as it fills.
    last_bytes: usize,
}

impl FileSource {
    pub fn open(path: &Path) -> Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open the source file {}: check [source] path", path.display()))?;
        let gz = path.extension().is_some_and(|e| e == "gz");
        Ok(Self::from_reader(path.display().to_string(), file, gz))
    }

    /// Reads NDJSON (gzip-compressed if `gz`) from any reader.
    pub fn from_reader(name: impl Into<String>, reader: impl Read + Send + 'static, gz: bool) -> Self {
        let reader: Box<dyn BufRead + Send> = if gz {
            Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(reader)))
        } else {
            Box::new(BufReader::with_capacity(1 << 16, reader))
        };
        Self { reader, name: name.into().into(), line: 0, last_bytes: 0 }
    }
}

impl Source for FileSource {
    fn next_batch(&mut self, max: usize) -> Result<Option<SourceBatch>> {
        let mut events = EventBatch::with_capacity(self.last_bytes, max);
        let mut first = None;
        while events.len() < max {
            // Lines are read straight into the batch: one copy per event.
            let start = events.bytes.len();
            let n = read_line(&mut *self.reader, &mut events.bytes)
                .with_context(|| format!("reading {} after line {}", self.name, self.line))?;
            if n == 0 {
                break;
            }
            self.line += 1;
            let end = start + trim_line(&events.bytes[start..]).len();
            events.bytes.truncate(end);
            if end == start {
                // A blank line ends a batch so line numbers stay consecutive.
                if first.is_some() {
                    break;
                }
                continue;
            }
            first.get_or_insert(self.line);
            events.seal();
        }
        self.last_bytes = self.last_bytes.max(events.bytes.len());
        let Some(first) = first else { return Ok(None) };
        let now = now_us();
        Ok(Some(SourceBatch {
            publish_times: vec![now; events.len()],
            events,
            origin: Origin::Lines { file: self.name.clone(), first },
            ack_tokens: Vec::new(),
            attributes: Vec::new(),
        }))
    }
}

/// Appends the next line of `reader` (with its `\n`, if it has one) to
/// `out`; the bytes read, 0 at the end. What `BufRead::read_until(b'\n')`
/// does, with the `memchr` crate's SIMD search in place of std's
/// word-at-a-time one: finding line ends took a twentieth of a `runnel run`
/// on the benchmark's file (perf, BENCHMARKS.md).
fn read_line(reader: &mut dyn BufRead, out: &mut Vec<u8>) -> io::Result<usize> {
    let mut read = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (used, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), available.is_empty()),
        };
        out.extend_from_slice(&available[..used]);
        reader.consume(used);
        read += used;
        if done {
            return Ok(read);
        }
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && (line[end - 1] == b'\n' || line[end - 1] == b'\r') {
        end -= 1;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_batches_with_line_numbers_and_skips_blank_lines() {
        let data = b"\n{\"a\":1}\n{\"a\":2}\r\n\n{\"a\":3}\n\r\n{\"a\":4}".to_vec();
        let mut src = FileSource::from_reader("t.ndjson", std::io::Cursor::new(data), false);
        let b = src.next_batch(10).unwrap().unwrap();
        assert_eq!(b.events.len(), 2);
        assert_eq!(b.events.get(1), b"{\"a\":2}");
        // Lines are read into the batch: no line ends or blank lines left in it.
        assert_eq!(b.events.bytes, b"{\"a\":1}{\"a\":2}");
        assert_eq!(b.provenance(0), "t.ndjson:2");
        let b2 = src.next_batch(10).unwrap().unwrap();
        assert_eq!(b2.provenance(0), "t.ndjson:5");
        assert_eq!(b2.events.len(), 1, "a blank line ends a batch");
        let b3 = src.next_batch(10).unwrap().unwrap();
        assert_eq!((b3.provenance(0).as_str(), b3.events.bytes.as_slice()), ("t.ndjson:7", b"{\"a\":4}".as_slice()));
        assert!(src.next_batch(10).unwrap().is_none());
    }

    #[test]
    fn lines_are_read_as_read_until_reads_them_across_buffer_edges() {
        let text: &[u8] = b"{\"a\":1}\n\n{\"long\":\"abcdefghijklmnopqrstuvwxyz\"}\r\nx\ny";
        for capacity in [1, 2, 3, 7, 64] {
            let (mut ours, mut std_reader) = (BufReader::with_capacity(capacity, text), BufReader::with_capacity(capacity, text));
            loop {
                let (mut a, mut b) = (b"kept".to_vec(), b"kept".to_vec());
                let n = read_line(&mut ours, &mut a).unwrap();
                assert_eq!(n, std_reader.read_until(b'\n', &mut b).unwrap(), "capacity {capacity}");
                assert_eq!(a, b, "capacity {capacity}");
                if n == 0 {
                    break;
                }
            }
        }
    }
}
