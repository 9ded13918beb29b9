//! The file source: NDJSON, one event per line, `.gz` decompressed on the
//! fly. Blank lines are skipped (but still counted for line numbers).

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use super::{now_us, Origin, Source, SourceBatch};
use crate::batch::EventBatch;

pub struct FileSource {
    reader: Box<dyn BufRead + Send>,
    name: Arc<str>,
    line: u64,
    buf: Vec<u8>,
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
        Self { reader, name: name.into().into(), line: 0, buf: Vec::new() }
    }
}

impl Source for FileSource {
    fn next_batch(&mut self, max: usize) -> Result<Option<SourceBatch>> {
        let mut events = EventBatch::default();
        let mut first = None;
        while events.len() < max {
            self.buf.clear();
            let n =
                self.reader.read_until(b'\n', &mut self.buf).with_context(|| format!("reading {} after line {}", self.name, self.line))?;
            if n == 0 {
                break;
            }
            self.line += 1;
            let line = trim_line(&self.buf);
            if line.is_empty() {
                // A blank line ends a batch so line numbers stay consecutive.
                if first.is_some() {
                    break;
                }
                continue;
            }
            first.get_or_insert(self.line);
            events.push(line);
        }
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
        let data = b"{\"a\":1}\n{\"a\":2}\r\n\n{\"a\":3}\n".to_vec();
        let mut src = FileSource::from_reader("t.ndjson", std::io::Cursor::new(data), false);
        let b = src.next_batch(10).unwrap().unwrap();
        assert_eq!(b.events.len(), 2);
        assert_eq!(b.events.get(1), b"{\"a\":2}");
        let b2 = src.next_batch(10).unwrap().unwrap();
        assert_eq!(b2.provenance(0), "t.ndjson:4");
        assert!(src.next_batch(10).unwrap().is_none());
    }
}
