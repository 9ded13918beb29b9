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
//! - Cranelift's compiled *functions* are kept there too ([`FunctionCache`]),
//!   in packs authenticated the same way, so a plugin never compiled before
//!   reuses every function an earlier one shared with it: every Python
//!   plugin carries the same CPython, and only its own few functions are
//!   new.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

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

/// Cranelift's compiled functions, by the hash of their input (wasmtime's
/// incremental compilation): in memory for the process, and, once
/// [attached](Self::attach) to the artifact cache, in packs there
/// (`functions-ENGINE-ID.pack`), read on the first lookup and written after
/// each compilation that made new ones ([`persist`](Self::persist)).
#[derive(Debug, Default)]
pub struct FunctionCache {
    functions: Mutex<Functions>,
    /// The artifact cache and the engine's compatibility hash (packs of
    /// another engine are never read).
    disk: OnceLock<(ArtifactCache, String)>,
}

/// Compiled functions by key, and what is known of them.
#[derive(Debug, Default)]
struct Functions {
    code: HashMap<Vec<u8>, Vec<u8>>,
    bytes: usize,
    /// Keys compiled here and not yet in a pack.
    fresh: Vec<Vec<u8>>,
    /// The packs read (all of them, once the first lookup has read them).
    packs: Option<Vec<PathBuf>>,
    /// Lookups answered, for tests and logs.
    hits: u64,
}

/// What the function cache may hold; past it, new functions are not kept.
const FUNCTION_CACHE_BYTES: usize = 256 << 20;
/// Packs past this many are merged into one when the next is written.
const MAX_PACKS: usize = 16;
const PACK_MAGIC: &[u8] = b"runnel-functions/1\n";

impl Functions {
    fn add(&mut self, key: Vec<u8>, value: Vec<u8>) -> bool {
        if self.bytes + key.len() + value.len() > FUNCTION_CACHE_BYTES {
            return false;
        }
        self.bytes += key.len() + value.len();
        self.code.insert(key, value);
        true
    }
}

impl FunctionCache {
    /// Keeps the functions in `cache` from now on, for an engine whose
    /// compatibility hash is `engine`.
    pub fn attach(&self, cache: ArtifactCache, engine: String) {
        let _ = self.disk.set((cache, engine));
    }

    /// Lookups answered so far.
    pub fn hits(&self) -> u64 {
        self.functions.lock().map_or(0, |f| f.hits)
    }

    fn pack_prefix(engine: &str) -> String {
        format!("functions-{engine}-")
    }

    /// Reads every trusted pack of this engine, once; a pack whose tag is
    /// wrong is skipped (and replaced by the next merge).
    fn load(&self, functions: &mut Functions) {
        if functions.packs.is_some() {
            return;
        }
        let mut packs = Vec::new();
        if let Some((cache, engine)) = self.disk.get() {
            let prefix = Self::pack_prefix(engine);
            let names = std::fs::read_dir(cache.dir()).into_iter().flatten().flatten().map(|e| e.path());
            for path in
                names.filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".pack")))
            {
                match cache.read(&path) {
                    Ok(Some(bytes)) => {
                        for (key, value) in entries(&bytes) {
                            functions.add(key.to_vec(), value.to_vec());
                        }
                    }
                    Ok(None) => continue,
                    Err(e) => tracing::warn!(path = %path.display(), "untrusted compiled-function pack, not used: {e:#}"),
                }
                packs.push(path);
            }
        }
        functions.packs = Some(packs);
    }

    /// Writes the functions compiled since the last call as one pack (all
    /// of them, replacing the others, once there are too many packs).
    pub fn persist(&self) -> Result<()> {
        let Some((cache, engine)) = self.disk.get() else { return Ok(()) };
        let mut functions = self.functions.lock().map_err(|_| anyhow::anyhow!("the function cache lock is poisoned"))?;
        if functions.fresh.is_empty() {
            return Ok(());
        }
        let old = functions.packs.clone().unwrap_or_default();
        let merge = old.len() >= MAX_PACKS;
        let keys: Vec<&Vec<u8>> = if merge { functions.code.keys().collect() } else { functions.fresh.iter().collect() };
        let mut pack = PACK_MAGIC.to_vec();
        for key in keys {
            let Some(value) = functions.code.get(key) else { continue };
            for part in [key.as_slice(), value.as_slice()] {
                pack.extend_from_slice(&(part.len() as u32).to_le_bytes());
                pack.extend_from_slice(part);
            }
        }
        let id = &blake3::hash(&pack).to_hex()[..16];
        let path = cache.dir().join(format!("{}{id}.pack", Self::pack_prefix(engine)));
        cache.write(&path, &pack)?;
        functions.fresh.clear();
        let mut packs = if merge {
            for stale in old.iter().filter(|p| **p != path) {
                let _ = std::fs::remove_file(stale);
                let _ = std::fs::remove_file(ArtifactCache::tag_path(stale));
            }
            Vec::new()
        } else {
            old
        };
        packs.push(path);
        functions.packs = Some(packs);
        Ok(())
    }
}

