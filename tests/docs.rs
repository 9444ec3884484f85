//! The documentation cannot drift from the code: `docs/config.md` is generated from
//! `configs/reference.toml` (whose values a test keeps equal to the code's defaults), every
//! command in `docs/cli.md` shows its exact `--help`, every config key and command is documented,
//! the README stays short, and every relative link resolves. After changing the reference or a
//! command's help, `RL_BLESS=1 cargo test --test docs` rewrites the generated parts.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{repo, stdout};

/// Where the generated part of a document starts and ends.
const BEGIN: &str = "<!-- generated from configs/reference.toml by tests/docs.rs: edit that file, then run `RL_BLESS=1 cargo test --test docs` -->";
const END: &str = "<!-- end of generated -->";

/// Every `rl` subcommand.
const COMMANDS: [&str; 8] = [
    "train",
    "generate",
    "logprobs",
    "convert",
    "eval",
    "reward-server",
    "rollout-worker",
    "doctor",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bless() -> bool {
    std::env::var_os("RL_BLESS").is_some()
}

/// One key of the reference: its dotted name, default (None: unset) and meaning.
struct Key {
    dotted: String,
    default: Option<String>,
    meaning: String,
}

/// One `[section]` of the reference: its name, intro and keys.
struct Section {
    name: String,
    intro: String,
    keys: Vec<Key>,
}

/// Reads `configs/reference.toml`'s layout: each `[section]`, optionally followed by an intro (a
/// comment block and a blank line), then keys, each below the comment lines that say what it
/// means; a key without a default is commented out (`# key = example`).
fn parse_reference(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut comment: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push(Section {
                name: name.to_owned(),
                intro: String::new(),
                keys: Vec::new(),
            });
            comment.clear();
            continue;
        }
        let Some(section) = sections.last_mut() else {
            continue; // the file's own header
        };
        if line.is_empty() {
            if section.keys.is_empty() && section.intro.is_empty() && !comment.is_empty() {
                section.intro = comment.join(" ");
            }
            comment.clear();
            continue;
        }
        let (assignment, unset) = match line.strip_prefix("# ") {
            Some(rest) if is_assignment(rest) => (rest, true),
            Some(rest) => {
                comment.push(rest.to_owned());
                continue;
            }
            None if line == "#" => continue,
            None => (line, false),
        };
        let (key, value) = assignment
            .split_once(" = ")
            .unwrap_or_else(|| panic!("configs/reference.toml: cannot read `{line}`"));
        assert!(
            !comment.is_empty(),
            "configs/reference.toml: {}.{key} has no comment above it saying what it means",
            section.name
        );
        section.keys.push(Key {
            dotted: format!("{}.{key}", section.name),
            default: (!unset).then(|| value.to_owned()),
            meaning: std::mem::take(&mut comment).join(" "),
        });
    }
    sections
}

/// `key = ...` with a lower-case key: a (commented) assignment, not prose.
fn is_assignment(text: &str) -> bool {
    text.split_once(" = ").is_some_and(|(key, _)| {
        !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    })
}

/// The Markdown tables of the reference, one per section.
fn render_config(sections: &[Section]) -> String {
    let mut out = String::new();
    for s in sections {
        out.push_str(&format!("\n## `[{}]`\n\n", s.name));
        if !s.intro.is_empty() {
            out.push_str(&format!("{}\n\n", s.intro));
        }
        out.push_str("| key | default | meaning |\n|---|---|---|\n");
        for k in &s.keys {
            let default = k.default.as_deref().map_or("unset".to_owned(), |d| {
                format!("`{}`", d.replace('|', "\\|"))
            });
            let meaning = k.meaning.replace('|', "\\|");
            out.push_str(&format!("| `{}` | {default} | {meaning} |\n", k.dotted));
        }
    }
    out
}

/// `doc` with the text between `begin` and the next `end` marker replaced by `generated`.
fn splice(doc: &str, begin: &str, end: &str, generated: &str) -> Option<String> {
    let start = doc.find(begin)? + begin.len();
    let stop = start + doc[start..].find(end)?;
    Some(format!(
        "{}\n{}{}",
        &doc[..start],
        generated.trim_end_matches('\n'),
        { format!("\n{}", &doc[stop..]) }
    ))
}

