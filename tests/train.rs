//! `rl train` end to end, as a user runs it, on a tiny random model with SmolLM2's tokenizer:
//! every shipped config trains for two steps in its short form; a run stopped and resumed ends
//! bit-identical to one run straight through; SIGINT saves a checkpoint and exits cleanly; a
//! reward server that is not there stops the run with an error that names it; the loop's own
//! keys (`[run]`, `[logging]`, `[checkpoint]`, `[eval]`, rollout workers, dtype) each show in
//! the run directory when set off their defaults; `rl rollout-worker` processes at
//! `placement.rollout_servers` generate the samples and take every weight sync; a learner group
//! of two ranks (`placement.learners = 2`, the second rank started by `rl train`) trains like
//! one learner; `configs/distributed.toml` trains like the same config in one process, and its
//! controller killed with SIGKILL leaves no process behind and resumes to the same weights; a
//! rollout worker killed mid-run hands its work to the other and is restarted, a hung one
//! (SIGSTOP) is caught by its deadline and restarted, and a killed reward server is restarted,
//! every step complete; a learner rank killed mid-run stops the run with a checkpoint and a
//! message naming the rank.

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::{
    Served, assert_trained_alike, repo, rl, spawn_train, stderr, stdout, tiny_chat_model,
};

/// The tiny model, made once per test in `dir`.
fn tiny(dir: &Path) -> PathBuf {
    tiny_chat_model(&dir.join("tiny"))
}

/// `--set` arguments that shrink a config to its short form on the tiny model.
fn short(model: &Path, steps: u64) -> Vec<String> {
    [
        format!("model.path=\"{}\"", model.display()),
        format!("run.steps={steps}"),
        "eval.tasks=4".into(),
        "eval.every=2".into(),
        "logging.samples_every=1".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_owned(), s])
    .collect()
}

/// `rl train CONFIG --run-dir RUN` plus `extra`, in `cwd`.
fn train(cwd: &Path, config: &Path, run: &Path, extra: &[String]) -> std::process::Output {
    let mut args: Vec<String> = vec![
        "train".into(),
        config.display().to_string(),
        "--run-dir".into(),
        run.display().to_string(),
    ];
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    rl(cwd, &args)
}

/// The lines of `metrics.jsonl`, parsed.
fn metrics(run: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn every_shipped_policy_config_trains_in_its_short_form() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    for name in ["grpo", "ppo", "dapo", "rloo", "reinforce_pp", "calculator"] {
        let config = repo().join(format!("configs/{name}.toml"));
        let run = dir.path().join(name);
        let out = train(dir.path(), &config, &run, &short(&model, 2));
        assert!(
            out.status.success(),
            "{name}: {}\n{}",
            stderr(&out),
            stdout(&out)
        );
        let lines = metrics(&run);
        let at = |step: u64, key: &str| {
            lines
                .iter()
                .find(|l| l["step"] == step && l.get(key).is_some())
                .unwrap_or_else(|| panic!("{name}: no {key} at step {step} in {lines:?}"))[key]
                .clone()
        };
        for key in [
            "reward/mean",
            "timing_s/gen",
            "timing_s/update",
            "rollout/policy_version",
        ] {
            at(2, key);
        }
        at(0, "eval/accuracy");
        at(2, "eval/accuracy");
        assert_eq!(
            at(2, "rollout/policy_version"),
            1.0,
            "{name}: step 2 samples version 1"
        );
        assert!(run.join("policy/model.safetensors").is_file(), "{name}");
        assert!(run.join("policy/tokenizer.json").is_file(), "{name}");
        assert!(
            run.join("checkpoints/step-2/trainer.json").is_file(),
            "{name}"
        );
        let summary = stdout(&out);
        assert!(summary.contains("time per phase: "), "{name}: {summary}");
    }
}

/// The lines of a run's metrics without the keys that measure time.
fn untimed(run: &Path) -> Vec<serde_json::Value> {
    metrics(run)
        .into_iter()
        .map(|mut l| {
            if let Some(o) = l.as_object_mut() {
                o.retain(|k, _| {
                    !(k.starts_with("timing_s/")
                        || k.starts_with("perf/")
                        || k == "time"
                        || k == "sync/seconds")
                });
            }
            l
        })
        .collect()
}

