//! The files a pipeline file or a command names, opened so that a wrong one
//! costs an error that names it, never a hang or the machine's memory: a
//! plugin is read only from a regular file of bounded size (`/dev/zero`
//! grew to 5.8 GB before, a FIFO hung the start), and an output file is
//! refused when it is a FIFO or a socket (opening one for writing waits for
//! a reader that never comes).

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// The largest plugin file read (a Rust component is about 100 KB to 2 MB,
/// a Python one about 19 MB).
pub const MAX_PLUGIN_BYTES: u64 = 64 << 20;

/// Reads `path`, which must be a regular file of at most `limit` bytes;
/// `what` names it in errors ("plugin", ...).
pub fn read_regular(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {what} {}: check the path", path.display()))?;
    if !meta.is_file() {
        bail!("{what} {} is not a regular file ({}): give the path of a file", path.display(), kind(&meta));
    }
    if meta.len() > limit {
        bail!("{what} {} is {} bytes, more than the limit of {} MiB: is it the right file?", path.display(), meta.len(), limit >> 20);
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {what} {}", path.display()))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take`: a file that grows while it is read stops at the limit too.
    file.take(limit + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!("{what} {} grew past the limit of {} MiB while it was read", path.display(), limit >> 20);
    }
    Ok(bytes)
}

/// Refuses an output path that is a FIFO or a socket (a regular file, a
/// missing one, or a character device such as `/dev/null` is fine); `what`
/// names it in the error ("the dead-letter file", ...).
pub fn check_output(path: &Path, what: &str) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(path) else { return Ok(()) };
    let t = meta.file_type();
    if t.is_fifo() || t.is_socket() || t.is_dir() || t.is_block_device() {
        bail!("{what} {} is {}, not a file runnel can write to: give the path of a regular file", path.display(), kind(&meta));
    }
    Ok(())
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&path).status().unwrap().success());
        path
    }

    #[test]
    fn a_plugin_is_read_only_from_a_regular_file_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let e = |p: &Path, limit| format!("{:#}", read_regular(p, "plugin", limit).unwrap_err());
        // A FIFO would block the read for ever; /dev/zero would never end.
        assert!(e(&fifo(dir.path()), 1 << 20).contains("is not a regular file (a FIFO)"));
        assert!(e(Path::new("/dev/zero"), 1 << 20).contains("/dev/zero is not a regular file (a character device)"));
        assert!(e(dir.path(), 1 << 20).contains("(a directory)"));
        // A sparse file of 2 GB is refused by its size, before any read.
        let big = dir.path().join("big.wasm");
        std::fs::File::create(&big).unwrap().set_len(2 << 30).unwrap();
        assert!(e(&big, 64 << 20).contains("is 2147483648 bytes, more than the limit of 64 MiB"), "{}", e(&big, 64 << 20));
        assert!(e(&dir.path().join("missing.wasm"), 1).contains("missing.wasm: check the path"));
        let small = dir.path().join("small.wasm");
        std::fs::write(&small, b"\0asm").unwrap();
        assert_eq!(read_regular(&small, "plugin", 4).unwrap(), b"\0asm");
    }

    #[test]
    fn an_output_may_be_a_file_or_dev_null_but_not_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let e = format!("{:#}", check_output(&fifo(dir.path()), "the dead-letter file").unwrap_err());
        assert!(e.contains("the dead-letter file") && e.contains("is a FIFO"), "{e}");
        assert!(check_output(Path::new("/dev/null"), "x").is_ok());
        assert!(check_output(&dir.path().join("new.ndjson"), "x").is_ok());
    }
}
