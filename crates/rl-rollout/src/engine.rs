//! The generation engine: batched prefill and decode over a slot-based KV cache with continuous
//! batching. Requests are submitted with a sink for their results and advance one [`Engine::step`]
//! at a time, so new submissions join a running batch; a finished completion's slot is refilled
//! from the queue before the next decode step; the `n` completions of a prompt share one
//! prefill; every slot keeps its own length, so no row is ever left-padded. The KV cache grows
//! with the slots and lengths in use, up to `max_batch` × `max_seq_len`.

use std::{
    cell::Cell,
    collections::{BTreeMap, BTreeSet, VecDeque},
    sync::{Arc, mpsc},
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use rl_core::rng::splitmix64;
use rl_model::{CachedPass, CausalLm, KvCache, hf::LoadedModel, tokenizer::Tokenizer};
use tch::{Device, Kind, Tensor, nn::VarStore};

use crate::{
    Completion, Event, GenerateRequest, Prompt, RequestError, RolloutError, SamplingParams,
    graphs::{self, DecodeGraphs},
    prefill::{self, Queued},
    sampler::{RowSampling, sample},
    stop::StopCondition,
};

/// A sequence that stopped: its submission, and its completion or why it has none.
type Finished = (u64, Result<Completion, RequestError>);

/// Most completions an engine decodes together ([`EngineConfig::max_batch`]), as the config
/// bounds `rollout.max_batch`.
pub const MAX_BATCH: i64 = rl_core::config::MAX_BATCH as i64;

/// Sizes of the engine's batch and cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Completions decoded together: the KV cache's slots, 1 to [`MAX_BATCH`]. The cache
    /// allocates only the slots in use (growing as more are), so a large value costs memory
    /// only when that many completions run.
    pub max_batch: i64,
    /// Tokens per completion, prompt included (the cache's capacity); None: the model's
    /// context, at most 2048.
    pub max_seq_len: Option<i64>,
    /// Most prompt tokens (rows × longest prompt) prefilled in one forward pass.
    pub max_prefill_tokens: i64,
    /// On CUDA, replay decode steps as CUDA graphs (one per batch and cache-read size). A
    /// capture failure falls back to eager decoding with a warning. Off by default until the
    /// capture path has been verified on a GPU.
    pub cuda_graphs: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_batch: 64,
            max_seq_len: None,
            max_prefill_tokens: 8192,
            cuda_graphs: false,
        }
    }
}

/// Where a submission's results go. Its remaining work is cancelled once its receiver is
/// gone: when sending returns false, or, for sinks that can tell, as soon as the engine sees
/// it closed at the start of a step, without waiting for the next result.
pub struct Sink {
    send: Box<dyn FnMut(Event) -> bool + Send>,
    closed: Option<Box<dyn Fn() -> bool + Send>>,
}

impl Sink {
    /// Results go to `send`, which returns false once nobody receives them.
    pub fn new(send: impl FnMut(Event) -> bool + Send + 'static) -> Self {
        Self {
            send: Box::new(send),
            closed: None,
        }
    }

    /// Also asks `closed` before every step whether the receiver is gone.
    pub fn closed_when(mut self, closed: impl Fn() -> bool + Send + 'static) -> Self {
        self.closed = Some(Box::new(closed));
        self
    }

    fn send(&mut self, event: Event) -> bool {
        (self.send)(event)
    }

    fn is_closed(&self) -> bool {
        self.closed.as_ref().is_some_and(|closed| closed())
    }
}

impl From<tokio::sync::mpsc::UnboundedSender<Event>> for Sink {
    fn from(events: tokio::sync::mpsc::UnboundedSender<Event>) -> Self {
        let probe = events.clone();
        Self::new(move |event| events.send(event).is_ok()).closed_when(move || probe.is_closed())
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").finish_non_exhaustive()
    }
}

/// A submission: its sink and how many completions each of its requests still expects.
struct Submission {
    sink: Sink,
    owed: BTreeMap<usize, u32>,
}

/// Decode steps read the cache in multiples of this many positions.
const KV_BLOCK: i64 = 64;

