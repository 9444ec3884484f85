//! Loading: TOML file → `--set` overrides → typed [`Config`] → resolved defaults → validation.

use std::path::Path;

use serde::Deserialize;
use toml::{Table, Value};

use super::{Config, ConfigError, excerpt};

impl Config {
    /// Reads `path`, applies `overrides` (`a.b=c`, in order), resolves defaults and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path, overrides)
    }

    /// Like [`Config::load`], from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            path: origin.to_owned(),
            message: excerpt::describe(text, &e),
        };
        // Typed parse of the file alone first: its errors carry line and column.
        let mut config: Config = toml::from_str(text).map_err(parse_error)?;
        if !overrides.is_empty() {
            let mut table: Table = toml::from_str(text).map_err(parse_error)?;
            for arg in overrides {
                apply_override(&mut table, arg)?;
                // Re-check after each one so an error names the argument that caused it.
                config = Config::deserialize(Value::Table(table.clone())).map_err(|e| {
                    ConfigError::Override {
                        arg: excerpt::clip(arg, 200),
                        message: excerpt::clip(e.to_string().trim(), 300),
                    }
                })?;
            }
        }
        config.resolve();
        config.validate()?;
        Ok(config)
    }
}

/// Sets `a.b.c = value` in `table`. The value is read as TOML (`0.1`, `true`, `"x"`, `[1, 2]`); a
/// bare word that is not TOML is taken as a string, so `--set model.path=dir/model` works unquoted.
fn apply_override(table: &mut Table, arg: &str) -> Result<(), ConfigError> {
    let fail = |message: String| ConfigError::Override {
        arg: excerpt::clip(arg, 200),
        message,
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| fail("expected key=value, e.g. --set algorithm.clip_ratio=0.2".into()))?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(fail(format!(
            "`{key}` is not a dotted key like `learner.lr`"
        )));
    }
    let value = parse_value(raw.trim());
    let (last, parents) = path.split_last().ok_or_else(|| fail("empty key".into()))?;
    let mut node = table;
    for (i, part) in parents.iter().enumerate() {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        node = entry.as_table_mut().ok_or_else(|| {
            fail(format!(
                "`{}` is a value, not a section; cannot set `{key}`",
                path[..=i].join(".")
            ))
        })?;
    }
    node.insert(last.to_string(), value);
    Ok(())
}

fn parse_value(raw: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}