#[test]
fn a_run_stopped_and_resumed_ends_as_one_run_straight_through() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let config = repo().join("configs/grpo.toml");
    let mut args = short(&model, 4);
    args.extend(["--set".into(), "checkpoint.every=2".into()]);
    let straight = dir.path().join("straight");
    let out = train(dir.path(), &config, &straight, &args);
    assert!(out.status.success(), "{}", stderr(&out));

    let resumed = dir.path().join("resumed");
    let out = train(dir.path(), &config, &resumed, &short(&model, 2));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut more = args.clone();
    more.push("--resume".into());
    let out = train(dir.path(), &config, &resumed, &more);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("resuming after step 2"),
        "{}",
        stderr(&out)
    );

    let weights = |run: &Path| fs::read(run.join("policy/model.safetensors")).unwrap();
    assert!(
        weights(&straight) == weights(&resumed),
        "the final weights differ"
    );
    assert_eq!(untimed(&straight), untimed(&resumed));
}

#[test]
fn sigint_saves_a_checkpoint_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let run = dir.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_rl"))
        .arg("train")
        .arg(repo().join("configs/grpo.toml"))
        .arg("--run-dir")
        .arg(&run)
        .args(short(&model, 1000))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !metrics_have_step(&run, 1) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no step after 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // kill(1) sends the signal as Ctrl-C would.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--resume"), "{text}");
    let steps = checkpoints(&run);
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(steps[0] >= 1 && steps[0] < 1000);
}

/// Starts `rl train CONFIG --run-dir RUN ARGS` in `cwd` (stderr piped) and returns once its
/// metrics show step `step` (within 180 s).
fn train_until_step(
    cwd: &Path,
    config: &Path,
    run: &Path,
    args: &[String],
    step: u64,
) -> std::process::Child {
    let child = spawn_train(cwd, config, run, args);
    let start = Instant::now();
    while !metrics_have_step(run, step) {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "no step {step} after 180 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn metrics_have_step(run: &Path, step: u64) -> bool {
    fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|text| {
        text.lines()
            .any(|l| serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["step"] == step))
    })
}

#[test]
fn a_reward_server_that_is_not_there_stops_the_run_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let run = dir.path().join("run");
    let mut args = short(&model, 2);
    for set in [
        "reward.kind=\"remote\"",
        "reward.url=\"http://127.0.0.1:9\"",
        "reward.attempts=1",
        "reward.timeout_s=2",
    ] {
        args.extend(["--set".into(), set.into()]);
    }
    let out = train(dir.path(), &repo().join("configs/grpo.toml"), &run, &args);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("reward"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `--set` arguments of `key=value` pairs.
fn sets(pairs: &[&str]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|s| ["--set".to_owned(), (*s).to_owned()])
        .collect()
}

/// The rows of a samples table (`| prompt | reply | reward |`), header left out.
fn sample_rows(table: &str) -> Vec<&str> {
    table.lines().skip(2).collect()
}

