//! Multi-turn episodes: the loop that alternates the policy's replies with an environment's
//! turns ([`Env::step`]) until every episode has ended. Generation is a callback that answers a
//! batch of open transcripts at once, so the same loop serves `rl eval` (an engine in the same
//! process) and the controller (rollout workers anywhere). A single-turn environment ends every
//! episode after its first reply, so single-turn tasks take exactly one round.

use crate::{
    chat::Message,
    config::MAX_TURNS,
    env::{Env, EnvError, Transition},
    task::Task,
};

/// One finished episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// Index of its task in the `tasks` given to [`run_episodes`].
    pub task: usize,
    /// Which of that task's episodes (0-based).
    pub sample: usize,
    /// The task's messages, then every reply and environment turn; the last message is the
    /// final reply.
    pub transcript: Vec<Message>,
    /// The environment's own reward, when it gave one (`Transition::Done(Some(r))`); `None`:
    /// the run's reward function scores [`reply`](Episode::reply).
    pub env_reward: Option<f64>,
    /// How many replies the policy made.
    pub replies: usize,
}

impl Episode {
    /// The final reply (what the reward function scores).
    pub fn reply(&self) -> &str {
        self.transcript.last().map_or("", |m| m.content.as_str())
    }

    /// The messages after the task's own: replies and environment turns.
    pub fn turns<'a>(&'a self, task: &Task) -> &'a [Message] {
        &self.transcript[task.messages.len().min(self.transcript.len())..]
    }
}

/// An open episode the policy must reply to.
#[derive(Debug, Clone, Copy)]
pub struct Turn<'a> {
    /// Index of its task.
    pub task: usize,
    /// Which of that task's episodes.
    pub sample: usize,
    /// Replies made so far (0 for the first).
    pub reply: usize,
    /// The conversation so far; the policy writes the next assistant turn.
    pub transcript: &'a [Message],
}

/// Why episodes could not be run.
#[derive(Debug, thiserror::Error)]
pub enum EpisodeError {
    /// The environment refused a step.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// Generation failed.
    #[error("generation failed: {0}")]
    Generate(Box<dyn std::error::Error + Send + Sync>),
    /// The callback answered the wrong number of turns.
    #[error("generation returned {got} replies for {want} open episodes")]
    Count {
        /// Replies returned.
        got: usize,
        /// Open episodes asked.
        want: usize,
    },
    /// The environment kept an episode going past [`MAX_TURNS`] replies.
    #[error(
        "environment {env}: task {task} was still going after {MAX_TURNS} replies; an environment must end every episode (Transition::Done) by then"
    )]
    Endless {
        /// The environment.
        env: String,
        /// The task's id.
        task: String,
    },
}

/// Runs `samples` episodes of each of `tasks` in `env`. Each round, `generate` gets every
/// open episode (in task, then sample order) and returns one reply per turn, in the same
/// order; the environment then ends or continues each. Returns the episodes in task, then
/// sample order.
pub fn run_episodes<E>(
    env: &mut dyn Env,
    tasks: &[Task],
    samples: usize,
    mut generate: impl FnMut(&[Turn<'_>]) -> Result<Vec<String>, E>,
) -> Result<Vec<Episode>, EpisodeError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut episodes: Vec<Episode> = tasks
        .iter()
        .enumerate()
        .flat_map(|(task, t)| {
            (0..samples).map(move |sample| Episode {
                task,
                sample,
                transcript: t.messages.clone(),
                env_reward: None,
                replies: 0,
            })
        })
        .collect();
    let mut open: Vec<usize> = (0..episodes.len()).collect();
    while !open.is_empty() {
        let turns: Vec<Turn<'_>> = open
            .iter()
            .map(|&i| {
                let e = &episodes[i];
                Turn {
                    task: e.task,
                    sample: e.sample,
                    reply: e.replies,
                    transcript: &e.transcript,
                }
            })
            .collect();
        let replies = generate(&turns).map_err(|e| EpisodeError::Generate(e.into()))?;
        if replies.len() != open.len() {
            return Err(EpisodeError::Count {
                got: replies.len(),
                want: open.len(),
            });
        }
        let mut still_open = Vec::new();
        for (i, reply) in open.into_iter().zip(replies) {
            let episode = &mut episodes[i];
            let task = &tasks[episode.task];
            let transition = env.step(task, &episode.transcript, &reply)?;
            episode.transcript.push(Message::assistant(reply));
            episode.replies += 1;
            match transition {
                Transition::Done(reward) => episode.env_reward = reward,
                Transition::Continue(_) if episode.replies >= MAX_TURNS as usize => {
                    return Err(EpisodeError::Endless {
                        env: env.name().to_owned(),
                        task: task.id.clone(),
                    });
                }
                Transition::Continue(message) => {
                    episode.transcript.push(message);
                    still_open.push(i);
                }
            }
        }
        open = still_open;
    }
    Ok(episodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Split, task::Task};

    /// Asks for "more" until a reply says "stop"; rewards the number of replies.
    struct Nag {
        forever: bool,
    }

    impl Env for Nag {
        fn name(&self) -> &str {
            "nag"
        }

        fn tasks(&mut self, _: Split, n: usize, _: u64) -> Result<Vec<Task>, EnvError> {
            Ok((0..n)
                .map(|i| Task::single_turn(i.to_string(), "go", None))
                .collect())
        }

        fn step(&mut self, _: &Task, t: &[Message], reply: &str) -> Result<Transition, EnvError> {
            if reply == "stop" && !self.forever {
                Ok(Transition::Done(Some(t.len() as f64)))
            } else {
                Ok(Transition::Continue(Message::tool("more")))
            }
        }
    }

    #[test]
    fn episodes_alternate_replies_and_env_turns_until_done() {
        let mut env = Nag { forever: false };
        let tasks = env.tasks(Split::Train, 2, 0).unwrap();
        let mut rounds = Vec::new();
        // Task 0 stops at its second reply, task 1 at its third; two samples each.
        let episodes = run_episodes(&mut env, &tasks, 2, |turns| {
            rounds.push(turns.len());
            Ok::<_, EnvError>(
                turns
                    .iter()
                    .map(|t| {
                        let last = if t.task == 0 { 1 } else { 2 };
                        if t.reply == last { "stop" } else { "again" }.to_owned()
                    })
                    .collect(),
            )
        })
        .unwrap();
        assert_eq!(rounds, [4, 4, 2]);
        assert_eq!(episodes.len(), 4);
        let e = &episodes[3];
        assert_eq!((e.task, e.sample, e.replies), (1, 1, 3));
        assert_eq!(e.reply(), "stop");
        assert_eq!(e.turns(&tasks[1]).len(), 5); // again, more, again, more, stop
        assert_eq!(e.env_reward, Some(5.0)); // the transcript before the last reply
        assert_eq!(episodes[0].replies, 2);
    }

    #[test]
    fn an_endless_environment_is_an_error_not_a_hang() {
        let mut env = Nag { forever: true };
        let tasks = env.tasks(Split::Train, 1, 0).unwrap();
        let err = run_episodes(&mut env, &tasks, 1, |turns| {
            Ok::<_, EnvError>(vec!["x".to_owned(); turns.len()])
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("still going after 16 replies"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_reply_count_is_an_error() {
        let mut env = Nag { forever: false };
        let tasks = env.tasks(Split::Train, 2, 0).unwrap();
        let err = run_episodes(&mut env, &tasks, 1, |_| Ok::<_, EnvError>(vec![])).unwrap_err();
        assert!(
            matches!(err, EpisodeError::Count { got: 0, want: 2 }),
            "{err}"
        );
    }
}
