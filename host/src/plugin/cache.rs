//! The on-disk cache of precompiled plugins, kept so that what it holds can
//! be trusted: a precompiled artifact is native code that wasmtime maps and
//! runs *outside* the sandbox, so whoever can change one can run anything
//! as runnel.
//!
//! - The folder is private to the user: created with mode 0700, and refused
//!   (the cache is then off, with a warning) when it belongs to someone else
//!   or others can write to it.
//! - Every artifact is authenticated before it is deserialised: a keyed
//!   BLAKE3 of its bytes is stored apart from it (`NAME.cwasm.mac`), under a
//!   random key in `cache.key` (mode 0600). An artifact whose tag is missing
//!   or wrong is not loaded: the plugin is compiled again and the artifact
//!   rewritten.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A private cache folder and the key its artifacts are tagged with.
#[derive(Clone, Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    key: [u8; 32],
}

impl ArtifactCache {
    /// Opens (creating) the cache in `dir`, or says why it cannot be trusted.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create the plugin cache {}", dir.display()))?;
        }
        let meta = std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        let me = std::fs::metadata("/proc/self").map(|m| m.uid()).context("cannot tell which user runs runnel")?;
        if meta.uid() != me {
            bail!(
                "the plugin cache {} belongs to another user (uid {}): set RUNNEL_CACHE_DIR to a folder of your own",
                dir.display(),
                meta.uid()
            );
        }
        if meta.permissions().mode() & 0o022 != 0 {
            bail!(
                "others can write to the plugin cache {} (mode {:o}): precompiled plugins run as native code, so it must \
                 be private (chmod 700 it, or set RUNNEL_CACHE_DIR to a private folder)",
                dir.display(),
                meta.permissions().mode() & 0o777
            );
        }
        let key = key(&dir.join("cache.key"))?;
        Ok(Self { dir: dir.to_path_buf(), key })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn tag_path(artifact: &Path) -> PathBuf {
        let mut name = artifact.as_os_str().to_owned();
        name.push(".mac");
        PathBuf::from(name)
    }

    /// The artifact's bytes, if it is there and its tag proves runnel wrote
    /// it; `Err` says why an artifact that is there is not trusted.
    pub fn read(&self, artifact: &Path) -> Result<Option<Vec<u8>>> {
        if !artifact.exists() {
            return Ok(None);
        }
        // Read into memory rather than mapped, so a file changed under a
        // running pipeline cannot fault it, and what is checked is what runs.
        let bytes = std::fs::read(artifact).with_context(|| format!("cannot read {}", artifact.display()))?;
        let tag = std::fs::read_to_string(Self::tag_path(artifact)).unwrap_or_default();
        let expected = blake3::keyed_hash(&self.key, &bytes);
        match blake3::Hash::from_hex(tag.trim()) {
            // blake3::Hash compares in constant time.
            Ok(t) if t == expected => Ok(Some(bytes)),
            _ => bail!("its authentication tag is missing or wrong (changed since runnel wrote it?)"),
        }
    }

    /// Writes an artifact and its tag atomically (temporary files renamed
    /// into place), so a concurrent reader never sees half of one.
    pub fn write(&self, artifact: &Path, bytes: &[u8]) -> Result<()> {
        let tag = blake3::keyed_hash(&self.key, bytes).to_hex().to_string();
        for (path, content) in [(Self::tag_path(artifact), tag.as_bytes()), (artifact.to_path_buf(), bytes)] {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, content).with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("cannot rename {}", tmp.display()))?;
        }
        Ok(())
    }
}

/// The cache's key: read, or made once (32 random bytes, mode 0600).
fn key(path: &Path) -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    match std::fs::File::open(path) {
        Ok(mut f) => {
            if f.metadata()?.permissions().mode() & 0o077 != 0 {
                bail!("the plugin cache key {} is readable by others: delete it (a new one is made)", path.display());
            }
            f.read_exact(&mut key).with_context(|| format!("the plugin cache key {} is damaged: delete it", path.display()))?;
        }
        Err(_) => {
            std::fs::File::open("/dev/urandom")
                .and_then(|mut r| r.read_exact(&mut key))
                .context("cannot read random bytes for the plugin cache key")?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create the plugin cache key {}", path.display()))?;
            f.write_all(&key)?;
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_artifact_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::open(&dir.path().join("cache")).unwrap();
        let artifact = cache.dir().join("x.cwasm");
        cache.write(&artifact, b"native code").unwrap();
        assert_eq!(cache.read(&artifact).unwrap().as_deref(), Some(&b"native code"[..]));
        std::fs::write(&artifact, b"evil code!!").unwrap();
        assert!(cache.read(&artifact).is_err());
        // A reopened cache uses the same key.
        cache.write(&artifact, b"native code").unwrap();
        let again = ArtifactCache::open(cache.dir()).unwrap();
        assert!(again.read(&artifact).unwrap().is_some());
        let mode = std::fs::metadata(cache.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_folder_others_can_write_to_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = ArtifactCache::open(&open).unwrap_err().to_string();
        assert!(e.contains("others can write"), "{e}");
    }
}
