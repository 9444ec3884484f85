//! Conversions between the `rl.v1` wire messages (`rl_proto::v1`) and rl-rollout's domain
//! types, in one place: requests and sampling parameters, completions and refusals, worker
//! info, tensor element types and bytes, and errors to gRPC statuses and back.

use rl_proto::v1 as pb;
use tch::{Device, Kind, Tensor};
use tonic::{Code, Status};

use crate::{
    Completion, Event, FinishReason, GenerateRequest, Prompt, RequestError, RolloutError,
    SamplingParams, WorkerInfo,
};

/// A domain request as sent.
pub(crate) fn request_to_proto(request: &GenerateRequest) -> pb::PromptRequest {
    let prompt = match &request.prompt {
        Prompt::Text(text) => pb::prompt_request::Prompt::Text(text.clone()),
        Prompt::Tokens(ids) => {
            pb::prompt_request::Prompt::Tokens(pb::TokenIds { ids: ids.clone() })
        }
    };
    pb::PromptRequest {
        prompt: Some(prompt),
        params: Some(params_to_proto(&request.params)),
    }
}

/// A received request; `Err` says what is wrong with it (the others go on).
pub(crate) fn request_from_proto(request: pb::PromptRequest) -> Result<GenerateRequest, String> {
    let prompt = match request.prompt {
        Some(pb::prompt_request::Prompt::Text(text)) => Prompt::Text(text),
        Some(pb::prompt_request::Prompt::Tokens(tokens)) => Prompt::Tokens(tokens.ids),
        None => return Err("the request has no prompt: set `text` or `tokens`".into()),
    };
    let params = request.params.map(params_from_proto).unwrap_or_default();
    Ok(GenerateRequest { prompt, params })
}

fn params_to_proto(p: &SamplingParams) -> pb::SamplingParams {
    pb::SamplingParams {
        n: p.n,
        temperature: p.temperature,
        top_p: p.top_p,
        top_k: p.top_k,
        min_p: p.min_p,
        max_new_tokens: p.max_new_tokens,
        stop_token_ids: p.stop_token_ids.clone(),
        stop: p.stop.clone(),
        ignore_eos: p.ignore_eos,
        seed: p.seed,
    }
}

fn params_from_proto(p: pb::SamplingParams) -> SamplingParams {
    SamplingParams {
        n: p.n,
        temperature: p.temperature,
        top_p: p.top_p,
        top_k: p.top_k,
        min_p: p.min_p,
        max_new_tokens: p.max_new_tokens,
        stop_token_ids: p.stop_token_ids,
        stop: p.stop,
        ignore_eos: p.ignore_eos,
        seed: p.seed,
    }
}

/// A completion or refusal as sent.
pub(crate) fn event_to_proto(event: Event) -> pb::GenerateEvent {
    let event = match event {
        Ok(c) => pb::generate_event::Event::Completion(pb::Completion {
            request: wire_index(c.request),
            sample: c.sample,
            prompt_ids: c.prompt_ids,
            token_ids: c.token_ids,
            text: c.text,
            finish_reason: match c.finish_reason {
                FinishReason::Stop => pb::FinishReason::Stop,
                FinishReason::Length => pb::FinishReason::Length,
            } as i32,
            logprobs: c.logprobs,
            policy_version: c.policy_version,
        }),
        Err(e) => pb::generate_event::Event::Error(pb::RequestError {
            request: wire_index(e.request),
            message: e.message,
        }),
    };
    pb::GenerateEvent { event: Some(event) }
}

/// A received completion or refusal; `Err` when the message is malformed.
pub(crate) fn event_from_proto(event: pb::GenerateEvent) -> Result<Event, String> {
    match event.event {
        Some(pb::generate_event::Event::Completion(c)) => {
            let finish_reason = match pb::FinishReason::try_from(c.finish_reason) {
                Ok(pb::FinishReason::Stop) => FinishReason::Stop,
                Ok(pb::FinishReason::Length) => FinishReason::Length,
                _ => {
                    return Err(format!(
                        "completion {}/{} has no known finish reason ({})",
                        c.request, c.sample, c.finish_reason
                    ));
                }
            };
            Ok(Ok(Completion {
                request: c.request as usize,
                sample: c.sample,
                prompt_ids: c.prompt_ids,
                token_ids: c.token_ids,
                text: c.text,
                finish_reason,
                logprobs: c.logprobs,
                policy_version: c.policy_version,
            }))
        }
        Some(pb::generate_event::Event::Error(e)) => Ok(Err(RequestError {
            request: e.request as usize,
            message: e.message,
        })),
        None => Err("an event with neither a completion nor an error".into()),
    }
}

