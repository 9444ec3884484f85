//! The generation phase: the episodes of a step's tasks, sampled by the rollout workers. The
//! prompts are spread across the workers; a task's first turn is one request for all its
//! samples (one shared prefill); a multi-turn environment answers each reply through
//! [`Env::step`] and the next round continues every open episode. Each episode keeps its exact
//! sampled tokens and log-probs ([`TokenTranscript`]). A request a worker refuses drops that
//! episode (counted, never trained on). A worker that dies (it no longer answers Health) or
//! hangs (no completion within the plan's deadline, and then no Health answer) is [`Lost`]: what it had not finished goes
//! to the others, and later rounds pass it over until it is replaced.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use rl_core::{Env, Episode, Task, Turn, run_episodes};
use rl_model::tokenizer::Tokenizer;
use rl_rollout::{FinishReason, GenerateRequest, Prompt, RolloutWorker, SamplingParams};

use super::{
    TrainError,
    seeds::derive,
    transcript::{TokenTranscript, continuation, render_prompt},
};

/// One finished episode with its tokens.
#[derive(Debug, Clone)]
pub struct Sampled {
    /// The episode (its transcript as text, the environment's reward if it gave one).
    pub episode: Episode,
    /// Its tokens, log-probs and loss mask.
    pub tokens: TokenTranscript,
    /// Why its last reply ended.
    pub finish: FinishReason,
    /// Why it cannot be trained on (a refused request), if so.
    pub dropped: Option<String>,
    /// Policy version of the weights that sampled its last reply.
    pub policy_version: u64,
    /// Whether its prompt was cut to `rollout.max_prompt_tokens`.
    pub truncated: bool,
}

/// How to sample a batch of episodes.
#[derive(Debug, Clone)]
pub struct RolloutPlan {
    /// Sampling parameters of every request (`n` and `seed` are set per request).
    pub params: SamplingParams,
    /// Episodes per task.
    pub samples: usize,
    /// Longest first prompt, in tokens; longer ones lose their start.
    pub max_prompt_tokens: usize,
    /// Base seed of the requests; each request's seed is derived from it and its position.
    pub seed: u64,
    /// A worker that yields no completion for this long, and then answers no Health check
    /// within it either, is hung.
    pub deadline: Duration,
}

/// The rollout workers (by index) found dead or hung: generation and weight syncs pass them
/// over until they are replaced.
pub type Lost = Mutex<BTreeSet<usize>>;