/// A policy replica with its tokenizer and KV cache, generating completions.
pub struct Engine {
    model: Box<dyn CausalLm>,
    vs: VarStore,
    tokenizer: Tokenizer,
    cache: KvCache,
    config: EngineConfig,
    vocab: i64,
    version: u64,
    graphs: Option<DecodeGraphs>,
    queue: VecDeque<Job>,
    slots: Vec<Option<Sequence>>,
    submissions: BTreeMap<u64, Submission>,
    next_submission: u64,
    /// Reads of sampled tokens left before one is made to fail (tests of failure handling).
    read_fault: Cell<Option<u32>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("capacity", &self.cache.capacity())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A request's pending completions.
struct Job {
    submission: u64,
    request: usize,
    prompt: Arc<[u32]>,
    params: Arc<SamplingParams>,
    stop: Arc<StopCondition>,
    seed: u64,
    next_sample: u32,
}

/// A completion in progress, in one cache slot.
struct Sequence {
    submission: u64,
    request: usize,
    sample: u32,
    prompt: Arc<[u32]>,
    params: Arc<SamplingParams>,
    stop: Arc<StopCondition>,
    rng: StdRng,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
}

impl Sequence {
    /// Position of the next input token (its last sampled one).
    fn position(&self) -> i64 {
        (self.prompt.len() + self.tokens.len()) as i64 - 1
    }
}

impl Engine {
    /// An engine over `loaded` (its device and precision) with `tokenizer`; the cache is
    /// allocated as work arrives.
    pub fn new(
        loaded: LoadedModel,
        tokenizer: Tokenizer,
        config: EngineConfig,
    ) -> Result<Self, RolloutError> {
        let context = ["max_position_embeddings", "n_positions"]
            .iter()
            .find_map(|k| loaded.config_json.get(k).and_then(|v| v.as_i64()));
        let capacity = match (config.max_seq_len, context) {
            (Some(n), Some(c)) if n > c => {
                return Err(RolloutError::Config(format!(
                    "max_seq_len = {n} exceeds the model's context of {c} tokens"
                )));
            }
            (Some(n), _) => n,
            (None, Some(c)) => c.min(2048),
            (None, None) => 2048,
        };
        if !(1..=MAX_BATCH).contains(&config.max_batch) {
            return Err(RolloutError::Config(format!(
                "max_batch = {}: completions decoded together must be 1 to {MAX_BATCH}",
                config.max_batch
            )));
        }
        if capacity < 2 || config.max_prefill_tokens < 1 {
            return Err(RolloutError::Config(format!(
                "max_seq_len = {capacity}, max_prefill_tokens = {}: need at least 2 and 1",
                config.max_prefill_tokens
            )));
        }
        let model = loaded.model;
        let head = model.lm_head();
        let (vocab, kind, device) = (head.size()[0], head.kind(), head.device());
        let cache = KvCache::new(
            model.cache_shape(),
            config.max_batch,
            capacity,
            kind,
            device,
        );
        Ok(Self {
            model,
            vs: loaded.vs,
            tokenizer,
            cache,
            config: config.clone(),
            vocab,
            version: 0,
            graphs: (config.cuda_graphs && graphs::supported(device))
                .then(|| DecodeGraphs::new(device, true)),
            queue: VecDeque::new(),
            slots: (0..config.max_batch).map(|_| None).collect(),
            submissions: BTreeMap::new(),
            next_submission: 0,
            read_fault: Cell::new(None),
        })
    }

    /// The tokenizer prompts are encoded with.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Version of the weights now in place (0 until the first update).
    pub fn policy_version(&self) -> u64 {
        self.version
    }

    /// Decodes with the fixed-shape steps of the CUDA-graph path (batch rounded up to a power
    /// of two, one step per shape) but eagerly, without capture: lets CPU tests check that path.
    #[doc(hidden)]
    pub fn with_fixed_shape_decode(mut self) -> Self {
        self.graphs = Some(DecodeGraphs::new(self.device(), false));
        self
    }

    /// Makes the read of sampled tokens after `reads` more good ones fail, as a device error
    /// surfacing there would: lets tests check that such a failure fails its batch.
    #[doc(hidden)]
    pub fn fail_sample_read_after(&mut self, reads: u32) {
        self.read_fault.set(Some(reads));
    }

    /// Tokens per completion, prompt included.
    pub fn max_seq_len(&self) -> i64 {
        self.cache.capacity()
    }

    /// Completions decoded together.
    pub fn max_batch(&self) -> i64 {
        self.cache.slots()
    }

    /// Bytes the KV cache takes now: it grows with the slots and lengths in use.
    pub fn cache_bytes(&self) -> i64 {
        self.cache.allocated_bytes()
    }

