//! SmolLM2-135M-Instruct's tokenizer against transformers (ids, offsets, decodes and chat
//! renders stored by scripts/parity/make_tokenizer_reference.py), special-token handling, and
//! the errors for bad tokenizer directories and templates.

#![allow(clippy::unwrap_used)] // test helpers may panic: that is a test failure

use std::path::Path;

use rl_model::tokenizer::{ChatTemplate, Message, SpecialTokens, Tokenizer, TokenizerError};
use serde_json::{Value, json};

fn smollm2() -> Tokenizer {
    Tokenizer::from_dir(rl_test_support::smollm2_tokenizer_dir()).unwrap()
}

fn reference() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/smollm2.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    serde_json::from_value(v.clone()).unwrap()
}

fn offsets(v: &Value) -> Vec<(usize, usize)> {
    serde_json::from_value(v.clone()).unwrap()
}

fn messages(v: &Value) -> Vec<Message> {
    serde_json::from_value(v.clone()).unwrap()
}

/// A copy of the SmolLM2 directory with `edit` applied, for the error and config cases.
fn edited_dir(edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(rl_test_support::smollm2_tokenizer_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    edit(tmp.path());
    tmp
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(path, serde_json::to_string(&json).unwrap()).unwrap();
}

#[test]
fn ids_and_offsets_match_transformers_on_the_corpus() {
    check_corpus(&smollm2());
}

/// The same tokenizer rebuilt from the GGUF's own metadata must agree just as exactly.
#[test]
fn the_tokenizer_rebuilt_from_gguf_matches_transformers() {
    let gguf = rl_test_support::smollm2_gguf();
    let tok = Tokenizer::from_gguf_file(&gguf).unwrap();
    let from_dir = smollm2();
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.pad_id()),
        (from_dir.bos_id(), from_dir.eos_id(), from_dir.pad_id())
    );
    check_corpus(&tok);
    check_chats(&tok);
}