/// The texts logged under `samples`, by step.
fn samples(events: &serde_json::Value) -> Vec<(u64, String)> {
    events["texts"]["samples"]
        .as_array()
        .map(|texts| {
            texts
                .iter()
                .map(|t| {
                    let step = t[0].as_u64().expect("a step");
                    (step, t[1].as_str().expect("a text").to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The checkpoint folders of a run, by step.
fn checkpoints(run: &Path) -> Vec<u64> {
    let mut steps: Vec<u64> = fs::read_dir(run.join("checkpoints"))
        .expect("a checkpoints folder")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("step-")?
                .parse()
                .ok()
        })
        .collect();
    steps.sort_unstable();
    steps
}

/// The loop's keys set off their defaults at once, each asserted where it shows (the table of
/// `crates/rl-runtime/tests/config_keys.rs` names this test for them). A second run at the
/// defaults of some of them shows the contrast; a third records nothing, in bf16.
#[test]
fn loop_keys_set_off_default_each_show_in_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let config = repo().join("configs/grpo.toml");
    let config = config.to_str().unwrap();
    let model_path = format!("model.path=\"{}\"", model.display());
    // Shared by the three runs: four samples a step (two prompts, two samples each), prompts cut
    // to 16 tokens, samples recorded every second step.
    let shared = [
        model_path.as_str(),
        "rollout.prompts_per_step=2",
        "rollout.samples_per_prompt=2",
        "learner.mini_batch_size=4",
        "learner.micro_batch_size=2",
        "rollout.max_prompt_tokens=16",
        "eval.tasks=4",
        "logging.samples_every=2",
        "logging.samples_per_log=2",
    ];

    // No --run-dir: run.runs_dir and run.name choose it.
    let mut args = vec!["train", config];
    let off = sets(&[
        "run.name=\"loop\"",
        "run.runs_dir=\"elsewhere\"",
        "run.steps=4",
        "run.seed=7",
        "placement.rollout_workers=2",
        "logging.every=2",
        "logging.histograms=false",
        "checkpoint.every=1",
        "checkpoint.keep_last=3",
        "checkpoint.save_optimizer=false",
        "eval.every=3",
        "eval.k=2",
    ]);
    let shared_args = sets(&shared);
    args.extend(shared_args.iter().chain(&off).map(String::as_str));
    let out = rl(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = dir.path().join("elsewhere/loop");
    assert!(
        run.join("config.toml").is_file(),
        "no run in {}",
        run.display()
    );

    // logging.every = 2: steps 2 and 4, plus step 3 for its eval (eval.every = 3) and step 0
    // for the eval before training.
    let lines = metrics(&run);
    let logged: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(logged, [0, 2, 3, 4]);
    for line in &lines {
        let step = line["step"].as_u64().unwrap();
        // eval.every = 3: before training, at step 3 and after the last; eval.k = 2 and
        // eval.tasks = 4 at each.
        if step == 2 {
            assert!(line.get("eval/accuracy").is_none(), "step 2: {line}");
        } else {
            assert!(line["eval/pass@2"].is_f64(), "step {step}: {line}");
            assert_eq!(line["eval/tasks"], 4.0, "step {step}");
        }
        if step > 0 {
            // prompts_per_step * samples_per_prompt samples, each prompt cut to 16 tokens.
            assert_eq!(line["rollout/samples"], 4.0, "step {step}");
            assert_eq!(line["rollout/truncated_prompts"], 4.0, "step {step}");
            // Two rollout workers, both sent the weights of every update.
            assert_eq!(
                line["rollout/policy_version"],
                (step - 1) as f64,
                "step {step}"
            );
        }
    }

    // samples_every = 2, samples_per_log = 2; histograms = false.
    let events = common::read_events(&run);
    let texts = samples(&events);
    assert_eq!(texts.iter().map(|t| t.0).collect::<Vec<_>>(), [2, 4]);
    assert!(
        texts.iter().all(|t| sample_rows(&t.1).len() == 2),
        "{texts:?}"
    );
    assert_eq!(events["histograms"], serde_json::json!({}));

    // checkpoint.every = 1 and keep_last = 3: steps 2 to 4 kept, without optimiser state.
    assert_eq!(checkpoints(&run), [2, 3, 4]);
    for step in [2, 3, 4] {
        let saved = run.join(format!("checkpoints/step-{step}"));
        assert!(saved.join("trainer.json").is_file());
        assert!(!saved.join("optimizer.safetensors").exists(), "step {step}");
    }

    // The contrast: the same run at run.seed 0, histograms and optimiser state on. The random
    // model earns no reward, so every advantage is 0; an entropy term keeps those samples in the
    // training pass (without one they skip it), so that importance ratios exist to histogram.
    let base = dir.path().join("base");
    let mut two = sets(&shared);
    two.extend(sets(&["run.steps=2", "algorithm.entropy_coef=0.001"]));
    let out = train(dir.path(), Path::new(config), &base, &two);
    assert!(out.status.success(), "{}", stderr(&out));
    let base_events = common::read_events(&base);
    let histograms = base_events["histograms"].as_object().unwrap();
    for name in ["reward", "advantage", "ratio"] {
        assert!(histograms.contains_key(name), "{histograms:?}");
    }
    assert!(
        base.join("checkpoints/step-2/optimizer.safetensors")
            .is_file()
    );
    // run.seed draws other tasks: the prompts of step 2 differ.
    let prompt = |table: &str| {
        sample_rows(table)[0]
            .split(" | ")
            .next()
            .unwrap()
            .to_owned()
    };
    let base_texts = samples(&base_events);
    assert_eq!(base_texts[0].0, 2);
    assert_ne!(prompt(&texts[0].1), prompt(&base_texts[0].1));

    // tensorboard = false, jsonl = false: no metric files; model.dtype = "bf16": the policy is
    // trained and written in bf16.
    let quiet = dir.path().join("quiet");
    let mut one = sets(&shared);
    one.extend(sets(&[
        "run.steps=1",
        "logging.tensorboard=false",
        "logging.jsonl=false",
        "model.dtype=\"bf16\"",
    ]));
    let out = train(dir.path(), Path::new(config), &quiet, &one);
    assert!(out.status.success(), "{}", stderr(&out));
    let files: Vec<String> = fs::read_dir(&quiet)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !files
            .iter()
            .any(|f| f == "metrics.jsonl" || f.starts_with("events.out.tfevents")),
        "{files:?}"
    );
    let policy: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(quiet.join("policy/config.json")).unwrap())
            .unwrap();
    assert_eq!(policy["torch_dtype"], "bfloat16");
}

#[test]
fn the_reward_configs_train_in_their_short_form() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let configs = repo().join("configs");
    // A reward model on MiniLM from the shipped pairs (paths in configs are relative to the
    // repository, where `make train` runs).
    let rm_run = dir.path().join("rm");
    let rm_args: Vec<String> = ["run.steps=2", "preference.eval_every=0"]
        .iter()
        .flat_map(|s| ["--set".to_owned(), (*s).to_owned()])
        .collect();
    let out = train(
        &repo(),
        &configs.join("reward-model.toml"),
        &rm_run,
        &rm_args,
    );
    assert!(out.status.success(), "reward-model: {}", stderr(&out));
    let reward_model = rm_run.join("reward_model");
    assert!(reward_model.join("config.json").is_file());

    // PPO against it.
    let mut args = short(&model, 2);
    args.extend([
        "--set".into(),
        format!("reward.model=\"{}\"", reward_model.display()),
    ]);
    let run = dir.path().join("rm-ppo");
    let out = train(dir.path(), &configs.join("rm-ppo.toml"), &run, &args);
    assert!(out.status.success(), "rm-ppo: {}", stderr(&out));
    assert!(
        metrics(&run)
            .iter()
            .any(|l| l["step"] == 2 && l.get("critic/vf_loss").is_some())
    );

    // Scored by an `rl reward-server` in its own process.
    let mut command = Command::new(env!("CARGO_BIN_EXE_rl"));
    command
        .args(["reward-server", "--config"])
        .arg(configs.join("grpo.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("RL_REWARD_TOKEN");
    let server = common::Served::start(command, dir.path().join("server.log"));
    let mut args = short(&model, 2);
    args.extend([
        "--set".into(),
        format!("reward.url=\"http://{}\"", server.addr),
    ]);
    let run = dir.path().join("remote");
    let out = train(dir.path(), &configs.join("remote-reward.toml"), &run, &args);
    server.stop();
    assert!(out.status.success(), "remote-reward: {}", stderr(&out));
    assert!(
        metrics(&run)
            .iter()
            .any(|l| l["step"] == 2 && l.get("reward/mean").is_some())
    );
}

#[test]
fn a_reward_server_that_goes_away_mid_run_stops_it_with_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let mut command = Command::new(env!("CARGO_BIN_EXE_rl"));
    command
        .args(["reward-server", "--config"])
        .arg(repo().join("configs/grpo.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("RL_REWARD_TOKEN");
    let server = common::Served::start(command, dir.path().join("server.log"));
    let run = dir.path().join("run");
    let mut args = short(&model, 1000);
    for set in [
        format!("reward.url=\"http://{}\"", server.addr),
        "reward.kind=\"remote\"".into(),
        "reward.attempts=2".into(),
        "reward.timeout_s=2".into(),
    ] {
        args.extend(["--set".into(), set]);
    }
    let config = repo().join("configs/grpo.toml");
    let child = train_until_step(dir.path(), &config, &run, &args, 1);
    server.stop();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("reward") && err.contains("--resume"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        run.join("checkpoints").read_dir().unwrap().next().is_some(),
        "a checkpoint was saved"
    );
}

#[test]
fn rollout_worker_processes_generate_and_take_every_sync() {
    const TOKEN: &str = "rollout-secret-5d1e";
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny(tmp.path());
    let start = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rl"));
        command
            .args([
                "rollout-worker",
                "--listen",
                "127.0.0.1:0",
                "--device",
                "cpu",
            ])
            .arg("--model")
            .arg(&model)
            .env("RL_ROLLOUT_TOKEN", TOKEN);
        Served::start(command, tmp.path().join("worker.log"))
    };
    let workers = [start(), start()];
    let servers: Vec<String> = workers
        .iter()
        .map(|w| format!("\"http://{}\"", w.addr))
        .collect();
    let mut args = short(&model, 2);
    args.extend(sets(&[
        "placement.mode=\"cluster\"",
        &format!("placement.rollout_servers=[{}]", servers.join(", ")),
        "eval.every=0",
    ]));
    let run = tmp.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_rl"))
        .current_dir(tmp.path())
        .args(["train"])
        .arg(repo().join("configs/grpo.toml"))
        .arg("--run-dir")
        .arg(&run)
        .args(&args)
        .env("RL_ROLLOUT_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\nworker log:\n{}",
        stderr(&out),
        workers[0].stderr()
    );
    let lines = metrics(&run);
    let steps: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["step"].as_u64() > Some(0))
        .collect();
    assert_eq!(steps.len(), 2, "{lines:?}");
    for line in &steps {
        assert!(line["sync/bytes"].as_f64() > Some(0.0), "{line}");
        assert_eq!(
            line["rollout/policy_version_lag"].as_f64(),
            Some(0.0),
            "{line}"
        );
    }
    // Step 2 sampled with the weights of step 1, which reached the worker processes.
    assert_eq!(steps[1]["rollout/policy_version"].as_f64(), Some(1.0));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for worker in &workers {
        let options = rl_rollout::remote::ClientOptions {
            token: Some(TOKEN.into()),
            ..Default::default()
        };
        let info = runtime
            .block_on(async {
                use rl_rollout::RolloutWorker;
                let remote =
                    rl_rollout::remote::RemoteWorker::connect(&worker.addr, options).await?;
                remote.info().await
            })
            .unwrap();
        assert_eq!(info.policy_version, 2, "{}", worker.addr);
    }
    for worker in workers {
        worker.stop();
    }
}

#[test]
fn a_learner_group_of_two_ranks_trains_like_one_learner() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny(tmp.path());
    let config = repo().join("configs/grpo.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = |learners: u32| {
        let dir = tmp.path().join(format!("run-{learners}"));
        let mut args = short(&model, 2);
        args.extend(sets(&[
            "placement.mode=\"processes\"",
            &format!("placement.learners={learners}"),
            &format!("placement.rendezvous=\"127.0.0.1:{port}\""),
            "eval.every=0",
            "logging.every=1",
            "learner.micro_batch_size=2",
            // The tiny model earns no reward, so every advantage is 0: the entropy bonus
            // gives each rank a gradient to sum.
            "algorithm.entropy_coef=0.01",
        ]));
        let out = train(tmp.path(), &config, &dir, &args);
        assert!(
            out.status.success(),
            "learners = {learners}: {}",
            stderr(&out)
        );
        metrics(&dir)
            .into_iter()
            .filter(|l| l["step"].as_u64() > Some(0) && l.get("actor/pg_loss").is_some())
            .collect::<Vec<_>>()
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one.len(), 2);
    assert_eq!(two.len(), 2);
    for (a, b) in one.iter().zip(&two) {
        assert_eq!(a["reward/mean"], b["reward/mean"], "the same samples");
        for key in ["actor/pg_loss", "actor/grad_norm", "actor/entropy"] {
            let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                "{key}: {x} alone, {y} in the group"
            );
        }
    }
}

