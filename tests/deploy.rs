//! The launch files under `deploy/`, as far as this machine can run them: the Slurm batch script
//! gives each task the launcher variables the learner group reads and the `rl train` command of
//! its rank (dry run, Slurm's variables set by hand), and that command's config loads; the
//! Kubernetes PyTorchJob runs the same `rl train` in every pod, in cluster mode, with as many
//! learners as pods.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{python, repo};

/// The Slurm script's dry run for task `rank` of 4 on 2 nodes.
fn slurm_task(rank: u32) -> (String, String) {
    let out = Command::new("bash")
        .arg(repo().join("deploy/slurm/rl-train.sbatch"))
        .args(["configs/grpo.toml", "--set", "run.steps=5"])
        .current_dir(repo())
        .env("SLURM_PROCID", rank.to_string())
        .env("SLURM_NTASKS", "4")
        .env("SLURM_LOCALID", (rank % 2).to_string())
        .env("SLURM_JOB_NODELIST", "gpu[12-13]")
        .env("RL_DRY_RUN", "1")
        .env("PATH", "/usr/bin:/bin") // no scontrol here: the script reads the list itself
        .env_remove("MASTER_ADDR")
        .env_remove("MASTER_PORT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (vars, command) = text.split_once('\n').unwrap();
    (vars.to_owned(), command.trim().to_owned())
}

#[test]
fn the_slurm_script_gives_each_task_its_rank_and_the_same_run() {
    for rank in 0..4 {
        let (vars, command) = slurm_task(rank);
        assert_eq!(
            vars,
            format!(
                "RANK={rank} WORLD_SIZE=4 LOCAL_RANK={} MASTER_ADDR=gpu12 MASTER_PORT=29500",
                rank % 2
            )
        );
        assert_eq!(
            command,
            r#"rl train configs/grpo.toml --set placement.mode=\"cluster\" --set placement.learners=4 --set run.steps=5"#
        );
    }
    let sets = [
        "placement.mode=\"cluster\"".to_owned(),
        "placement.learners=4".into(),
        "run.steps=5".into(),
    ];
    let config = rl_core::Config::load(&repo().join("configs/grpo.toml"), &sets).unwrap();
    assert_eq!(config.placement.learners, 4);
}

#[test]
fn the_pytorchjob_runs_one_rank_per_pod_in_cluster_mode() {
    let script = r#"
import sys, yaml
job = yaml.safe_load(open(sys.argv[1]))
assert job["kind"] == "PyTorchJob", job["kind"]
specs = job["spec"]["pytorchReplicaSpecs"]
assert specs["Master"]["replicas"] == 1
pods = sum(s["replicas"] for s in specs.values())
for role, spec in specs.items():
    (container,) = spec["template"]["spec"]["containers"]
    cmd = container["command"]
    assert cmd[:3] == ["rl", "train", "/config/grpo.toml"], cmd
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    assert 'placement.mode="cluster"' in sets, (role, sets)
    assert f"placement.learners={pods}" in sets, (role, sets, pods)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
print("ok", pods)
"#;
    let out = Command::new(python())
        .args(["-c", script])
        .arg(repo().join("deploy/k8s/rl-train-pytorchjob.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 4");
}