fn check_corpus(tok: &Tokenizer) {
    let reference = reference();
    let corpus = reference["encodings"].as_array().unwrap();
    assert!(corpus.len() >= 40, "corpus too small: {}", corpus.len());
    let mut mismatches = Vec::new();
    for item in corpus {
        let text = item["text"].as_str().unwrap();
        for (key, special) in [("plain", false), ("special", true)] {
            let want = &item[key];
            let by_bytes = tok.encode(text, special).unwrap();
            let by_chars = tok.encode_char_offsets(text, special).unwrap();
            if by_bytes.ids != ids(&want["ids"]) || by_chars.ids != by_bytes.ids {
                mismatches.push(format!("{text:?} ({key}): ids {:?}", by_bytes.ids));
            } else if by_bytes.offsets != offsets(&want["byte_offsets"]) {
                mismatches.push(format!(
                    "{text:?} ({key}): byte offsets {:?}",
                    by_bytes.offsets
                ));
            } else if by_chars.offsets != offsets(&want["char_offsets"]) {
                mismatches.push(format!(
                    "{text:?} ({key}): char offsets {:?}",
                    by_chars.offsets
                ));
            }
            for &(start, end) in &by_bytes.offsets {
                assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} texts differ from transformers:\n{}",
        mismatches.len(),
        corpus.len(),
        mismatches.join("\n")
    );
}

#[test]
fn batch_encoding_equals_one_by_one() {
    let tok = smollm2();
    let reference = reference();
    let texts: Vec<&str> = reference["encodings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["text"].as_str().unwrap())
        .collect();
    let batch = tok.encode_batch(&texts, true).unwrap();
    let batch_chars = tok.encode_batch_char_offsets(&texts, false).unwrap();
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(batch[i], tok.encode(text, true).unwrap(), "{text:?}");
        assert_eq!(
            batch_chars[i],
            tok.encode_char_offsets(text, false).unwrap(),
            "{text:?}"
        );
    }
}

#[test]
fn decode_round_trips_and_matches_transformers() {
    let tok = smollm2();
    for item in reference()["encodings"].as_array().unwrap() {
        let text = item["text"].as_str().unwrap();
        let plain = ids(&item["plain"]["ids"]);
        let decoded = tok.decode(&plain, false).unwrap();
        assert_eq!(decoded, item["decoded"].as_str().unwrap(), "{text:?}");
        assert_eq!(
            decoded, text,
            "decode(encode(text)) must give the text back"
        );
        assert_eq!(
            tok.decode(&plain, true).unwrap(),
            item["decoded_skip_special"].as_str().unwrap(),
            "{text:?} (skip special tokens)"
        );
        let tokens: Vec<String> = plain
            .iter()
            .map(|&id| tok.id_to_token(id).unwrap())
            .collect();
        assert_eq!(
            tokens,
            serde_json::from_value::<Vec<String>>(item["tokens"].clone()).unwrap()
        );
    }
    let seqs = [&[1u32, 6004, 2][..], &[]];
    assert_eq!(
        tok.decode_batch(&seqs, true).unwrap(),
        vec!["hi".to_owned(), String::new()]
    );
}

#[test]
fn special_tokens_match_transformers() {
    let tok = smollm2();
    let want = &reference()["specials"];
    assert_eq!(
        tok.bos_id(),
        Some(want["bos_token_id"].as_u64().unwrap() as u32)
    );
    assert_eq!(
        tok.eos_id(),
        Some(want["eos_token_id"].as_u64().unwrap() as u32)
    );
    assert_eq!(
        tok.pad_id(),
        Some(want["pad_token_id"].as_u64().unwrap() as u32)
    );
    assert_eq!(
        tok.vocab_size(),
        want["vocab_size"].as_u64().unwrap() as usize
    );
    let specials = tok.special_tokens();
    assert_eq!(specials.bos.as_deref(), want["bos_token"].as_str());
    assert_eq!(specials.eos.as_deref(), want["eos_token"].as_str());
    assert_eq!(specials.unk.as_deref(), want["unk_token"].as_str());
    assert_eq!(tok.eos_ids().iter().copied().collect::<Vec<_>>(), vec![2]);
    assert!(tok.is_eos(2) && !tok.is_eos(1));
    assert_eq!(tok.token_to_id("<|im_end|>"), Some(2));
    assert_eq!(tok.id_to_token(0).as_deref(), Some("<|endoftext|>"));
    assert_eq!(tok.id_to_token(49152), None);
    // Special tokens written in text are single tokens with or without add_special_tokens.
    let enc = tok.encode("<|im_start|>user\nhi<|im_end|>", false).unwrap();
    assert_eq!(enc.ids.first(), Some(&1));
    assert_eq!(enc.ids.last(), Some(&2));
    assert_eq!(enc.offsets.first(), Some(&(0, 12)));
}

#[test]
fn chat_renders_match_transformers() {
    check_chats(&smollm2());
}

fn check_chats(tok: &Tokenizer) {
    let chats = reference()["chats"].as_array().unwrap().clone();
    assert!(chats.len() >= 8);
    for chat in &chats {
        let msgs = messages(&chat["messages"]);
        let agp = chat["add_generation_prompt"].as_bool().unwrap();
        let text = tok.apply_chat_template(&msgs, agp).unwrap();
        assert_eq!(text, chat["text"].as_str().unwrap(), "{msgs:?} agp={agp}");
        assert_eq!(
            tok.encode_chat(&msgs, agp).unwrap(),
            ids(&chat["ids"]),
            "{msgs:?} agp={agp}"
        );
    }
}

#[test]
fn template_features_render_as_in_transformers() {
    let reference = reference();
    let cases = reference["templates"].as_array().unwrap();
    let mut tok = smollm2();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        tok.set_chat_template(case["template"].as_str().unwrap())
            .unwrap();
        let msgs = messages(&case["messages"]);
        let agp = case["add_generation_prompt"].as_bool().unwrap();
        let got = tok.apply_chat_template(&msgs, agp);
        match (&case["text"], got) {
            (Value::String(want), Ok(text)) => assert_eq!(&text, want, "template {name}: {msgs:?}"),
            (Value::Null, Err(TokenizerError::TemplateRaised { message, .. })) => {
                assert_eq!(message, case["error"].as_str().unwrap(), "template {name}")
            }
            (_, got) => panic!("template {name} on {msgs:?}: transformers {case}, we {got:?}"),
        }
    }
}