/// A pack's (key, value) entries; a malformed tail ends them.
fn entries(pack: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = pack.strip_prefix(PACK_MAGIC).unwrap_or_default();
    let mut part = move || -> Option<&[u8]> {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let bytes = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some(bytes)
    };
    std::iter::from_fn(move || Some((part()?, part()?)))
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
        let mut functions = self.functions.lock().ok()?;
        self.load(&mut functions);
        let code = functions.code.get(key).cloned()?;
        functions.hits += 1;
        Some(std::borrow::Cow::Owned(code))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let Ok(mut functions) = self.functions.lock() else { return false };
        let kept = functions.add(key.to_vec(), value);
        if kept {
            functions.fresh.push(key.to_vec());
        }
        kept
    }
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
    fn compiled_functions_outlive_the_process_and_a_changed_pack_is_not_used() {
        use wasmtime::CacheStore as _;
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let functions = FunctionCache::default();
            functions.attach(ArtifactCache::open(&dir.path().join("cache")).unwrap(), "engine1".into());
            functions
        };
        let first = open();
        assert!(first.get(b"f").is_none());
        assert!(first.insert(b"f", b"code of f".to_vec()));
        first.persist().unwrap();
        assert!(first.insert(b"g", b"code of g".to_vec()));
        first.persist().unwrap();
        // Another process finds both; another engine finds neither.
        let second = open();
        assert_eq!(second.get(b"f").as_deref(), Some(&b"code of f"[..]));
        assert_eq!(second.get(b"g").as_deref(), Some(&b"code of g"[..]));
        assert_eq!(second.hits(), 2);
        let other = FunctionCache::default();
        other.attach(ArtifactCache::open(&dir.path().join("cache")).unwrap(), "engine2".into());
        assert!(other.get(b"f").is_none());
        // A pack changed behind runnel's back is not used.
        for entry in std::fs::read_dir(dir.path().join("cache")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "pack") {
                let mut bytes = std::fs::read(&path).unwrap();
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
                std::fs::write(&path, bytes).unwrap();
            }
        }
        let third = open();
        assert!(third.get(b"f").is_none() && third.get(b"g").is_none());
    }

    #[test]
    fn too_many_packs_are_merged_into_one() {
        use wasmtime::CacheStore as _;
        let dir = tempfile::tempdir().unwrap();
        let functions = FunctionCache::default();
        functions.attach(ArtifactCache::open(dir.path()).unwrap(), "e".into());
        let packs = || {
            std::fs::read_dir(dir.path()).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "pack")).count()
        };
        for i in 0..=MAX_PACKS {
            assert!(functions.get(&[i as u8]).is_none());
            functions.insert(&[i as u8], vec![i as u8; 8]);
            functions.persist().unwrap();
        }
        assert_eq!(packs(), 1, "merged");
        let again = FunctionCache::default();
        again.attach(ArtifactCache::open(dir.path()).unwrap(), "e".into());
        assert!((0..=MAX_PACKS).all(|i| again.get(&[i as u8]).as_deref() == Some(&vec![i as u8; 8][..])));
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
