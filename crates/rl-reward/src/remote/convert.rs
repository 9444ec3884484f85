//! Conversions between the `rl.v1` reward messages (`rl_proto::v1`) and rl-core's domain types,
//! in one place: (task, response) pairs to items and back, scores to results and back.

use std::collections::BTreeMap;

use rl_core::{Message, Role, Score, Scoring, Task};
use rl_proto::v1 as pb;

/// A pair as sent. `Err` when the task's metadata cannot travel (it must be a JSON object or
/// null).
pub(crate) fn item_to_proto(s: &Scoring<'_>) -> Result<pb::ScoreItem, String> {
    let metadata = match &s.task.metadata {
        serde_json::Value::Null => Default::default(),
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        other => {
            return Err(format!(
                "task {:?} has metadata that is not a JSON object ({}); a reward server takes \
                 an object of named values",
                s.task.id,
                kind_of(other)
            ));
        }
    };
    Ok(pb::ScoreItem {
        task_id: s.task.id.clone(),
        messages: s
            .task
            .messages
            .iter()
            .map(|m| pb::ChatMessage {
                role: role_name(m.role).to_owned(),
                content: m.content.clone(),
            })
            .collect(),
        answer: s.task.answer.clone(),
        metadata,
        response: s.response.to_owned(),
    })
}

/// A received item as a task and its response; `Err` says what is wrong with it.
pub(crate) fn item_from_proto(item: pb::ScoreItem) -> Result<(Task, String), String> {
    let messages = item
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = role_from_name(&m.role).ok_or_else(|| {
                format!(
                    "message {i} has role {:?}; use \"system\", \"user\", \"assistant\" or \"tool\"",
                    m.role
                )
            })?;
            Ok(Message::new(role, m.content))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let metadata = if item.metadata.is_empty() {
        serde_json::Value::Null
    } else {
        let mut object = serde_json::Map::with_capacity(item.metadata.len());
        for (key, text) in item.metadata {
            let value = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "metadata {key:?} is not JSON ({e}); each value is JSON text, e.g. \"42\", \
                     \"[1, 2]\" or \"\\\"text\\\"\""
                )
            })?;
            object.insert(key, value);
        }
        serde_json::Value::Object(object)
    };
    let task = Task {
        id: item.task_id,
        messages,
        answer: item.answer,
        metadata,
    };
    Ok((task, item.response))
}

/// Bytes of text an item carries (what `max_item_bytes` caps).
pub(crate) fn item_text_bytes(item: &pb::ScoreItem) -> usize {
    item.task_id.len()
        + item.response.len()
        + item.answer.as_ref().map_or(0, String::len)
        + item
            .messages
            .iter()
            .map(|m| m.role.len() + m.content.len())
            .sum::<usize>()
        + item
            .metadata
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

/// A score as sent.
pub(crate) fn score_to_proto(score: Score) -> pb::ScoreResult {
    pb::ScoreResult {
        result: Some(pb::score_result::Result::Score(pb::Score {
            reward: score.reward,
            parts: score.parts.into_iter().collect(),
        })),
    }
}

/// An item's refusal as sent.
pub(crate) fn error_to_proto(message: String) -> pb::ScoreResult {
    pb::ScoreResult {
        result: Some(pb::score_result::Result::Error(message)),
    }
}

/// A received result: the score, or why the server could not give one.
pub(crate) fn score_from_proto(result: pb::ScoreResult) -> Result<Score, String> {
    match result.result {
        Some(pb::score_result::Result::Score(s)) => Ok(Score {
            reward: s.reward,
            parts: s.parts.into_iter().collect::<BTreeMap<_, _>>(),
        }),
        Some(pb::score_result::Result::Error(message)) => Err(message),
        None => Err("the server sent a result with neither a score nor an error".into()),
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

fn role_from_name(name: &str) -> Option<Role> {
    Some(match name {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => return None,
    })
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tasks_survive_the_round_trip() {
        let mut task = Task::single_turn("t1", "What is 2 + 2?", Some("4".into()));
        task.messages.insert(0, Message::system("Be brief."));
        task.metadata = serde_json::json!({"numbers": [1, 2], "target": 3, "name": "x"});
        let item = item_to_proto(&Scoring {
            task: &task,
            response: "4",
        })
        .unwrap();
        assert_eq!(item.metadata["numbers"], "[1,2]");
        let (back, response) = item_from_proto(item).unwrap();
        assert_eq!(back, task);
        assert_eq!(response, "4");
    }

    #[test]
    fn bad_items_say_what_is_wrong() {
        let item = |role: &str, meta: &str| pb::ScoreItem {
            messages: vec![pb::ChatMessage {
                role: role.into(),
                content: "hi".into(),
            }],
            metadata: [("k".to_owned(), meta.to_owned())].into(),
            ..Default::default()
        };
        let err = item_from_proto(item("robot", "1")).unwrap_err();
        assert!(err.contains("message 0 has role \"robot\""), "{err}");
        let err = item_from_proto(item("user", "not json")).unwrap_err();
        assert!(err.contains("metadata \"k\" is not JSON"), "{err}");
        let mut task = Task::single_turn("t", "p", None);
        task.metadata = serde_json::json!([1]);
        let err = item_to_proto(&Scoring {
            task: &task,
            response: "",
        })
        .unwrap_err();
        assert!(err.contains("not a JSON object (an array)"), "{err}");
    }
}