#[test]
fn the_distributed_config_trains_like_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny(tmp.path());
    let config = repo().join("configs/distributed.toml");
    let run = |name: &str, placement: &[&str]| {
        let dir = tmp.path().join(name);
        let mut args = short(&model, 2);
        args.extend(sets(&[
            "eval.every=0",
            "logging.every=1",
            "algorithm.entropy_coef=0.01",
        ]));
        args.extend(sets(placement));
        let out = train(tmp.path(), &config, &dir, &args);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let lines = metrics(&dir)
            .into_iter()
            .filter(|l| l["step"].as_u64() > Some(0) && l.get("actor/pg_loss").is_some())
            .collect::<Vec<_>>();
        (lines, stderr(&out))
    };
    let (spread, log) = run("processes", &[]);
    for role in [
        "rollout worker 0",
        "rollout worker 1",
        "reward server",
        "learner rank",
    ] {
        assert!(
            log.contains(&format!("started the {role}"))
                || log.contains(&format!("started {role}")),
            "{role}:\n{log}"
        );
    }
    let (together, _) = run(
        "local",
        &["placement.mode=\"local\"", "placement.learners=1"],
    );
    assert_eq!(spread.len(), 2);
    assert_trained_alike(&spread, &together, "spread");
}

#[test]
fn weights_broadcast_over_a_weight_group_train_like_the_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny(tmp.path());
    let config = repo().join("configs/distributed.toml");
    let run = |name: &str, sync: &str| {
        let dir = tmp.path().join(name);
        let mut args = short(&model, 3);
        args.extend(sets(&[
            "eval.every=0",
            "logging.every=1",
            "placement.learners=1",
            "algorithm.entropy_coef=0.01",
            &format!("placement.weight_sync=\"{sync}\""),
        ]));
        let out = train(tmp.path(), &config, &dir, &args);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let steps: Vec<serde_json::Value> = metrics(&dir)
            .into_iter()
            .filter(|l| l["step"].as_u64() > Some(0) && l.get("actor/pg_loss").is_some())
            .collect();
        (steps, stderr(&out))
    };
    let (broadcast, log) = run("broadcast", "broadcast");
    assert!(
        log.contains("by broadcast over a weight group"),
        "the weight group formed:\n{log}"
    );
    assert!(!log.contains("weights go by stream"), "{log}");
    let (stream, _) = run("stream", "stream");
    assert_eq!((broadcast.len(), stream.len()), (3, 3));
    for (a, b) in broadcast.iter().zip(&stream) {
        // The workers sampled with the same weights: the same samples, scores and losses.
        for key in [
            "reward/mean",
            "actor/pg_loss",
            "actor/entropy",
            "response_length/mean",
            "sync/bytes",
        ] {
            assert_eq!(a[key], b[key], "{key}: {a} by broadcast, {b} by stream");
        }
    }
}

