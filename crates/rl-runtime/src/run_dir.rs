//! The run directory, `runs/<name>/`: the resolved `config.toml`, TensorBoard event files,
//! `metrics.jsonl`, sample generations and checkpoints of one run. Nothing in it is ever
//! overwritten: a new run refuses a used directory, a resumed run keeps the config it replaces.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::SystemTime,
};

/// File name of the resolved config inside a run directory.
pub const CONFIG_FILE: &str = "config.toml";

/// Why a run directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// A new run was pointed at a directory that already holds something.
    #[error(
        "run directory {} is not empty{}. Pass --resume to continue that run, or start a new one elsewhere with --run-dir DIR or --set run.name=NAME",
        path.display(),
        if path.join(CONFIG_FILE).exists() { " (it holds an earlier run)" } else { "" }
    )]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// `--resume` was asked for, but there is no run there.
    #[error("nothing to resume in {}: it has no {CONFIG_FILE}. Drop --resume to start a new run, or point --run-dir at an existing run", path.display())]
    NothingToResume {
        /// The directory.
        path: PathBuf,
    },
    /// `--resume` without saying which run.
    #[error(
        "--resume needs to know which run to continue: pass --run-dir runs/<name> or --set run.name=<name>"
    )]
    ResumeWhich,
    /// The file system refused.
    #[error("cannot {action} {}: {source}. Choose a writable place with --run-dir DIR or run.runs_dir", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// An opened run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Opens `path` for a new run (it must be absent or empty) or, with `resume`, for continuing
    /// the run already there.
    pub fn open(path: &Path, resume: bool) -> Result<Self, RunDirError> {
        let io_err = |action, source| RunDirError::Io {
            action,
            path: path.to_owned(),
            source,
        };
        if resume {
            if !path.join(CONFIG_FILE).is_file() {
                return Err(RunDirError::NothingToResume {
                    path: path.to_owned(),
                });
            }
        } else if path.exists() {
            let mut entries = fs::read_dir(path).map_err(|e| io_err("read run directory", e))?;
            if entries.next().is_some() {
                return Err(RunDirError::NotEmpty {
                    path: path.to_owned(),
                });
            }
        }
        fs::create_dir_all(path).map_err(|e| io_err("create run directory", e))?;
        // Prove writability now rather than after minutes of model loading.
        let probe = path.join(".rl-write-test");
        fs::write(&probe, b"").map_err(|e| io_err("write into run directory", e))?;
        let _ = fs::remove_file(probe);
        Ok(Self {
            path: path.to_owned(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the resolved config. When resuming with a different config, the earlier one is
    /// kept as `config.<n>.toml` and its path returned.
    pub fn write_config(&self, toml: &str) -> Result<Option<PathBuf>, RunDirError> {
        let target = self.path.join(CONFIG_FILE);
        let io_err = |action, path: &Path, source| RunDirError::Io {
            action,
            path: path.to_owned(),
            source,
        };
        let mut kept = None;
        if let Ok(previous) = fs::read_to_string(&target) {
            if previous == toml {
                return Ok(None);
            }
            let old = (1..)
                .map(|n| self.path.join(format!("config.{n}.toml")))
                .find(|p| !p.exists())
                .unwrap_or_else(|| self.path.join("config.old.toml"));
            fs::rename(&target, &old)
                .map_err(|e| io_err("keep the previous config as", &old, e))?;
            kept = Some(old);
        }
        let tmp = self.path.join(".config.toml.tmp");
        fs::write(&tmp, toml).map_err(|e| io_err("write", &tmp, e))?;
        fs::rename(&tmp, &target).map_err(|e| io_err("write", &target, e))?;
        Ok(kept)
    }
}

/// The default run name: `<stem>-<YYYYMMDD-HHMMSS>` (UTC), e.g. `grpo-arith-20261125-173127`.
pub fn default_run_name(stem: &str, now: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(now).to_string(); // 2026-11-25T17:31:27Z
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let (date, time) = digits.split_at(digits.len().min(8));
    format!("{stem}-{date}-{time}")
}

/// `runs_dir/name`, or `runs_dir/name-2`, `-3`, ... if that is taken (two runs in one second).
pub fn unused_path(runs_dir: &Path, name: &str) -> PathBuf {
    let taken = |p: &PathBuf| p.exists();
    std::iter::once(runs_dir.join(name))
        .chain((2..).map(|n| runs_dir.join(format!("{name}-{n}"))))
        .find(|p| !taken(p))
        .unwrap_or_else(|| runs_dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_carry_the_stem_and_utc_time() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_091_887);
        assert_eq!(default_run_name("grpo", t), "grpo-20251125-173127");
    }
}
