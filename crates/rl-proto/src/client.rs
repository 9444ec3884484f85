//! What every `rl` client shares: the endpoint for an address as users write it (`host:port`
//! or a URI), and the bearer token each call carries.

use std::time::Duration;

use tonic::{Request, metadata::AsciiMetadataValue, transport::Endpoint};

use crate::{
    addr::dial_uri,
    auth::{self, BadToken},
    secret::Secret,
};

/// Why a client cannot be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DialError {
    /// The address is not one a client can dial.
    #[error("not a valid address ({0}); give HOST:PORT or http://HOST:PORT")]
    Address(String),
    /// The token cannot travel in a header.
    #[error(transparent)]
    Token(#[from] BadToken),
}

/// How a client reaches its server.
#[derive(Debug, Clone)]
pub struct Dial {
    endpoint: Endpoint,
    token: Option<AsciiMetadataValue>,
}

impl Dial {
    /// The server at `addr`, waiting at most `connect_timeout` for a connection, every call
    /// carrying `token` when there is one.
    pub fn new(
        addr: &str,
        token: Option<&Secret>,
        connect_timeout: Duration,
    ) -> Result<Self, DialError> {
        let token = token.map(auth::bearer).transpose()?;
        let endpoint = Endpoint::from_shared(dial_uri(addr))
            .map_err(|e| DialError::Address(e.to_string()))?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true);
        Ok(Self { endpoint, token })
    }

    /// The endpoint to connect (now, or lazily on first use).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// A call carrying `message` and the token.
    pub fn request<T>(&self, message: T) -> Request<T> {
        auth::attach(Request::new(message), self.token.as_ref())
    }
}
