//! `runnel build DIR`: a plugin's source folder to a `.wasm` component.
//! A Rust crate (Cargo.toml) is built by cargo for `wasm32-wasip2`; a
//! Python folder (app.py) by componentize-py, pinned, in a virtualenv
//! runnel creates on first use, against the contract and the Python SDK
//! this binary carries (so a plugin always matches the host it runs in).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::plugin::contract::Kind;

/// The componentize-py release Python plugins are built with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.0";

/// The contract and the Python SDK, as this binary speaks them.
const WIT: &str = include_str!("../../../wit/plugin.wit");
const PYTHON_SDK: [(&str, &str); 4] = [
    ("__init__.py", include_str!("../../../guest-transforms/python/runnel_sdk/__init__.py")),
    ("event.py", include_str!("../../../guest-transforms/python/runnel_sdk/event.py")),
    ("transform.py", include_str!("../../../guest-transforms/python/runnel_sdk/transform.py")),
    ("aggregate.py", include_str!("../../../guest-transforms/python/runnel_sdk/aggregate.py")),
];

/// Builds the plugin in `dir` (a Rust crate or a Python folder); the
/// `.wasm` it made. `out` is where a Python build writes (default
/// `DIR/plugin.wasm`); cargo puts a Rust build under the crate's target/.
pub fn plugin(dir: &Path, out: Option<&Path>) -> Result<PathBuf> {
    if dir.join("app.py").exists() {
        python(dir, &out.map(Path::to_path_buf).unwrap_or_else(|| dir.join("plugin.wasm")))
    } else if dir.join("Cargo.toml").exists() {
        let wasm = rust(dir)?;
        match out {
            Some(out) => {
                std::fs::copy(&wasm, out).with_context(|| format!("cannot write {}", out.display()))?;
                Ok(out.to_path_buf())
            }
            None => Ok(wasm),
        }
    } else {
        bail!("{} holds neither Cargo.toml (a Rust plugin) nor app.py (a Python plugin)", dir.display())
    }
}

/// Builds the crate in `dir` for wasm32-wasip2 (release); the `.wasm` it made.
pub fn rust(dir: &Path) -> Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    anyhow::ensure!(manifest.exists(), "{} has no Cargo.toml: give the exercise crate's directory", dir.display());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building {} for wasm32-wasip2 …", dir.display());
    let out = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--message-format=json-render-diagnostics", "--manifest-path"])
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo: is the Rust toolchain installed (rustup)?")?;
    if !out.status.success() {
        bail!("the build failed: fix the compiler errors above and try again");
    }
    let manifest = manifest.canonicalize()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().map(Path::new).is_some_and(|p| p == manifest))
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|x| x == "wasm"))
        .context("cargo built no .wasm: the crate needs `crate-type = [\"cdylib\"]` under [lib]")
}

/// Builds the Python plugin in `dir` (its app.py ends with `Transformer =
/// export(...)` or `Aggregator = export(...)`) into `out`.
pub fn python(dir: &Path, out: &Path) -> Result<PathBuf> {
    let app = std::fs::read_to_string(dir.join("app.py")).with_context(|| format!("cannot read {}/app.py", dir.display()))?;
    let exports = |name: &str| app.lines().any(|l| l.strip_prefix(name).is_some_and(|rest| rest.trim_start().starts_with('=')));
    let world = match (exports("Transformer"), exports("Aggregator")) {
        (true, false) => Kind::Transform.world(),
        (false, true) => Kind::Aggregate.world(),
        (true, true) => bail!("{}/app.py exports both a Transformer and an Aggregator: one plugin is one of the two", dir.display()),
        (false, false) => bail!(
            "{}/app.py exports nothing: end it with `Transformer = export(YourTransform)` or `Aggregator = export(YourAggregate)`",
            dir.display()
        ),
    };
    let tool = componentize_py()?;
    // The contract and SDK this binary carries, in a folder of their own.
    let support = tempfile::tempdir().context("cannot make a temporary folder")?;
    std::fs::create_dir_all(support.path().join("wit"))?;
    std::fs::write(support.path().join("wit/plugin.wit"), WIT)?;
    let sdk = support.path().join("python/runnel_sdk");
    std::fs::create_dir_all(&sdk)?;
    for (name, text) in PYTHON_SDK {
        std::fs::write(sdk.join(name), text)?;
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot make {}", parent.display()))?;
    }
    eprintln!("building {} ({world}) with {COMPONENTIZE_PY} …", dir.display());
    let status = Command::new(&tool)
        .arg("-d")
        .arg(support.path().join("wit"))
        .args(["-w", world, "componentize", "-p"])
        .arg(support.path().join("python"))
        .arg("-p")
        .arg(dir)
        .args(["app", "-o"])
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    if !status.success() {
        bail!("the build failed: fix the Python error above (an import, or a syntax error) and try again");
    }
    Ok(out.to_path_buf())
}

/// The componentize-py of runnel's virtualenv (`RUNNEL_PYTHON_VENV`, else
/// `python-venv` in the plugin cache folder), created on first use.
fn componentize_py() -> Result<PathBuf> {
    let venv = match std::env::var_os("RUNNEL_PYTHON_VENV").filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => crate::plugin::runtime::default_cache_dir()
            .context("set RUNNEL_PYTHON_VENV (or HOME): where runnel keeps the virtualenv it builds Python plugins with")?
            .join("python-venv"),
    };
    let tool = venv.join("bin/componentize-py");
    let pinned = COMPONENTIZE_PY.split("==").nth(1).expect("a pinned version");
    let installed = Command::new(&tool).arg("--version").output().ok().filter(|o| o.status.success());
    if installed.is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(pinned)) {
        return Ok(tool);
    }
    eprintln!("creating {} with {COMPONENTIZE_PY} (once; about a minute) …", venv.display());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let made = Command::new(&python).args(["-m", "venv"]).arg(&venv).status();
    anyhow::ensure!(
        made.as_ref().is_ok_and(|s| s.success()),
        "cannot create a virtualenv with `{python} -m venv {}`: install Python 3 with its venv module (or set PYTHON)",
        venv.display()
    );
    let pip = Command::new(venv.join("bin/pip")).args(["install", "-q", "--disable-pip-version-check", COMPONENTIZE_PY]).status();
    anyhow::ensure!(
        pip.as_ref().is_ok_and(|s| s.success()),
        "cannot install {COMPONENTIZE_PY} from PyPI into {}: check the network (or a pip proxy), then try again",
        venv.display()
    );
    Ok(tool)
}
