//! The calculator environment through the multi-turn episode loop: a scripted policy that calls
//! the tool on the question and answers with its result solves every task under the
//! environment's verifier; one that only ever calls the tool is stopped at `env.max_turns`.

#![allow(clippy::unwrap_used)]

use rl_core::{
    Role, Scoring, Split, Turn,
    config::{EnvConfig, EnvName},
    run_episodes,
};

fn config(max_turns: u32) -> EnvConfig {
    EnvConfig {
        name: EnvName::Calculator,
        operand_range: [100, 999],
        max_turns,
        ..EnvConfig::default()
    }
}

/// The expression of the question in `turn`'s first user message ("What is 753 * 557?…").
fn question(turn: &Turn<'_>) -> String {
    let user = turn
        .transcript
        .iter()
        .find(|m| m.role == Role::User)
        .unwrap();
    let rest = user.content.strip_prefix("What is ").unwrap();
    rest[..rest.find('?').unwrap()].to_owned()
}

#[test]
fn a_policy_that_uses_the_tool_solves_every_task() {
    let config = config(4);
    let mut env = rl_envs::by_name(&config).unwrap();
    let verifier = rl_envs::verifier(&config, &Default::default()).unwrap();
    let tasks = env.tasks(Split::Eval, 20, 5).unwrap();
    let episodes = run_episodes(env.as_mut(), &tasks, 2, |turns| {
        Ok::<_, std::convert::Infallible>(
            turns
                .iter()
                .map(|t| match t.transcript.last().unwrap() {
                    m if m.role == Role::Tool => {
                        let value = m.content.trim_start_matches("<result>");
                        let value = value.trim_end_matches("</result>");
                        format!("The result is in. <answer>{value}</answer>")
                    }
                    _ => format!("Let me compute. <calc>{}</calc>", question(t)),
                })
                .collect(),
        )
    })
    .unwrap();
    assert_eq!(episodes.len(), 40);
    for (e, task) in episodes.iter().map(|e| (e, &tasks[e.task])) {
        assert_eq!(e.replies, 2);
        let turns = e.turns(task);
        assert_eq!(turns[1].role, Role::Tool);
        assert!(turns[1].content.starts_with("<result>"), "{:?}", turns[1]);
        let score = verifier
            .score(&[Scoring {
                task,
                response: e.reply(),
            }])
            .unwrap();
        assert_eq!(
            score[0].reward,
            1.0,
            "{:?} for {:?}",
            e.reply(),
            task.answer
        );
    }
}

#[test]
fn a_policy_that_never_answers_stops_at_max_turns_and_scores_zero() {
    let config = config(3);
    let mut env = rl_envs::by_name(&config).unwrap();
    let verifier = rl_envs::verifier(&config, &Default::default()).unwrap();
    let tasks = env.tasks(Split::Train, 5, 1).unwrap();
    let episodes = run_episodes(env.as_mut(), &tasks, 1, |turns| {
        Ok::<_, std::convert::Infallible>(vec!["<calc>(1 + 2) * x</calc>".to_owned(); turns.len()])
    })
    .unwrap();
    for e in &episodes {
        let task = &tasks[e.task];
        assert_eq!(e.replies, 3);
        assert!(e.turns(task)[1].content.starts_with("<error>"));
        let score = verifier
            .score(&[Scoring {
                task,
                response: e.reply(),
            }])
            .unwrap();
        assert_eq!(score[0].reward, 0.0);
    }
}