    /// Device the replica lives on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Copies `tensors` (HF names, any device and float precision) into the weights in place
    /// and sets the policy version. Every name must exist with the same shape and `version`
    /// must be newer than the current one; otherwise nothing is changed.
    pub fn update_weights(
        &mut self,
        version: u64,
        tensors: &[(String, Tensor)],
    ) -> Result<(), RolloutError> {
        if version <= self.version {
            return Err(RolloutError::Weights(format!(
                "version {version} is not newer than the current version {}",
                self.version
            )));
        }
        let vars = self.vs.variables();
        let mut targets = Vec::with_capacity(tensors.len());
        for (name, tensor) in tensors {
            let Some(var) = vars.get(name) else {
                return Err(RolloutError::Weights(format!(
                    "the model has no weight named {name:?}"
                )));
            };
            if var.size() != tensor.size() {
                return Err(RolloutError::Weights(format!(
                    "{name}: shape {:?} sent, the model's is {:?}",
                    tensor.size(),
                    var.size()
                )));
            }
            if !tensor.is_floating_point() {
                return Err(RolloutError::Weights(format!(
                    "{name}: dtype {:?} is not a float type",
                    tensor.kind()
                )));
            }
            targets.push((var.shallow_clone(), tensor));
        }
        tch::no_grad(|| {
            for (mut var, tensor) in targets {
                var.copy_(tensor);
            }
        });
        self.version = version;
        Ok(())
    }

    /// Whether nothing is queued or being decoded.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.slots.iter().all(Option::is_none)
    }

    /// Queues `requests`; their completions (and refusals) go to `sink` as they finish, over
    /// the following [`step`](Self::step)s. Bad requests are refused at once, alone.
    pub fn submit(&mut self, requests: &[GenerateRequest], mut sink: Sink) {
        let id = self.next_submission;
        self.next_submission += 1;
        let mut owed = BTreeMap::new();
        for (request, r) in requests.iter().enumerate() {
            match self.job(id, request, r) {
                Ok(job) => {
                    owed.insert(request, job.params.n);
                    self.queue.push_back(job);
                }
                Err(message) => {
                    if !sink.send(Err(RequestError { request, message })) {
                        self.cancel(id);
                        return;
                    }
                }
            }
        }
        if !owed.is_empty() {
            self.submissions.insert(id, Submission { sink, owed });
        }
    }

