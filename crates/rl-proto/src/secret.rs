//! [`Secret`]: a shared-secret token that never shows in `Debug` output or logs, and where it
//! comes from on the command line (a file, or an environment variable) for every `rl` server
//! and client alike.

use std::path::Path;

/// A shared secret. `Debug` prints `Secret(<redacted>)`; the text is reachable only through
/// [`expose`](Self::expose), so a token never leaks through a derived `Debug` of the options
/// that hold it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's text, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

/// Why no usable secret came from where the user pointed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(String);

/// The secret of a server or client, as the user gave it: the file `file` (surrounding
/// whitespace dropped), else the variable `var`. `var_required`: the user named `var` (so it
/// must be set); otherwise an unset `var` means no secret. A file or variable that is set but
/// blank or not UTF-8 is an error, never "no token": that would turn authentication off
/// without a word.
pub fn load(
    file: Option<&Path>,
    var: &str,
    var_required: bool,
) -> Result<Option<Secret>, SecretError> {
    const HOW: &str = "e.g. `openssl rand -hex 32`";
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SecretError(format!(
                "--token-file {}: cannot read it ({e}); write the shared secret there ({HOW})",
                path.display()
            ))
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(SecretError(format!(
                "--token-file {}: the file is empty; write the shared secret there ({HOW})",
                path.display()
            )));
        }
        return Ok(Some(Secret::from(token)));
    }
    match std::env::var_os(var) {
        None if !var_required => Ok(None),
        None => Err(SecretError(format!(
            "--token-env {var}: the environment variable {var} is unset; export the shared secret \
             in it ({HOW}) and give clients the same one, or drop --token-env"
        ))),
        Some(value) => value
            .into_string()
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(|t| Some(Secret::from(t.trim())))
            .ok_or_else(|| {
                SecretError(format!(
                    "{var} is set but empty or not UTF-8: put the shared secret in it ({HOW}), or \
                     unset it to run without a token"
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn debug_never_shows_the_text() {
        let secret = Secret::from("s3cret");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(<redacted>))");
        assert_eq!(secret.expose(), "s3cret");
    }

    #[test]
    fn files_and_variables() {
        let dir = std::env::temp_dir().join(format!("rl-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, "  abc123\n").unwrap();
        let blank = dir.join("blank");
        std::fs::write(&blank, " \n").unwrap();
        let unset = "RL_SECRET_TEST_UNSET_VARIABLE";
        let got = load(Some(&good), unset, false).unwrap().unwrap();
        assert_eq!(got.expose(), "abc123");
        let err = load(Some(&blank), unset, false).unwrap_err().to_string();
        assert!(err.contains("the file is empty"), "{err}");
        let err = load(Some(&dir.join("missing")), unset, false).unwrap_err();
        assert!(err.to_string().contains("cannot read it"), "{err}");
        assert_eq!(load(None, unset, false).unwrap(), None);
        let err = load(None, unset, true).unwrap_err().to_string();
        assert!(err.contains("is unset"), "{err}");
        // PATH is set and not blank in any test environment.
        assert!(load(None, "PATH", false).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