/// The processes whose parent is `pid` and that have not exited (zombies count as exited).
fn live_children(pid: u32) -> Vec<u32> {
    let stat = |p: &Path| fs::read_to_string(p.join("stat")).ok();
    fs::read_dir("/proc")
        .expect("/proc lists the processes")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let child: u32 = path.file_name()?.to_str()?.parse().ok()?;
            let text = stat(&path)?;
            // pid (comm) state ppid ...: comm may hold spaces, so read after its last ')'.
            let mut rest = text.rsplit_once(')')?.1.split_whitespace();
            let state = rest.next()?;
            let ppid: u32 = rest.next()?.parse().ok()?;
            (ppid == pid && state != "Z").then_some(child)
        })
        .collect()
}

/// Whether process `pid` is gone (or a zombie).
fn gone(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |t| {
        t.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

#[test]
fn a_killed_distributed_controller_leaves_no_process_and_resumes_to_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny(tmp.path());
    let config = repo().join("configs/distributed.toml");
    let mut args = short(&model, 4);
    args.extend(sets(&[
        "eval.every=0",
        "checkpoint.every=1",
        "algorithm.entropy_coef=0.01",
    ]));
    let straight = tmp.path().join("straight");
    let out = train(tmp.path(), &config, &straight, &args);
    assert!(out.status.success(), "{}", stderr(&out));

    let killed = tmp.path().join("killed");
    let mut child = spawn_train(tmp.path(), &config, &killed, &args);
    let start = Instant::now();
    while !killed.join("checkpoints").exists() || checkpoints(&killed).iter().all(|&s| s < 2) {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "no checkpoint after 180 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let roles = live_children(child.id());
    assert_eq!(
        roles.len(),
        4,
        "2 rollout workers, a reward server, a learner rank: {roles:?}"
    );
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();
    let start = Instant::now();
    while !roles.iter().all(|&p| gone(p)) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "processes left behind 30 s after the controller died: {:?}",
            roles.iter().filter(|&&p| !gone(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut more = args.clone();
    more.push("--resume".into());
    let out = train(tmp.path(), &config, &killed, &more);
    assert!(out.status.success(), "{}", stderr(&out));
    let weights = |run: &Path| fs::read(run.join("policy/model.safetensors")).unwrap();
    assert!(
        weights(&straight) == weights(&killed),
        "the final weights differ"
    );
}

/// Runs `configs/distributed.toml` (one learner) for 4 steps with `extra` settings, sends
/// `signal` to its `role` process (`rollout-worker`, `reward-server`) after step 1, and checks
/// that every step still completed with nothing dropped; the run's stderr and last metrics line.
fn survives(signal: &str, role: &str, extra: &[&str]) -> (String, serde_json::Value) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let model = tiny(tmp.path());
    let config = repo().join("configs/distributed.toml");
    let mut args = short(&model, 4);
    args.extend(sets(&[
        "eval.every=0",
        "logging.every=1",
        "placement.learners=1",
    ]));
    args.extend(sets(extra));
    let run = tmp.path().join("run");
    let child = train_until_step(tmp.path(), &config, &run, &args, 1);
    let pid = child_running(child.id(), role).unwrap_or_else(|| panic!("a {role} process"));
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("rl train's output");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert!(gone(pid), "the {role} that was sent {signal} is gone");
    let steps: Vec<serde_json::Value> = metrics(&run)
        .into_iter()
        .filter(|l| l["step"].as_u64() > Some(0) && l.get("rollout/samples").is_some())
        .collect();
    assert_eq!(steps.len(), 4, "every step ran");
    for line in &steps {
        assert_eq!(
            line["rollout/samples"], steps[0]["rollout/samples"],
            "{line}"
        );
        assert_eq!(
            line["rollout/dropped"].as_f64(),
            Some(0.0),
            "nothing lost: {line}"
        );
    }
    (log, steps[3].clone())
}

#[test]
fn a_rollout_worker_killed_mid_run_hands_its_work_to_the_other_and_is_restarted() {
    let (log, last) = survives("-KILL", "rollout-worker", &[]);
    assert!(log.contains("is gone"), "the loss was noticed:\n{log}");
    assert!(log.contains("was restarted at"), "{log}");
    assert!(last["rollout/restarts"].as_f64() >= Some(1.0), "{last}");
}

#[test]
fn with_weights_by_broadcast_a_restarted_worker_joins_a_new_weight_group() {
    let (log, last) = survives(
        "-KILL",
        "rollout-worker",
        &["placement.weight_sync=\"broadcast\""],
    );
    assert!(log.contains("go by stream until it is replaced"), "{log}");
    assert!(log.contains("the weight group was formed again"), "{log}");
    assert!(last["rollout/restarts"].as_f64() >= Some(1.0), "{last}");
}

#[test]
fn a_hung_rollout_worker_is_caught_by_its_deadline_and_restarted() {
    // SIGSTOP: the process lives, holds its connections and answers nothing.
    let (log, last) = survives("-STOP", "rollout-worker", &["rollout.worker_timeout_s=3"]);
    assert!(log.contains("(hung)"), "the hang was noticed:\n{log}");
    assert!(log.contains("was restarted at"), "{log}");
    assert!(last["rollout/restarts"].as_f64() >= Some(1.0), "{last}");
}

#[test]
fn a_reward_server_killed_mid_run_is_restarted_and_the_batch_scored_again() {
    let (log, _) = survives("-KILL", "reward-server", &["reward.attempts=2"]);
    assert!(log.contains("the reward server was restarted at"), "{log}");
}

/// The first live child of `pid` whose command line holds `word`.
fn child_running(pid: u32, word: &str) -> Option<u32> {
    live_children(pid).into_iter().find(|&p| {
        fs::read(format!("/proc/{p}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).split('\0').any(|a| a == word))
    })
}

#[test]
fn a_learner_rank_killed_mid_run_stops_the_run_with_a_checkpoint_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny(tmp.path());
    let config = repo().join("configs/distributed.toml");
    let mut args = short(&model, 1000);
    args.extend(sets(&["eval.every=0", "logging.every=1"]));
    let run = tmp.path().join("run");
    let child = train_until_step(tmp.path(), &config, &run, &args, 1);
    let rank = child_running(child.id(), "train").expect("the learner rank process");
    let status = Command::new("kill")
        .args(["-KILL", &rank.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the learner rank 1") && err.contains("--resume"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!checkpoints(&run).is_empty(), "a checkpoint was saved");
}
