//! The reward-model scorer on all-MiniLM-L6-v2 with a fresh head: batched scoring on the actor
//! equals scoring one row at a time (padding and chunking change nothing), an empty response is
//! scored, and a model that returns NaN gives an error naming the task while the actor keeps
//! answering.

#![allow(clippy::unwrap_used)]

use rl_core::{RewardFn, Scoring, Task};
use rl_model::heads::ScalarModel;
use rl_runtime::reward::{ModelScorer, ModelScorerSettings};
use rl_test_support::minilm_dir;
use tch::{Device, Kind};

fn scorer(dir: &std::path::Path, batch_size: usize, nan: bool) -> ModelScorer {
    let model = ScalarModel::from_backbone_dir(dir, Device::Cpu).unwrap();
    if nan {
        tch::no_grad(|| {
            for (name, mut var) in model.vs.variables() {
                if name.starts_with("classifier.") {
                    let _ = var.fill_(f64::NAN);
                }
            }
        });
    }
    let tokenizer = rl_model::load_tokenizer(&dir.to_string_lossy()).unwrap();
    let settings = ModelScorerSettings {
        device: Device::Cpu,
        kind: Kind::Float,
        max_length: 64,
        batch_size,
    };
    ModelScorer::from_model(model, tokenizer, settings).unwrap()
}

fn tasks() -> Vec<Task> {
    (0..7)
        .map(|i| Task::single_turn(format!("t{i}"), format!("What is {i} + {i}?"), None))
        .collect()
}

const REPLIES: [&str; 7] = [
    "It is 0.",
    "2",
    "",
    "The answer, after a long and careful derivation that pads this row well past the others, is 4.",
    "6!",
    "I do not know.",
    "12",
];

#[test]
fn batched_scores_equal_one_at_a_time_scores() {
    let dir = minilm_dir();
    let tasks = tasks();
    let batch: Vec<Scoring<'_>> = tasks
        .iter()
        .zip(REPLIES)
        .map(|(task, response)| Scoring { task, response })
        .collect();
    // One model (the fresh head is random): the whole batch in chunks of 3, 3 and 1, then
    // each row as a batch of its own.
    let single = scorer(&dir, 3, false);
    let batched = single.score(&batch).unwrap();
    assert_eq!(batched.len(), 7);
    for (i, s) in batch.iter().enumerate() {
        let alone = single.score(std::slice::from_ref(s)).unwrap()[0].reward;
        let r = batched[i].reward;
        assert!(
            (r - alone).abs() < 1e-4,
            "row {i}: {r} batched vs {alone} alone"
        );
        assert_eq!(batched[i].parts["model"], r);
    }
    let distinct = batched
        .iter()
        .map(|s| s.reward.to_bits())
        .collect::<std::collections::HashSet<_>>();
    assert!(distinct.len() > 1, "the head sees the text: {batched:?}");
    assert!(single.score(&[]).unwrap().is_empty());
}

#[test]
fn a_nan_score_is_an_error_naming_the_task_and_the_actor_keeps_answering() {
    let dir = minilm_dir();
    let tasks = tasks();
    let nan = scorer(&dir, 4, true);
    for _ in 0..2 {
        let err = nan
            .score(&[Scoring {
                task: &tasks[3],
                response: "x",
            }])
            .unwrap_err();
        assert!(
            err.to_string().contains("task t3") && err.to_string().contains("finite"),
            "{err}"
        );
    }
}
