//! `rl train CONFIG`: load and validate the config, open the run directory, and hand the run to
//! [`rl_runtime::trainer::Trainer`]; a reward-model config (`run.trainer = "reward_model"`)
//! goes to [`super::train_reward_model`]. This file adds only what a terminal needs: the
//! progress bar, Ctrl-C handling and the closing summary.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Instant, SystemTime},
};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rl_core::{
    Config,
    config::{PlacementMode, Trainer as TrainerKind},
};
use rl_model::{device_name, resolve_device, resolve_kind};
use rl_runtime::{
    Metrics, RunDir, RunDirError, StepMetrics,
    run_dir::{default_run_name, unused_path},
    trainer::{Devices, Evaluation, Outcome, Progress, StepReport, Trainer},
};
use serde_json::json;
use tch::Device;
use tracing::{info, warn};

use crate::{
    cli::TrainArgs,
    console::Console,
    placement::{self, Placed, learners},
};

/// Runs `rl train`.
pub fn run(args: TrainArgs, console: Console) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut config = Config::load(&args.config, &args.overrides)?;
    let path = run_path(&args, &config)?;
    if config.run.name.is_empty() {
        config.run.name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    if config.run.trainer == TrainerKind::RewardModel {
        return super::train_reward_model::run(&config, &path, args.resume, &console);
    }

    // Devices before the run directory: a config this machine cannot run leaves nothing behind.
    let p = &config.placement;
    let rollout = resolve_device(p.rollout_device, "placement.rollout_device")?;
    let mut learner = resolve_device(p.learner_device, "placement.learner_device")?;
    rl_model::source::resolve(&config.model.path)?; // a missing model, too, before anything is written
    let backend = learners::backend(&config, learner)?;
    let place = learners::place(&args, &config)?;
    match (&place.rendezvous, learner) {
        (Some(rendezvous), Device::Cuda(_)) => {
            learner = Device::Cuda(rendezvous.local_rank); // one GPU per rank on a host
        }
        (Some(rendezvous), _) => learners::share_cores(rendezvous),
        (None, _) => {}
    }
    let devices = Devices {
        rollout,
        learner,
        kind: resolve_kind(config.model.dtype, learner),
    };
    if let Some(rendezvous) = place.rendezvous.as_ref().filter(|r| r.rank > 0) {
        let group = learners::join(rendezvous, backend)?;
        let updates = rl_runtime::trainer::follower::follow(&config, devices, group)?;
        info!(rank = rendezvous.rank, updates, "learner rank done");
        return Ok(());
    }

    let dir = RunDir::open(&path, args.resume)?;
    let toml = config.to_toml();
    if let Some(kept) = dir.write_config(&toml)? {
        warn!(
            "the config differs from the one this run used before; that one is kept as {}",
            kept.display()
        );
    }
    let mut metrics = Metrics::open(dir.path(), config.logging.tensorboard, config.logging.jsonl)
        .with_context(|| {
        format!("cannot create the metric files in {}", dir.path().display())
    })?;
    // Each session logs the config it ran with (a resumed run may have changed it).
    let text = toml.lines().map(|l| format!("    {l}")).collect::<Vec<_>>();
    metrics.write(0, &StepMetrics::default().text("config", text.join("\n")))?;
    info!(
        algorithm = %config.algorithm.name,
        model = %config.model.path,
        rollout_device = %device_name(rollout),
        learner_device = %device_name(learner),
        dtype = ?devices.kind,
        steps = config.run.steps,
        run_dir = %dir.path().display(),
        "setting up"
    );
    let loading = Instant::now();
    // The run directory keeps the config as written; the trainer gets it pointed at the
    // servers started for it.
    let mut roles_config = config.clone();
    let mut roles = place.ranks;
    if matches!(
        config.placement.mode,
        PlacementMode::Processes | PlacementMode::Ray
    ) {
        let host = placement::ray::listen_host(&config);
        roles.extend(placement::server_roles(&args, &config, host)?);
    }
    let mut placed = Placed::start(&mut roles_config, roles, dir.path())?;
    let mut trainer = Trainer::new(roles_config, dir.path(), devices, metrics, args.resume)
        .map_err(|e| named_exits(e, &mut placed))?;
    if let Some(supervisor) = placed.supervisor() {
        trainer.supervise(supervisor)?;
    }
    if let Some(rendezvous) = &place.rendezvous {
        trainer.lead(learners::join(rendezvous, backend)?)?;
    }
    info!(
        seconds = loading.elapsed().as_secs_f64(),
        "roles ready (policy, rollout workers, reward, learner)"
    );
    if !console.quiet && !console.json {
        let logdir = dir.path().parent().filter(|p| !p.as_os_str().is_empty());
        eprintln!(
            "watch it with: tensorboard --logdir {}",
            logdir.unwrap_or(Path::new(".")).display()
        );
    }
    let stop = stop_on_signal()?;
    let mut progress = Bar::new(console);
    let outcome = trainer
        .run(&stop, &mut progress)
        .map_err(|e| named_exits(e, &mut placed))?;
    progress.finish();
    placed.finish()?;
    summary(
        &outcome,
        dir.path(),
        &config,
        console,
        started.elapsed().as_secs_f64(),
    )
}

/// `error`, with the role processes that have exited named first: the process that died, rather
/// than only the broken connection it left.
fn named_exits(error: impl Into<anyhow::Error>, placed: &mut Placed) -> anyhow::Error {
    let error = error.into();
    let died = placed.exited();
    if died.is_empty() {
        error
    } else {
        error.context(died.join("; "))
    }
}