/// The indices in `lost`.
pub fn lost_ones(lost: &Lost) -> BTreeSet<usize> {
    lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Adds worker `w` to `lost`, saying why.
pub fn lose(lost: &Lost, w: usize, why: &str) {
    tracing::warn!("rollout worker {w} {why}; its requests go to the others");
    lost.lock().unwrap_or_else(|e| e.into_inner()).insert(w);
}

/// Samples `plan.samples` episodes of each of `tasks` with `workers` (those not `lost`), in
/// (task, sample) order.
pub fn sample(
    runtime: &tokio::runtime::Runtime,
    (workers, lost): (&[Arc<dyn RolloutWorker>], &Lost),
    tokenizer: &Tokenizer,
    env: &mut dyn Env,
    tasks: &[Task],
    plan: &RolloutPlan,
) -> Result<Vec<Sampled>, TrainError> {
    let samples = plan.samples;
    let n = tasks.len() * samples;
    let mut tracks: Vec<Track> = (0..n).map(|_| Track::default()).collect();
    let episodes = run_episodes(env, tasks, samples, |turns| {
        let round = round((workers, lost), tokenizer, tasks, turns, plan, &mut tracks);
        runtime.block_on(round)
    });
    let episodes = episodes.map_err(|e| match e {
        rl_core::EpisodeError::Generate(inner) => match inner.downcast::<TrainError>() {
            Ok(train) => *train,
            Err(other) => TrainError::Rollout(other.to_string()),
        },
        other => TrainError::Rollout(other.to_string()),
    })?;
    Ok(episodes
        .into_iter()
        .zip(tracks)
        .map(|(episode, t)| Sampled {
            episode,
            tokens: t.tokens,
            finish: t.finish,
            dropped: t.dropped,
            policy_version: t.version,
            truncated: t.truncated,
        })
        .collect())
}

/// What one episode has gathered so far.
#[derive(Debug, Clone)]
struct Track {
    tokens: TokenTranscript,
    finish: FinishReason,
    dropped: Option<String>,
    version: u64,
    truncated: bool,
    /// Text of the end-of-sequence token its last reply ended with.
    ended_with: Option<String>,
    /// The text of the reply sampled this round, until the environment takes it.
    reply: Option<String>,
}

impl Default for Track {
    fn default() -> Self {
        Self {
            tokens: TokenTranscript::default(),
            finish: FinishReason::Length,
            dropped: None,
            version: 0,
            truncated: false,
            ended_with: None,
            reply: None,
        }
    }
}

/// One request and the episodes (indices into the tracks) its `n` samples belong to.
struct Planned {
    request: GenerateRequest,
    episodes: Vec<usize>,
}

/// One generation round: a reply for every open turn, in order. Refused turns answer "" and
/// are marked dropped.
async fn round(
    (workers, lost): (&[Arc<dyn RolloutWorker>], &Lost),
    tokenizer: &Tokenizer,
    tasks: &[Task],
    turns: &[Turn<'_>],
    plan: &RolloutPlan,
    tracks: &mut [Track],
) -> Result<Vec<String>, TrainError> {
    let samples = plan.samples;
    let index = |t: &Turn<'_>| t.task * samples + t.sample;
    let mut planned: Vec<Planned> = Vec::new();
    // First turns: one request per task for all its samples (they share one prefill).
    let mut first: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for t in turns {
        if t.reply == 0 {
            first.entry(t.task).or_default().push(index(t));
        }
    }
    for (task, episodes) in first {
        let (prompt, truncated) =
            render_prompt(tokenizer, &tasks[task].messages, plan.max_prompt_tokens)
                .map_err(|e| TrainError::Rollout(format!("task {}: {e}", tasks[task].id)))?;
        for &e in &episodes {
            tracks[e].tokens = TokenTranscript::new(prompt.clone());
            tracks[e].truncated = truncated;
        }
        let seed = derive(plan.seed, task as u64, 0);
        planned.push(Planned {
            request: request(Prompt::Tokens(prompt), plan, episodes.len(), seed),
            episodes,
        });
    }
    // Later turns: the episode's own tokens, joined to the environment's turn.
    for t in turns.iter().filter(|t| t.reply > 0) {
        let e = index(t);
        let track = &mut tracks[e];
        if track.dropped.is_some() {
            continue;
        }
        let (next, before) = t
            .transcript
            .split_last()
            .ok_or_else(|| TrainError::Rollout("an open episode has no transcript".into()))?;
        let (reply, before) = before
            .split_last()
            .ok_or_else(|| TrainError::Rollout("a later turn has no earlier reply".into()))?;
        let joined = continuation(
            tokenizer,
            before,
            &reply.content,
            track.ended_with.as_deref(),
            next,
        )
        .map_err(|e| TrainError::Rollout(e.to_string()))?;
        let prompt = match joined {
            Some(tokens) => {
                track.tokens.push_context(&tokens);
                track.tokens.tokens.clone()
            }
            None => {
                // The template does not extend: train on this reply only, after the re-rendered
                // conversation.
                let (ids, _) = render_prompt(tokenizer, t.transcript, usize::MAX)
                    .map_err(|e| TrainError::Rollout(e.to_string()))?;
                track.tokens = TokenTranscript::new(ids.clone());
                ids
            }
        };
        let seed = derive(plan.seed, e as u64, t.reply as u64);
        planned.push(Planned {
            request: request(Prompt::Tokens(prompt), plan, 1, seed),
            episodes: vec![e],
        });
    }

    // Spread the requests over the workers and collect every completion. A worker that dies
    // (its stream breaks and it no longer answers Health) or hangs hands what it did not finish
    // to the live ones: each completion has its own seed, so a request sent again gives the
    // same samples, and those already received are not taken twice.
    let gone = lost_ones(lost);
    let mut alive: Vec<bool> = (0..workers.len()).map(|w| !gone.contains(&w)).collect();
    let answers = |w: usize| async move {
        matches!(
            tokio::time::timeout(plan.deadline, workers[w].info()).await,
            Ok(Ok(_))
        )
    };
    let mut received = vec![false; tracks.len()];
    let mut pending: Vec<usize> = (0..planned.len()).collect();
    while !pending.is_empty() {
        let live: Vec<usize> = (0..workers.len()).filter(|&w| alive[w]).collect();
        if live.is_empty() {
            return Err(TrainError::Rollout(
                "every rollout worker is gone or hung: none is left to generate".into(),
            ));
        }
        let mut streams = Vec::new();
        let mut again: Vec<usize> = Vec::new();
        for (k, &w) in live.iter().enumerate() {
            let mine: Vec<usize> = pending
                .iter()
                .skip(k)
                .step_by(live.len())
                .copied()
                .collect();
            if mine.is_empty() {
                continue;
            }
            let requests = mine.iter().map(|&i| planned[i].request.clone()).collect();
            match tokio::time::timeout(plan.deadline, workers[w].generate(requests)).await {
                Ok(Ok(stream)) => streams.push((w, mine, stream)),
                Ok(Err(e)) if !answers(w).await => {
                    lose(lost, w, &format!("is gone ({e})"));
                    alive[w] = false;
                    again.extend(mine);
                }
                Err(_) => {
                    lose(lost, w, "did not take its requests in time (hung)");
                    alive[w] = false;
                    again.extend(mine);
                }
                Ok(Err(e)) => {
                    return Err(TrainError::Rollout(format!("rollout worker {w}: {e}")));
                }
            }
        }
        let mut refused: Vec<(usize, usize, String)> = Vec::new();
        for (w, mine, mut stream) in streams {
            loop {
                let event = match tokio::time::timeout(plan.deadline, stream.recv()).await {
                    Ok(Some(event)) => event,
                    Ok(None) => break,
                    // Slow but alive (long completions): keep waiting.
                    Err(_) if answers(w).await => continue,
                    Err(_) => {
                        let seconds = plan.deadline.as_secs_f64();
                        let why = format!(
                            "yielded nothing for {seconds} s and answers no Health check (hung)"
                        );
                        lose(lost, w, &why);
                        alive[w] = false;
                        let open = |i: &usize| planned[*i].episodes.iter().any(|&e| !received[e]);
                        again.extend(mine.iter().copied().filter(open));
                        break;
                    }
                };
                match event {
                    Ok(c) => {
                        let e = planned[mine[c.request]].episodes[c.sample as usize];
                        if std::mem::replace(&mut received[e], true) {
                            continue;
                        }
                        let track = &mut tracks[e];
                        track.tokens.push_sampled(&c.token_ids, &c.logprobs);
                        track.finish = c.finish_reason;
                        track.version = c.policy_version;
                        track.ended_with = c
                            .token_ids
                            .last()
                            .filter(|&&id| tokenizer.is_eos(id))
                            .and_then(|&id| tokenizer.id_to_token(id));
                        track.reply = Some(c.text);
                    }
                    Err(r) => refused.push((w, mine[r.request], r.message)),
                }
            }
        }
        pending = again;
        for (w, request, message) in refused {
            if alive[w] && !answers(w).await {
                lose(lost, w, &format!("is gone ({message})"));
                alive[w] = false;
            }
            if alive[w] {
                for &e in &planned[request].episodes {
                    tracks[e].dropped = Some(message.clone());
                }
            } else if !pending.contains(&request) {
                pending.push(request);
            }
        }
    }
    Ok(turns
        .iter()
        .map(|t| tracks[index(t)].reply.take().unwrap_or_default())
        .collect())
}

/// A request for `n` samples of `prompt` with the plan's parameters.
fn request(prompt: Prompt, plan: &RolloutPlan, n: usize, seed: u64) -> GenerateRequest {
    GenerateRequest {
        prompt,
        params: SamplingParams {
            n: n as u32,
            seed: Some(seed),
            ..plan.params.clone()
        },
    }
}