/// A request index on the wire (a batch never holds 2^32 requests: the message cap is far
/// below that).
fn wire_index(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// Worker info as sent.
pub(crate) fn info_to_proto(info: WorkerInfo) -> pb::HealthReply {
    pb::HealthReply {
        policy_version: info.policy_version,
        device: info.device,
        max_batch: info.max_batch,
        max_seq_len: info.max_seq_len,
    }
}

/// Received worker info.
pub(crate) fn info_from_proto(reply: pb::HealthReply) -> WorkerInfo {
    WorkerInfo {
        policy_version: reply.policy_version,
        device: reply.device,
        max_batch: reply.max_batch,
        max_seq_len: reply.max_seq_len,
    }
}

/// The wire dtype of a tensor kind; weights are floats.
pub(crate) fn dtype_to_proto(kind: Kind) -> Result<pb::Dtype, String> {
    match kind {
        Kind::Float => Ok(pb::Dtype::F32),
        Kind::Half => Ok(pb::Dtype::F16),
        Kind::BFloat16 => Ok(pb::Dtype::Bf16),
        Kind::Double => Ok(pb::Dtype::F64),
        other => Err(format!(
            "dtype {other:?} cannot be sent: weights go as f32, f16, bf16 or f64"
        )),
    }
}

/// The tensor kind of a wire dtype.
pub(crate) fn kind_from_proto(dtype: i32) -> Result<Kind, String> {
    match pb::Dtype::try_from(dtype) {
        Ok(pb::Dtype::F32) => Ok(Kind::Float),
        Ok(pb::Dtype::F16) => Ok(Kind::Half),
        Ok(pb::Dtype::Bf16) => Ok(Kind::BFloat16),
        Ok(pb::Dtype::F64) => Ok(Kind::Double),
        _ => Err(format!(
            "dtype {dtype} is not one of f32 (1), f16 (2), bf16 (3), f64 (4)"
        )),
    }
}

// The wire carries little-endian bytes; the host's are sent as they are.
#[cfg(target_endian = "big")]
compile_error!("rl's weight transfer assumes a little-endian host");

/// The row-major bytes of `tensor` (copied to the CPU first).
pub(crate) fn tensor_to_bytes(tensor: &Tensor) -> Result<Vec<u8>, String> {
    let cpu = tensor.to_device(Device::Cpu).contiguous();
    let numel = cpu.numel();
    let mut bytes = vec![0u8; numel * cpu.kind().elt_size_in_bytes()];
    cpu.f_copy_data_u8(&mut bytes, numel)
        .map_err(|e| format!("cannot read the tensor's bytes: {e}"))?;
    Ok(bytes)
}

/// A CPU tensor of `shape` and `kind` from exactly its row-major bytes.
pub(crate) fn tensor_from_bytes(bytes: &[u8], shape: &[i64], kind: Kind) -> Result<Tensor, String> {
    let numel: i64 = shape.iter().product();
    let want = usize::try_from(numel).unwrap_or(usize::MAX) * kind.elt_size_in_bytes();
    if bytes.len() != want {
        return Err(format!(
            "{} bytes for shape {shape:?} of {kind:?}, which needs {want}",
            bytes.len()
        ));
    }
    Tensor::f_from_data_size(bytes, shape, kind)
        .map_err(|e| format!("cannot build the tensor: {e}"))
}

/// The status a server answers for a worker error. The message is the error's own, without
/// its variant's prefix: [`error_from_status`] puts the variant back where it can.
pub(crate) fn status_from_error(error: &RolloutError) -> Status {
    match error {
        RolloutError::Weights(m) => Status::invalid_argument(m.clone()),
        RolloutError::Config(m) => Status::failed_precondition(m.clone()),
        RolloutError::WorkerGone(_) | RolloutError::Remote { .. } => {
            Status::unavailable(error.to_string())
        }
        RolloutError::Engine(_) => Status::internal(error.to_string()),
    }
}

/// Which call a status answered, for [`error_from_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Generate,
    UpdateWeights,
    Health,
    JoinWeightGroup,
}