/// Prints how the run ended: accuracy before and after, time per phase, where the policy is.
fn summary(
    outcome: &Outcome,
    dir: &Path,
    config: &Config,
    console: Console,
    seconds: f64,
) -> anyhow::Result<()> {
    if console.json {
        let phases: serde_json::Map<String, serde_json::Value> = outcome
            .phase_seconds
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        return crate::console::out(json!({
            "run_dir": dir,
            "status": if outcome.interrupted { "interrupted" } else { "finished" },
            "steps_done": outcome.step,
            "steps": config.run.steps,
            "eval_accuracy_first": outcome.first_accuracy,
            "eval_accuracy_last": outcome.last_accuracy,
            "train_seconds": outcome.train_seconds,
            "phase_seconds": phases,
            "policy": outcome.policy,
        }));
    }
    if console.quiet {
        return Ok(());
    }
    let pct = |a: Option<f64>| a.map_or("-".to_owned(), |a| format!("{:.1}%", a * 100.0));
    let mut lines = vec![format!(
        "{} after step {}/{} in {seconds:.0} s ({:.0} s training)",
        if outcome.interrupted {
            "stopped"
        } else {
            "finished"
        },
        outcome.step,
        config.run.steps,
        outcome.train_seconds
    )];
    lines.push(format!(
        "eval accuracy ({} held-out tasks, greedy): {} before, {} after",
        config.eval.tasks,
        pct(outcome.first_accuracy),
        pct(outcome.last_accuracy)
    ));
    let total: f64 = outcome
        .phase_seconds
        .iter()
        .filter(|(p, _)| p != "step")
        .map(|(_, s)| s)
        .sum();
    let phases: Vec<String> = outcome
        .phase_seconds
        .iter()
        .filter(|(p, _)| p != "step")
        .map(|(p, s)| format!("{p} {s:.1} s ({:.0}%)", 100.0 * s / total.max(1e-9)))
        .collect();
    lines.push(format!("time per phase: {}", phases.join(", ")));
    match &outcome.policy {
        Some(policy) => lines.push(format!(
            "policy: {} (check it with: rl eval {} --model {} -n {})",
            policy.display(),
            dir.join(rl_runtime::run_dir::CONFIG_FILE).display(),
            policy.display(),
            config.eval.tasks
        )),
        None => lines.push(format!(
            "continue with: rl train CONFIG --run-dir {} --resume",
            dir.display()
        )),
    }
    crate::console::out(lines.join("\n"))
}

/// A flag the first SIGINT or SIGTERM sets (the run then checkpoints after its current step and
/// stops); a second one exits at once.
fn stop_on_signal() -> anyhow::Result<Arc<AtomicBool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal handler")?;
    let (mut interrupt, mut terminate) = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async {
                loop {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                    if flag.swap(true, Ordering::SeqCst) {
                        eprintln!("second interrupt: exiting without a checkpoint");
                        std::process::exit(130);
                    }
                    warn!("interrupted: saving a checkpoint after the current step, then stopping (again to abort)");
                }
            });
        })
        .context("cannot start the signal handler")?;
    Ok(stop)
}

/// The progress bar: step, mean reward, last eval accuracy, ETA. Without a terminal (or with
/// `--quiet`/`--json`) it is hidden and each step is logged as a line instead.
struct Bar {
    bar: ProgressBar,
    visible: bool,
    eval: Option<f64>,
}

impl Bar {
    fn new(console: Console) -> Self {
        let visible = !console.quiet && !console.json && std::io::stderr().is_terminal();
        Self {
            bar: ProgressBar::hidden(),
            visible,
            eval: None,
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn start(&mut self, done: u64, steps: u64) {
        if self.visible {
            self.bar = ProgressBar::new(steps);
            let style = ProgressStyle::with_template(
                "step {pos}/{len} [{bar:30}] {msg} ({elapsed}, ETA {eta})",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            self.bar.set_style(style);
            self.bar.set_position(done);
            self.bar.reset_eta();
        }
    }

    fn step(&mut self, r: &StepReport) {
        let eval = self
            .eval
            .map_or(String::new(), |a| format!(", eval {:.1}%", a * 100.0));
        let msg = format!("reward {:.3}{eval}", r.reward_mean);
        if self.visible {
            self.bar.set_message(msg);
            self.bar.set_position(r.step);
        } else {
            info!(
                step = r.step,
                reward = r.reward_mean,
                dropped = r.dropped,
                seconds = r.seconds,
                "step done"
            );
        }
    }

    fn eval(&mut self, step: u64, e: &Evaluation) {
        self.eval = Some(e.accuracy);
        let line = format!(
            "eval after step {step}: accuracy {:.1}%",
            e.accuracy * 100.0
        );
        if self.visible {
            self.bar.println(line);
        } else {
            info!(step, accuracy = e.accuracy, pass_at_k = ?e.pass_at_k.map(|p| p.1), "eval");
        }
    }
}

/// The run directory: `--run-dir`, else `<runs_dir>/<run.name>`, else a fresh timestamped name.
fn run_path(args: &TrainArgs, config: &Config) -> anyhow::Result<PathBuf> {
    let run = &config.run;
    Ok(match (&args.run_dir, run.name.is_empty()) {
        (Some(dir), _) => dir.clone(),
        (None, false) => run.runs_dir.join(&run.name),
        (None, true) if args.resume => return Err(RunDirError::ResumeWhich.into()),
        (None, true) => {
            let stem = args
                .config
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned());
            let name = default_run_name(stem.as_deref().unwrap_or("run"), SystemTime::now());
            unused_path(&run.runs_dir, &name)
        }
    })
}