#[test]
fn tojson_renders_tools_like_python_json_dumps() {
    let template = ChatTemplate::new(
        "{% for t in tools %}{{ t | tojson }}\n{% endfor %}{{ tools[0] | tojson(indent=2) }}",
        "test",
    )
    .unwrap();
    // Structs keep their field order (serde_json::Value would sort the keys).
    #[derive(serde::Serialize)]
    struct Tool {
        name: &'static str,
        description: &'static str,
        parameters: Value,
    }
    #[derive(serde::Serialize)]
    struct Extra {
        tools: Vec<Tool>,
    }
    let tools = Extra {
        tools: vec![Tool {
            name: "add",
            description: "a + b = \"sum\"\n<é>",
            parameters: json!({"a": 1, "b": 2.5, "c": [true, null]}),
        }],
    };
    let out = template.render_with(&[], false, &tools).unwrap();
    // Python: json.dumps(tool, ensure_ascii=False) then json.dumps(tool, ensure_ascii=False, indent=2)
    assert_eq!(
        out,
        "{\"name\": \"add\", \"description\": \"a + b = \\\"sum\\\"\\n<é>\", \"parameters\": {\"a\": 1, \"b\": 2.5, \"c\": [true, null]}}\n\
         {\n  \"name\": \"add\",\n  \"description\": \"a + b = \\\"sum\\\"\\n<é>\",\n  \"parameters\": {\n    \"a\": 1,\n    \"b\": 2.5,\n    \"c\": [\n      true,\n      null\n    ]\n  }\n}"
    );
}

#[test]
fn eos_ids_gather_every_config() {
    let dir = edited_dir(|d| {
        edit_json(&d.join("generation_config.json"), |j| {
            j["eos_token_id"] = json!([2, 0])
        });
        std::fs::write(
            d.join("config.json"),
            r#"{"eos_token_id": 5, "pad_token_id": null}"#,
        )
        .unwrap();
    });
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(
        tok.eos_ids().iter().copied().collect::<Vec<_>>(),
        vec![0, 2, 5]
    );
    assert_eq!(tok.eos_id(), Some(2));
}

#[test]
fn pad_falls_back_to_eos() {
    let dir = edited_dir(|d| {
        edit_json(&d.join("tokenizer_config.json"), |j| {
            j["pad_token"] = Value::Null
        });
        edit_json(&d.join("generation_config.json"), |j| {
            j["pad_token_id"] = Value::Null
        });
    });
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(tok.special_tokens().pad, None);
    assert_eq!(tok.pad_id(), Some(2));
}

#[test]
fn add_bos_token_prepends_bos_with_special_tokens_only() {
    let dir = edited_dir(|d| {
        edit_json(&d.join("tokenizer_config.json"), |j| {
            j["add_bos_token"] = json!(true)
        });
    });
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    let with = tok.encode("hi", true).unwrap();
    assert_eq!(with.ids, vec![1, 6004]);
    assert_eq!(with.offsets, vec![(0, 0), (0, 2)]);
    assert_eq!(tok.encode("hi", false).unwrap().ids, vec![6004]);
    assert_eq!(tok.encode_batch(&["hi"], true).unwrap()[0], with);
}