/// Compares `path` with `expected`, or writes it under `RL_BLESS`.
fn check_or_bless(path: &str, current: &str, expected: &str) {
    if current == expected {
        return;
    }
    if bless() {
        std::fs::write(repo().join(path), expected).unwrap();
        return;
    }
    let first = current
        .lines()
        .zip(expected.lines())
        .position(|(a, b)| a != b)
        .map_or(current.lines().count().min(expected.lines().count()), |i| i);
    panic!(
        "{path} is out of date (first difference at line {}): run `RL_BLESS=1 cargo test --test docs` \
         (through scripts/with-torch.sh) and commit the result",
        first + 1
    );
}

#[test]
fn the_config_reference_is_generated_from_configs_reference_toml() {
    let sections = parse_reference(&read("configs/reference.toml"));
    let doc = read("docs/config.md");
    let expected = splice(&doc, BEGIN, END, &render_config(&sections))
        .expect("docs/config.md lacks the generated-part markers");
    check_or_bless("docs/config.md", &doc, &expected);
}

#[test]
fn every_config_key_is_in_the_reference() {
    let sections = parse_reference(&read("configs/reference.toml"));
    let documented: Vec<&str> = sections
        .iter()
        .flat_map(|s| s.keys.iter().map(|k| k.dotted.as_str()))
        .collect();
    let mut config = rl_core::Config::default();
    config.resolve();
    // Fill the optional keys too, so they are listed.
    config.env.path = Some("x".into());
    config.env.eval_path = Some("x".into());
    config.env.system_prompt = Some("x".into());
    config.reward.model = Some("x".into());
    config.reward.url = Some("x".into());
    config.reward.clip = Some(1.0);
    config.reward.answer_tag = Some("x".into());
    config.reward.pattern = Some("x".into());
    config.placement.rendezvous = Some("x".into());
    config.rollout.is_cap = Some(1.0);
    config.placement.ray_address = Some("x".into());
    config.preference.path = Some("x".into());
    let table: toml::Table = toml::from_str(&config.to_toml()).unwrap();
    let mut keys = Vec::new();
    for (section, values) in &table {
        for key in values.as_table().unwrap().keys() {
            keys.push(format!("{section}.{key}"));
        }
    }
    for key in &keys {
        assert!(
            documented.contains(&key.as_str()),
            "configs/reference.toml lacks {key}"
        );
    }
    for key in documented {
        assert!(
            keys.iter().any(|k| k == key),
            "configs/reference.toml documents {key}, which the config does not have"
        );
    }
}

#[test]
fn every_command_shows_its_exact_help() {
    let tmp = tempfile::tempdir().unwrap();
    let mut doc = read("docs/cli.md");
    let current = doc.clone();
    for sub in COMMANDS {
        let marker = format!("<!-- help: {sub} -->\n```");
        assert!(
            doc.contains(&format!("## `rl {sub}`")) && doc.contains(&marker),
            "docs/cli.md lacks a section `rl {sub}` with a `{marker}` block"
        );
        // clap wraps help to the terminal's width, else to $COLUMNS: pin it.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rl"))
            .args([sub, "--help"])
            .current_dir(tmp.path())
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        assert!(out.status.success(), "rl {sub} --help failed");
        doc = splice(&doc, &marker, "```", &stdout(&out)).unwrap();
    }
    check_or_bless("docs/cli.md", &current, &doc);
}

#[test]
fn the_readme_is_short_and_every_relative_link_resolves() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; keep it at most 250 (details go in docs/)"
    );
    let mut docs: Vec<String> = vec!["README.md".into(), "benches/README.md".into()];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        docs.push(format!("docs/{name}"));
    }
    for doc in &docs {
        let text = read(doc);
        let base = Path::new(doc).parent().unwrap();
        for link in text.split("](").skip(1).filter_map(|s| s.split(')').next()) {
            let target = link.split('#').next().unwrap();
            if target.is_empty() || target.contains("://") {
                continue;
            }
            assert!(
                repo().join(base).join(target).exists(),
                "{doc} links to {target}, which does not exist"
            );
        }
        for marker in ["issue #", "this session", "for now"] {
            assert!(
                !text.contains(marker),
                "{doc} says \"{marker}\": user documentation holds no process notes"
            );
        }
    }
}

#[test]
fn the_readme_config_is_valid() {
    let readme = read("README.md");
    let start = readme.find("```toml\n").expect("README.md shows a config") + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("readme.toml");
    std::fs::write(&path, &readme[start..end]).unwrap();
    rl_core::Config::load(&path, &[]).unwrap_or_else(|e| panic!("README.md's config: {e}"));
}
