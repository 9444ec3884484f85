//! The shared-secret token of every `rl` service: a client sends `authorization: Bearer
//! <token>` with every call; a server started with a token refuses calls without it
//! (UNAUTHENTICATED), comparing in constant time (`subtle`).

use subtle::ConstantTimeEq;
use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, MetadataMap},
};

use crate::secret::Secret;

/// The metadata key the token travels in.
const KEY: &str = "authorization";

/// A token that cannot travel in a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token must be non-empty printable ASCII without spaces (e.g. `openssl rand -hex 32`)")]
pub struct BadToken;

/// The `authorization` value for `token`; refused when it is empty or not printable ASCII.
pub fn bearer(token: &Secret) -> Result<AsciiMetadataValue, BadToken> {
    let token = token.expose();
    let ok = !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic());
    let value = ok
        .then(|| format!("Bearer {token}").parse::<AsciiMetadataValue>().ok())
        .flatten()
        .map(|mut value| {
            // Kept out of Debug output and HPACK tables.
            value.set_sensitive(true);
            value
        });
    value.ok_or(BadToken)
}

/// Checks calls against the server's token (every call passes when it has none).
/// Its `Debug` shows the token as `Sensitive` (the header value is marked so).
#[derive(Debug, Clone)]
pub struct Check {
    expected: Option<AsciiMetadataValue>,
    /// What the server is, for the refusal ("rollout worker", "reward server").
    server: &'static str,
}

impl Check {
    /// A check for `token`, on a server that calls itself `server` in refusals.
    pub fn new(token: Option<&Secret>, server: &'static str) -> Result<Self, BadToken> {
        Ok(Self {
            expected: token.map(bearer).transpose()?,
            server,
        })
    }

    /// Whether `metadata` carries the token.
    fn allows(&self, metadata: &MetadataMap) -> bool {
        let Some(expected) = &self.expected else {
            return true;
        };
        metadata
            .get(KEY)
            .is_some_and(|got| bool::from(got.as_bytes().ct_eq(expected.as_bytes())))
    }
}

impl tonic::service::Interceptor for Check {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.allows(request.metadata()) {
            Ok(request)
        } else {
            Err(Status::unauthenticated(format!(
                "missing or wrong token: this {} needs `authorization: Bearer <token>` with the \
                 token it was started with",
                self.server
            )))
        }
    }
}

/// Adds the token (if any) to a call's metadata.
pub fn attach<T>(mut request: Request<T>, token: Option<&AsciiMetadataValue>) -> Request<T> {
    if let Some(token) = token {
        request.metadata_mut().insert(KEY, token.clone());
    }
    request
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_the_right_token_passes() {
        let check = Check::new(Some(&"s3cret".into()), "test server").unwrap();
        let with = |token: Option<&str>| {
            let bearer = token.map(|t| bearer(&t.into()).unwrap());
            let request = attach(Request::new(()), bearer.as_ref());
            check.allows(request.metadata())
        };
        assert!(with(Some("s3cret")));
        assert!(!with(Some("s3cre")));
        assert!(!with(Some("s3cret2")));
        assert!(!with(None));
        assert!(Check::new(None, "x").unwrap().allows(&MetadataMap::new()));
        assert!(!format!("{:?}", bearer(&"s3cret".into()).unwrap()).contains("s3cret"));
    }

    #[test]
    fn unusable_tokens_are_refused() {
        for bad in ["", "has space", "caf\u{e9}", "line\nbreak"] {
            assert!(bearer(&bad.into()).is_err(), "{bad:?}");
        }
    }
}