#[test]
fn named_templates_from_config_and_jinja_files() {
    let dir = edited_dir(|d| {
        std::fs::remove_file(d.join("chat_template.jinja")).unwrap();
        edit_json(&d.join("tokenizer_config.json"), |j| {
            j["chat_template"] = json!([
                {"name": "default", "template": "D{{ messages | length }}"},
                {"name": "tool_use", "template": "T{{ bos_token }}"},
            ])
        });
    });
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    let msgs = [Message::user("hi")];
    assert_eq!(tok.apply_chat_template(&msgs, false).unwrap(), "D1");
    let tool = tok.chat_template_named("tool_use").unwrap();
    assert_eq!(tool.render(&msgs, false).unwrap(), "T<|im_start|>");
    assert_eq!(
        tok.chat_template_names().collect::<Vec<_>>(),
        ["default", "tool_use"]
    );
    let err = tok.chat_template_named("rag").unwrap_err();
    assert!(
        matches!(err, TokenizerError::UnknownTemplateName { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("default, tool_use"), "{err}");

    // chat_template.jinja wins over the config's default, as in transformers.
    std::fs::write(dir.path().join("chat_template.jinja"), "J").unwrap();
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(tok.apply_chat_template(&msgs, false).unwrap(), "J");
}

#[test]
fn in_memory_tokenizer_with_given_specials() {
    let base = smollm2();
    let specials = SpecialTokens {
        bos: Some("<|im_start|>".into()),
        eos: Some("<|im_end|>".into()),
        extra_eos_ids: vec![0],
        ..SpecialTokens::default()
    };
    let mut tok = Tokenizer::new(base.inner().clone(), specials).unwrap();
    assert_eq!(
        tok.eos_ids().iter().copied().collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert_eq!(tok.pad_id(), Some(2));
    let err = tok
        .apply_chat_template(&[Message::user("hi")], true)
        .unwrap_err();
    assert!(
        matches!(err, TokenizerError::NoChatTemplate { .. }),
        "{err}"
    );
    tok.set_chat_template(base.chat_template().unwrap().source())
        .unwrap();
    assert_eq!(
        tok.apply_chat_template(&[Message::system("s"), Message::user("hi")], true)
            .unwrap(),
        "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );

    let bad = SpecialTokens {
        eos: Some("</s>".into()),
        ..SpecialTokens::default()
    };
    let err = Tokenizer::new(base.inner().clone(), bad).unwrap_err();
    assert!(
        matches!(
            err,
            TokenizerError::UnknownSpecialToken {
                field: "eos_token",
                ..
            }
        ),
        "{err}"
    );
    let bad = SpecialTokens {
        extra_eos_ids: vec![1 << 20],
        ..SpecialTokens::default()
    };
    let err = Tokenizer::new(base.inner().clone(), bad).unwrap_err();
    assert!(matches!(err, TokenizerError::IdOutOfRange { .. }), "{err}");
}

// ---- errors ----

fn assert_mentions(err: &TokenizerError, parts: &[&str]) {
    let text = err.to_string();
    for part in parts {
        assert!(text.contains(part), "error lacks {part:?}: {text}");
    }
}

#[test]
fn missing_tokenizer_json_names_the_directory_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let err = Tokenizer::from_dir(dir.path()).unwrap_err();
    assert!(matches!(err, TokenizerError::MissingTokenizerJson { .. }));
    assert_mentions(
        &err,
        &[
            &dir.path().display().to_string(),
            "no tokenizer.json",
            "save_pretrained",
        ],
    );
}

#[test]
fn malformed_json_names_the_file_and_the_line() {
    let dir = edited_dir(|d| {
        std::fs::write(d.join("tokenizer.json"), "{\"version\": \"1.0\",\n").unwrap()
    });
    let err = Tokenizer::from_dir(dir.path()).unwrap_err();
    assert!(matches!(err, TokenizerError::Json { .. }), "{err}");
    assert_mentions(&err, &["tokenizer.json", "line 2"]);

    let dir = edited_dir(|d| {
        std::fs::write(d.join("tokenizer_config.json"), "{\n\"eos_token\": ,}").unwrap()
    });
    let err = Tokenizer::from_dir(dir.path()).unwrap_err();
    assert_mentions(
        &err,
        &[
            "tokenizer_config.json",
            "line 2",
            "not a valid HF tokenizer config",
        ],
    );

    let dir = edited_dir(|d| {
        edit_json(&d.join("tokenizer_config.json"), |j| {
            j["eos_token"] = json!(7)
        })
    });
    let err = Tokenizer::from_dir(dir.path()).unwrap_err();
    assert_mentions(
        &err,
        &["tokenizer_config.json", "`eos_token` must be a string"],
    );

    let dir = edited_dir(|d| {
        edit_json(&d.join("generation_config.json"), |j| {
            j["eos_token_id"] = json!("2")
        })
    });
    let err = Tokenizer::from_dir(dir.path()).unwrap_err();
    assert_mentions(
        &err,
        &[
            "generation_config.json",
            "`eos_token_id` must be a token id",
        ],
    );
}

#[test]
fn unknown_special_token_and_out_of_range_ids_are_errors() {
    let dir = edited_dir(|d| {
        edit_json(&d.join("tokenizer_config.json"), |j| {
            j["eos_token"] = json!("</s>")
        })
    });
    let err = Tokenizer::from_dir(dir.path()).unwrap_err();
    assert_mentions(
        &err,
        &["eos_token", "\"</s>\"", "not in the tokenizer's vocabulary"],
    );

    let dir = edited_dir(|d| {
        edit_json(&d.join("generation_config.json"), |j| {
            j["eos_token_id"] = json!(50000)
        })
    });
    let err = Tokenizer::from_dir(dir.path()).unwrap_err();
    assert_mentions(&err, &["50000", "49152"]);

    let err = smollm2().decode(&[1, 49152], false).unwrap_err();
    assert!(
        matches!(err, TokenizerError::IdOutOfRange { id: 49152, .. }),
        "{err}"
    );
    assert_mentions(
        &err,
        &[
            "decode",
            "outside the vocabulary (size 49152)",
            "another tokenizer",
        ],
    );
}

#[test]
fn no_chat_template_says_so_and_how_to_supply_one() {
    let dir = edited_dir(|d| std::fs::remove_file(d.join("chat_template.jinja")).unwrap());
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    let err = tok
        .apply_chat_template(&[Message::user("hi")], true)
        .unwrap_err();
    assert!(
        matches!(err, TokenizerError::NoChatTemplate { .. }),
        "{err}"
    );
    assert_mentions(
        &err,
        &[
            &dir.path().display().to_string(),
            "has no chat template",
            "chat_template.jinja",
            "set_chat_template",
        ],
    );
    assert!(tok.encode_chat(&[Message::user("hi")], true).is_err());
}

#[test]
fn template_syntax_errors_give_the_line() {
    let dir = edited_dir(|d| {
        std::fs::write(
            d.join("chat_template.jinja"),
            "{% for m in messages %}\n{{ m.content }\n{% endfor %}",
        )
        .unwrap()
    });
    let err = Tokenizer::from_dir(dir.path()).unwrap_err();
    assert!(
        matches!(err, TokenizerError::TemplateSyntax { line: 2, .. }),
        "{err}"
    );
    assert_mentions(&err, &["chat_template.jinja", "syntax error at line 2"]);

    let err = ChatTemplate::new("ok\n\n{% if %}", "inline").unwrap_err();
    assert_mentions(&err, &["inline", "line 3"]);
}

#[test]
fn template_runtime_errors_are_reported() {
    let template =
        ChatTemplate::new("line one\n{{ messages[0].content.nope.deeper }}", "t").unwrap();
    let err = template.render(&[Message::user("hi")], false).unwrap_err();
    assert!(
        matches!(err, TokenizerError::TemplateRender { line: 2, .. }),
        "{err}"
    );
    assert_mentions(&err, &["chat template t failed at line 2"]);

    let template =
        ChatTemplate::new("{{ raise_exception('only user turns, please') }}", "t").unwrap();
    let err = template.render(&[Message::user("hi")], false).unwrap_err();
    assert!(
        matches!(err, TokenizerError::TemplateRaised { .. }),
        "{err}"
    );
    assert_mentions(&err, &["refused the conversation: only user turns, please"]);
}