/// The error a client reports for a status from the server at `addr`: a refused weight update
/// stays [`RolloutError::Weights`] (with the engine's message); anything else, transport
/// failures included, is [`RolloutError::Remote`] naming the address, the code and the cause.
pub(crate) fn error_from_status(addr: &str, call: Call, status: &Status) -> RolloutError {
    if call == Call::UpdateWeights && status.code() == Code::InvalidArgument {
        return RolloutError::Weights(status.message().to_owned());
    }
    if call == Call::JoinWeightGroup && status.code() == Code::Unimplemented {
        return RolloutError::Config(format!("rollout worker {addr}: {}", status.message()));
    }
    let mut message = format!("{:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    let hint = match status.code() {
        Code::Unauthenticated => {
            " (give the client the token the worker was started with: `--token-env` there)"
        }
        Code::OutOfRange | Code::ResourceExhausted => {
            " (a message is over the size cap: send fewer or shorter prompts per call, smaller \
             weight chunks, or raise the cap on both sides)"
        }
        Code::Unavailable => " (is `rl rollout-worker` running and listening there?)",
        _ => "",
    };
    message.push_str(hint);
    RolloutError::Remote {
        addr: addr.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn requests_round_trip() {
        let request = GenerateRequest {
            prompt: Prompt::Tokens(vec![3, 1, 4]),
            params: SamplingParams {
                n: 3,
                temperature: 0.7,
                top_p: 0.9,
                top_k: 5,
                min_p: 0.05,
                max_new_tokens: 11,
                stop_token_ids: vec![2, 7],
                stop: vec!["\n\n".into()],
                ignore_eos: true,
                seed: Some(42),
            },
        };
        assert_eq!(
            request_from_proto(request_to_proto(&request)).unwrap(),
            request
        );
        let text = GenerateRequest {
            prompt: Prompt::Text("hello".into()),
            params: SamplingParams::default(),
        };
        assert_eq!(request_from_proto(request_to_proto(&text)).unwrap(), text);
    }

    #[test]
    fn missing_fields_are_named_or_defaulted() {
        let no_prompt = pb::PromptRequest::default();
        let err = request_from_proto(no_prompt).unwrap_err();
        assert!(err.contains("no prompt"), "{err}");
        let no_params = pb::PromptRequest {
            prompt: Some(pb::prompt_request::Prompt::Text("x".into())),
            params: None,
        };
        assert_eq!(
            request_from_proto(no_params).unwrap().params,
            SamplingParams::default()
        );
    }

    #[test]
    fn events_round_trip() {
        let done = Completion {
            request: 4,
            sample: 1,
            prompt_ids: vec![1, 2],
            token_ids: vec![9, 2],
            text: "t9".into(),
            finish_reason: FinishReason::Stop,
            logprobs: vec![-0.5, -1.25],
            policy_version: 3,
        };
        let refused = RequestError {
            request: 2,
            message: "empty prompt".into(),
        };
        for event in [Ok(done), Err(refused)] {
            assert_eq!(
                event_from_proto(event_to_proto(event.clone())).unwrap(),
                event
            );
        }
        let err = event_from_proto(pb::GenerateEvent { event: None }).unwrap_err();
        assert!(err.contains("neither"), "{err}");
    }

    #[test]
    fn tensors_round_trip_through_bytes_in_every_dtype() {
        for kind in [Kind::Float, Kind::Half, Kind::BFloat16, Kind::Double] {
            let t = Tensor::randn([3, 5], (Kind::Float, Device::Cpu)).to_kind(kind);
            let dtype = dtype_to_proto(kind).unwrap() as i32;
            let back = tensor_from_bytes(
                &tensor_to_bytes(&t).unwrap(),
                &[3, 5],
                kind_from_proto(dtype).unwrap(),
            )
            .unwrap();
            assert_eq!(back.kind(), kind);
            assert!(back.equal(&t), "{kind:?}");
        }
        assert!(dtype_to_proto(Kind::Int64).unwrap_err().contains("Int64"));
        assert!(kind_from_proto(0).is_err());
        let short = tensor_from_bytes(&[0; 7], &[2], Kind::Float).unwrap_err();
        assert!(short.contains("needs 8"), "{short}");
    }

    #[test]
    fn a_refused_update_keeps_its_message_and_the_rest_name_the_address() {
        let refused =
            RolloutError::Weights("version 1 is not newer than the current version 2".into());
        let back = error_from_status("w:1", Call::UpdateWeights, &status_from_error(&refused));
        assert_eq!(back, refused);
        let gone = error_from_status(
            "w:1",
            Call::Health,
            &status_from_error(&RolloutError::WorkerGone("its thread has exited".into())),
        );
        let text = gone.to_string();
        assert!(
            text.starts_with("remote rollout worker w:1: Unavailable: "),
            "{text}"
        );
        assert!(text.contains("its thread has exited"), "{text}");
    }
}
