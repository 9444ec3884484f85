//! Run directories as a user meets them: fresh runs, refused reuse, resume, unwritable places.

use rl_runtime::{RunDir, RunDirError, run_dir::unused_path};

#[test]
fn a_new_run_creates_the_directory_and_writes_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::open(&tmp.path().join("runs/a"), false).unwrap();
    assert_eq!(dir.write_config("x = 1\n").unwrap(), None);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config.toml")).unwrap(),
        "x = 1\n"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no stray files"
    );
}

#[test]
fn a_used_directory_is_refused_without_resume_and_kept_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a");
    RunDir::open(&path, false)
        .unwrap()
        .write_config("x = 1\n")
        .unwrap();
    let err = RunDir::open(&path, false).unwrap_err();
    assert!(matches!(err, RunDirError::NotEmpty { .. }));
    assert!(err.to_string().contains("--resume"), "{err}");
    assert_eq!(
        std::fs::read_to_string(path.join("config.toml")).unwrap(),
        "x = 1\n"
    );
}

#[test]
fn resume_keeps_a_replaced_config() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a");
    RunDir::open(&path, false)
        .unwrap()
        .write_config("x = 1\n")
        .unwrap();
    let dir = RunDir::open(&path, true).unwrap();
    assert_eq!(
        dir.write_config("x = 1\n").unwrap(),
        None,
        "same config: nothing to keep"
    );
    let kept = dir
        .write_config("x = 2\n")
        .unwrap()
        .expect("old config kept");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "x = 1\n");
    assert_eq!(
        std::fs::read_to_string(path.join("config.toml")).unwrap(),
        "x = 2\n"
    );
}

#[test]
fn resume_needs_an_existing_run() {
    let tmp = tempfile::tempdir().unwrap();
    let err = RunDir::open(&tmp.path().join("none"), true).unwrap_err();
    assert!(err.to_string().contains("nothing to resume"), "{err}");
}

#[test]
fn an_unwritable_place_is_named_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, "").unwrap();
    let err = RunDir::open(&file.join("run"), false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot create run directory") && msg.contains("--run-dir"),
        "{msg}"
    );
}

#[test]
fn default_paths_never_collide() {
    let tmp = tempfile::tempdir().unwrap();
    let first = unused_path(tmp.path(), "r");
    std::fs::create_dir(&first).unwrap();
    assert_eq!(unused_path(tmp.path(), "r"), tmp.path().join("r-2"));
}
