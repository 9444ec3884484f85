//! Checkpoints of a run, `<run dir>/checkpoints/step-<N>/`, written atomically: the contents go
//! into a temporary folder, every file and the folder are fsynced, then it is renamed into
//! place. A half-written checkpoint is never found as the latest, so a crash at any moment
//! leaves the previous one usable. The oldest are removed beyond `checkpoint.keep_last`.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

/// Folder of the checkpoints inside a run directory.
pub const CHECKPOINTS: &str = "checkpoints";

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file system refused.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A checkpoint's contents do not fit this run.
    #[error("checkpoint {}: {message}", path.display())]
    Invalid {
        /// The checkpoint.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
}

impl CheckpointError {
    /// An I/O error while doing `action` on `path`.
    pub fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self + use<> {
        let path = path.to_owned();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

/// The checkpoints of one run.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    root: PathBuf,
}

impl Checkpoints {
    /// The checkpoints of the run in `run_dir`.
    pub fn new(run_dir: &Path) -> Self {
        Self {
            root: run_dir.join(CHECKPOINTS),
        }
    }

    /// Where the checkpoint of `step` lives.
    pub fn path(&self, step: u64) -> PathBuf {
        self.root.join(format!("step-{step}"))
    }

    /// Every complete checkpoint's step, ascending.
    pub fn steps(&self) -> Result<Vec<u64>, CheckpointError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(CheckpointError::io("read", &self.root)(e)),
        };
        let mut steps: Vec<u64> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
            .collect();
        steps.sort_unstable();
        Ok(steps)
    }

    /// The newest complete checkpoint: its step and folder.
    pub fn latest(&self) -> Result<Option<(u64, PathBuf)>, CheckpointError> {
        Ok(self.steps()?.last().map(|&s| (s, self.path(s))))
    }

    /// Writes the checkpoint of `step` with `write` (which fills the folder it is given), then
    /// makes it durable and visible at once. An earlier checkpoint of the same step is replaced.
    pub fn save(
        &self,
        step: u64,
        write: impl FnOnce(&Path) -> Result<(), CheckpointError>,
    ) -> Result<PathBuf, CheckpointError> {
        fs::create_dir_all(&self.root).map_err(CheckpointError::io("create", &self.root))?;
        let tmp = self.root.join(format!(".step-{step}.tmp"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(CheckpointError::io("remove", &tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(CheckpointError::io("create", &tmp))?;
        write(&tmp)?;
        sync_tree(&tmp)?;
        let target = self.path(step);
        if target.exists() {
            let old = self.root.join(format!(".step-{step}.old"));
            fs::rename(&target, &old).map_err(CheckpointError::io("move aside", &target))?;
            fs::remove_dir_all(&old).map_err(CheckpointError::io("remove", &old))?;
        }
        fs::rename(&tmp, &target).map_err(CheckpointError::io("rename into place", &target))?;
        sync_dir(&self.root)?;
        Ok(target)
    }

    /// Removes all but the newest `keep` checkpoints, and leftovers of interrupted saves.
    pub fn prune(&self, keep: usize) -> Result<(), CheckpointError> {
        let steps = self.steps()?;
        for &step in &steps[..steps.len().saturating_sub(keep.max(1))] {
            let path = self.path(step);
            fs::remove_dir_all(&path).map_err(CheckpointError::io("remove", &path))?;
        }
        if let Ok(entries) = fs::read_dir(&self.root) {
            for e in entries.filter_map(Result::ok) {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(".step-") {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }
}

/// fsyncs every file under `dir`, then the folders themselves.
fn sync_tree(dir: &Path) -> Result<(), CheckpointError> {
    for entry in fs::read_dir(dir).map_err(CheckpointError::io("read", dir))? {
        let path = entry.map_err(CheckpointError::io("read", dir))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(CheckpointError::io("sync", &path))?;
        }
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(CheckpointError::io("sync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_are_atomic_and_old_ones_pruned() {
        let run = tempfile::tempdir().unwrap();
        let ckpt = Checkpoints::new(run.path());
        assert_eq!(ckpt.latest().unwrap(), None);
        for step in [2, 4, 6] {
            ckpt.save(step, |dir| {
                fs::write(dir.join("state.json"), step.to_string())
                    .map_err(CheckpointError::io("write", dir))
            })
            .unwrap();
        }
        // A save that fails halfway leaves no checkpoint behind.
        let failed = ckpt.save(8, |dir| {
            fs::write(dir.join("half"), "x").map_err(CheckpointError::io("write", dir))?;
            Err(CheckpointError::Invalid {
                path: dir.to_owned(),
                message: "disk full".into(),
            })
        });
        assert!(failed.is_err());
        let (step, path) = ckpt.latest().unwrap().unwrap();
        assert_eq!(step, 6);
        assert_eq!(fs::read_to_string(path.join("state.json")).unwrap(), "6");
        ckpt.prune(2).unwrap();
        assert_eq!(ckpt.steps().unwrap(), [4, 6]);
        assert!(!run.path().join(CHECKPOINTS).join(".step-8.tmp").exists());
    }
}