    /// One round of work: submissions whose receivers are gone are dropped, queued completions
    /// move into free slots (prefill), then every busy slot decodes one token. Finished
    /// completions go to their sinks.
    pub fn step(&mut self) {
        let _no_grad = tch::no_grad_guard();
        let gone: Vec<u64> = self
            .submissions
            .iter()
            .filter(|(_, sub)| sub.sink.is_closed())
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.cancel(id);
        }
        let mut finished = self.prefill();
        if self.slots.iter().any(Option::is_some) {
            finished.extend(self.decode());
        }
        for (id, completion) in finished {
            match completion {
                Ok(completion) => self.deliver(id, completion),
                Err(e) => self.fail(BTreeSet::from([(id, e.request)]), &e.message),
            }
        }
    }

    /// Runs `requests` to the end, calling `emit` as each completion finishes (or a request is
    /// refused); the engine's other submissions advance meanwhile.
    pub fn generate(&mut self, requests: &[GenerateRequest], emit: &mut dyn FnMut(Event)) {
        let (tx, rx) = mpsc::channel();
        self.submit(requests, Sink::new(move |event| tx.send(event).is_ok()));
        while !self.is_idle() {
            self.step();
            rx.try_iter().for_each(&mut *emit);
        }
        rx.try_iter().for_each(emit);
    }

    /// Refuses every request still queued or decoding with `message` (after an engine failure)
    /// and empties the engine.
    pub fn fail_all(&mut self, message: &str) {
        let mut pending = BTreeSet::new();
        pending.extend(self.queue.iter().map(|j| (j.submission, j.request)));
        pending.extend(
            self.slots
                .iter()
                .flatten()
                .map(|s| (s.submission, s.request)),
        );
        self.queue.clear();
        self.slots.iter_mut().for_each(|s| *s = None);
        for (id, request) in pending {
            if let Some(sub) = self.submissions.get_mut(&id) {
                let message = message.to_owned();
                let _ = sub.sink.send(Err(RequestError { request, message }));
            }
        }
        self.submissions.clear();
    }

    /// Hands a finished completion to its submission's sink; a sink that is gone cancels the
    /// rest of its submission.
    fn deliver(&mut self, id: u64, completion: Completion) {
        let Some(sub) = self.submissions.get_mut(&id) else {
            return;
        };
        if let Some(owed) = sub.owed.get_mut(&completion.request) {
            *owed = owed.saturating_sub(1);
            if *owed == 0 {
                sub.owed.remove(&completion.request);
            }
        }
        let open = sub.sink.send(Ok(completion));
        self.settle(id, open);
    }

    /// Refuses each of `requests` (submission, request) with `message`: their queued and
    /// running completions are dropped and their slots freed; the other requests go on.
    fn fail(&mut self, requests: BTreeSet<(u64, usize)>, message: &str) {
        self.queue
            .retain(|j| !requests.contains(&(j.submission, j.request)));
        for slot in &mut self.slots {
            if slot
                .as_ref()
                .is_some_and(|s| requests.contains(&(s.submission, s.request)))
            {
                *slot = None;
            }
        }
        for (id, request) in requests {
            let Some(sub) = self.submissions.get_mut(&id) else {
                continue;
            };
            if sub.owed.remove(&request).is_some() {
                let message = message.to_owned();
                let open = sub.sink.send(Err(RequestError { request, message }));
                self.settle(id, open);
            }
        }
    }

    /// After an event of submission `id`: cancels it if its sink is gone (`open` false), ends
    /// it once nothing is owed.
    fn settle(&mut self, id: u64, open: bool) {
        if !open {
            self.cancel(id);
        } else if self.submissions.get(&id).is_some_and(|s| s.owed.is_empty()) {
            self.submissions.remove(&id);
        }
    }

    /// Drops submission `id`'s queued and running completions and frees their slots.
    fn cancel(&mut self, id: u64) {
        self.queue.retain(|j| j.submission != id);
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|s| s.submission == id) {
                *slot = None;
            }
        }
        self.submissions.remove(&id);
    }

    /// Validates a request against the model and the cache.
    fn job(&self, submission: u64, request: usize, r: &GenerateRequest) -> Result<Job, String> {
        r.params.validate()?;
        let prompt = match &r.prompt {
            Prompt::Text(text) => {
                self.tokenizer
                    .encode(text, true)
                    .map_err(|e| format!("cannot tokenize the prompt: {e}"))?
                    .ids
            }
            Prompt::Tokens(ids) => ids.clone(),
        };
        if prompt.is_empty() {
            return Err("the prompt is empty: give at least one token".into());
        }
        let vocab = self.vocab;
        if let Some(id) = prompt.iter().find(|&&id| i64::from(id) >= vocab) {
            return Err(format!(
                "prompt token id {id} is outside the vocabulary of {vocab}"
            ));
        }
        if let Some(id) = r
            .params
            .stop_token_ids
            .iter()
            .find(|&&id| i64::from(id) >= vocab)
        {
            return Err(format!(
                "unknown stop token id {id}: the vocabulary has {vocab} tokens"
            ));
        }
        let (len, capacity) = (prompt.len() as i64, self.cache.capacity());
        if len >= capacity {
            return Err(format!(
                "the prompt has {len} tokens; the context holds {capacity} (prompt and completion): shorten it"
            ));
        }
        let max_new = i64::from(r.params.max_new_tokens);
        if len + max_new > capacity {
            return Err(format!(
                "max_new_tokens = {max_new} with a {len}-token prompt exceeds the context of {capacity} tokens: use at most {}",
                capacity - len
            ));
        }
        Ok(Job {
            submission,
            request,
            prompt: prompt.into(),
            stop: Arc::new(StopCondition::new(&r.params, self.tokenizer.eos_ids())),
            params: Arc::new(r.params.clone()),
            seed: r.params.seed.unwrap_or_else(rand::random),
            next_sample: 0,
        })
    }

    /// Moves queued completions into free slots, prefilling each prompt once, and samples their
    /// first tokens. A failed sampling read fails the requests of the new sequences.
    fn prefill(&mut self) -> Vec<Finished> {
        let free: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].is_none())
            .collect();
        let queued = self.queue.iter().map(|j| Queued {
            prompt_len: j.prompt.len(),
            samples_left: j.params.n - j.next_sample,
        });
        let plan = prefill::plan(queued, &free, self.config.max_prefill_tokens);
        if plan.rows.is_empty() {
            return Vec::new();
        }
        let mut prompts = Vec::with_capacity(plan.rows.len());
        let mut placed = Vec::new();
        for row in &plan.rows {
            let job = &mut self.queue[row.job];
            prompts.push(job.prompt.clone());
            for &slot in &row.slots {
                placed.push((slot, new_sequence(job)));
                job.next_sample += 1;
            }
        }
        while self
            .queue
            .front()
            .is_some_and(|j| j.next_sample == j.params.n)
        {
            self.queue.pop_front();
        }
        let rows: Vec<&[u32]> = prompts.iter().map(|p| &p[..]).collect();
        let packed = prefill::pack(&rows, &plan);
        let slots = packed.dst.iter().max().map_or(0, |&s| s + 1);
        if let Err(e) = self.reserve(slots, plan.width as i64) {
            let requests = placed.iter().map(|(_, s)| (s.submission, s.request));
            self.fail(requests.collect(), &e.to_string());
            return Vec::new();
        }

        let device = self.device();
        let (b, t) = (plan.rows.len() as i64, plan.width as i64);
        let ids = Tensor::from_slice(&packed.ids)
            .view([b, t])
            .to_device(device);
        let mask = Tensor::from_slice(&packed.mask)
            .view([b, t])
            .to_device(device);
        let positions = Tensor::arange(t, (Kind::Int64, device))
            .unsqueeze(0)
            .expand([b, t], false);
        let window = self.model.sliding_window();
        let pass = CachedPass::prefill(&mask, &packed.src, &packed.dst, window);
        let hidden = self
            .model
            .hidden_states_cached(&ids, &positions, &pass, &mut self.cache);
        let h = hidden.size()[2];
        let last = Tensor::from_slice(&packed.last).to_device(device);
        let src = Tensor::from_slice(&packed.src).to_device(device);
        let hidden = hidden
            .view([b * t, h])
            .index_select(0, &last)
            .index_select(0, &src);

        if let Err(e) = self.sample_into(&hidden, placed.iter_mut().map(|(_, s)| Some(s))) {
            let requests = placed.iter().map(|(_, s)| (s.submission, s.request));
            self.fail(requests.collect(), &e.to_string());
            return Vec::new();
        }
        let mut finished = Vec::new();
        for (slot, seq) in placed {
            match self.finished(&seq) {
                Some(done) => finished.push(done),
                None => self.slots[slot] = Some(seq),
            }
        }
        finished
    }

    /// Makes the cache hold slots `0..slots` and positions `0..len` (rounded up to a read
    /// block); captured decode graphs point at the old tensors, so growth drops them.
    fn reserve(&mut self, slots: i64, len: i64) -> Result<(), RolloutError> {
        let grew = self
            .cache
            .reserve(slots, self.read_len(len))
            .map_err(|e| RolloutError::Engine(e.to_string()))?;
        if grew && let Some(graphs) = &mut self.graphs {
            graphs.clear();
        }
        Ok(())
    }

    /// `len` positions rounded up to whole read blocks, within the cache's capacity.
    fn read_len(&self, len: i64) -> i64 {
        let blocks = (len.max(1) + KV_BLOCK - 1) / KV_BLOCK;
        (blocks * KV_BLOCK).min(self.cache.capacity())
    }

    /// One decode step for every slot up to the last busy one.
    fn decode(&mut self) -> Vec<Finished> {
        let device = self.device();
        let busy = self
            .slots
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        let longest = self.slots[..busy]
            .iter()
            .flatten()
            .map(Sequence::position)
            .max()
            .unwrap_or(0)
            + 1;
        let kv_len = self.read_len(longest);
        let rows = match self.graphs {
            Some(_) => graphs::padded_batch(busy, self.cache.slots()),
            None => busy as i64,
        };
        if let Err(e) = self.reserve(rows, kv_len) {
            let requests = self.slots.iter().flatten();
            let requests = requests.map(|s| (s.submission, s.request)).collect();
            self.fail(requests, &e.to_string());
            return Vec::new();
        }
        let mut slots = std::mem::take(&mut self.slots);
        let ids: Vec<i64> = slots[..busy]
            .iter()
            .map(|s| {
                s.as_ref()
                    .map_or(0, |s| i64::from(s.tokens[s.tokens.len() - 1]))
            })
            .collect();
        let positions: Vec<i64> = slots[..busy]
            .iter()
            .map(|s| s.as_ref().map_or(0, Sequence::position))
            .collect();
        let graphed = match &mut self.graphs {
            Some(graphs) => {
                let step = graphs.step(
                    self.model.as_ref(),
                    &mut self.cache,
                    &ids,
                    &positions,
                    kv_len,
                );
                step.map_err(|e| tracing::warn!("{e}; decoding eagerly from now on"))
                    .ok()
            }
            None => None,
        };
        if graphed.is_none() {
            self.graphs = None;
        }
        let hidden = graphed.unwrap_or_else(|| {
            let b = busy as i64;
            let ids = Tensor::from_slice(&ids).view([b, 1]).to_device(device);
            let positions = Tensor::from_slice(&positions).to_device(device);
            let pass = CachedPass::decode(&positions, kv_len, self.model.sliding_window());
            self.model
                .hidden_states_cached(&ids, &positions.view([b, 1]), &pass, &mut self.cache)
                .view([b, -1])
        });
        let read = self.sample_into(&hidden, slots[..busy].iter_mut().map(Option::as_mut));
        if let Err(e) = read {
            let requests = slots.iter().flatten().map(|s| (s.submission, s.request));
            let requests = requests.collect();
            self.slots = slots;
            self.fail(requests, &e.to_string());
            return Vec::new();
        }
        let mut finished = Vec::new();
        for slot in &mut slots[..busy] {
            if let Some(done) = slot.as_ref().and_then(|s| self.finished(s)) {
                finished.push(done);
                *slot = None;
            }
        }
        self.slots = slots;
        finished
    }

    /// Samples the next token of each sequence from its final hidden state (`hidden` `[b, h]`,
    /// one row per item; `None` rows are idle) and appends it with its log-prob. When the
    /// sampled tokens cannot be read, no sequence changes.
    fn sample_into<'a>(
        &self,
        hidden: &Tensor,
        seqs: impl Iterator<Item = Option<&'a mut Sequence>>,
    ) -> Result<(), RolloutError> {
        let mut seqs: Vec<Option<&mut Sequence>> = seqs.collect();
        let rows: Vec<RowSampling> = seqs
            .iter_mut()
            .map(|s| match s {
                Some(s) => RowSampling::new(&s.params, s.rng.random()),
                None => RowSampling::idle(),
            })
            .collect();
        let logits = hidden.matmul(&self.model.lm_head().tr());
        let mut sampled = sample(&logits, &rows);
        match self.read_fault.get() {
            Some(0) => {
                self.read_fault.set(None);
                sampled.tokens = sampled.tokens.unsqueeze(0);
            }
            Some(n) => self.read_fault.set(Some(n - 1)),
            None => {}
        }
        let read = sampled.read(rows.len(), self.vocab)?;
        for (seq, (token, logprob)) in seqs.into_iter().zip(read) {
            if let Some(seq) = seq {
                seq.tokens.push(token);
                seq.logprobs.push(logprob);
            }
        }
        Ok(())
    }

    /// `seq` as a completion (with its submission) if its last token ended it.
    fn finished(&self, seq: &Sequence) -> Option<Finished> {
        let finish_reason = seq.stop.check(&seq.tokens, &self.tokenizer)?;
        let text = match self.tokenizer.decode(&seq.tokens, true) {
            Ok(text) => text,
            Err(e) => {
                let message = format!("cannot decode the completion's tokens: {e}");
                let request = seq.request;
                return Some((seq.submission, Err(RequestError { request, message })));
            }
        };
        Some((
            seq.submission,
            Ok(Completion {
                request: seq.request,
                sample: seq.sample,
                prompt_ids: seq.prompt.to_vec(),
                token_ids: seq.tokens.clone(),
                text: seq.stop.truncate(text),
                finish_reason,
                logprobs: seq.logprobs.clone(),
                policy_version: self.version,
            }),
        ))
    }
}

/// The next completion of `job`, with its own random generator: seeded from the request's seed
/// and its index, so it does not depend on what else is batched.
fn new_sequence(job: &Job) -> Sequence {
    let seed = splitmix64(job.seed ^ splitmix64(u64::from(job.next_sample)));
    Sequence {
        submission: job.submission,
        request: job.request,
        sample: job.next_sample,
        prompt: job.prompt.clone(),
        params: job.params.clone(),
        stop: job.stop.clone(),
        rng: StdRng::seed_from_u64(seed),
        tokens: Vec::new(),
        logprobs: Vec::new(),
    }
}
