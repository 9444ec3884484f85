//! HF chat templates (Jinja) rendered with minijinja the way transformers renders them:
//! `trim_blocks` and `lstrip_blocks` on, loop controls, Python string methods (`.strip()`,
//! `.startswith()`, ... via minijinja-contrib's pycompat), transformers' `tojson` and
//! `raise_exception`, and the special tokens (`bos_token`, `eos_token`, ...) as variables.

use std::fmt;

use minijinja::{Environment, Error, ErrorKind, Value, context, value::merge_maps};
use serde::Serialize;

use super::{TokenizerError, pyjson};

pub use rl_core::chat::{Message, Role};

/// The name minijinja knows the one template of a [`ChatTemplate`] by.
const NAME: &str = "chat";

/// A compiled HF chat template.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    origin: String,
    source: String,
}

impl fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Marks an error raised by the template's own `raise_exception(message)`.
#[derive(Debug)]
struct Raised(String);

impl fmt::Display for Raised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

impl ChatTemplate {
    /// Compiles `source`; `origin` names it in errors (e.g. "/m/chat_template.jinja").
    pub fn new(
        source: impl Into<String>,
        origin: impl Into<String>,
    ) -> Result<Self, TokenizerError> {
        let (source, origin) = (source.into(), origin.into());
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", pyjson::tojson);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<Value, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, message.clone())
                    .with_source(Raised(message)))
            },
        );
        env.add_template_owned(NAME, source.clone()).map_err(|e| {
            TokenizerError::TemplateSyntax {
                template: origin.clone(),
                line: e.line().unwrap_or(0),
                message: describe(&e),
            }
        })?;
        Ok(Self {
            env,
            origin,
            source,
        })
    }

    /// Makes `value` available to the template as `name` (e.g. `bos_token`); messages and
    /// `add_generation_prompt` are set per render.
    pub fn with_variable(mut self, name: &str, value: &str) -> Self {
        self.env.add_global(name.to_owned(), value.to_owned());
        self
    }

    /// Where the template came from, as errors name it.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The template's Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages`, ending with the assistant-turn header when `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        self.render_with(messages, add_generation_prompt, ())
    }

    /// [`render`](Self::render) with more variables: `extra` must serialize to a map (e.g.
    /// `{"tools": [...]}`), or be `()` for none. Maps keep the order `extra` serializes them in,
    /// which `tojson` prints: structs keep their field order, but a `serde_json::Value` map is
    /// sorted by key unless serde_json's `preserve_order` feature is on.
    pub fn render_with(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        extra: impl Serialize,
    ) -> Result<String, TokenizerError> {
        let ctx = merge_maps([
            context! {
                messages => Value::from_serialize(messages),
                add_generation_prompt => add_generation_prompt,
            },
            Value::from_serialize(extra),
        ]);
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| self.render_error(&e))?;
        template.render(ctx).map_err(|e| self.render_error(&e))
    }

    fn render_error(&self, e: &Error) -> TokenizerError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = source {
            if let Some(Raised(message)) = err.downcast_ref::<Raised>() {
                return TokenizerError::TemplateRaised {
                    template: self.origin.clone(),
                    message: message.clone(),
                };
            }
            source = err.source();
        }
        TokenizerError::TemplateRender {
            template: self.origin.clone(),
            line: e.line().unwrap_or(0),
            message: describe(e),
        }
    }
}

/// minijinja's error without its "(in template:line)" suffix: the kind, then the detail.
fn describe(e: &Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}
