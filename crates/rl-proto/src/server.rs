//! The skeleton every `rl` gRPC server shares, so that each service (rollout worker, reward
//! server, and the next ones) binds, checks tokens, warns, reports codes and stops alike:
//!
//! - [`Listener::bind`] binds first, so a bad address fails before a model is loaded, and warns
//!   when the server listens beyond loopback without a token;
//! - [`Listener::check`] is the token check to wrap each service in;
//! - [`Listener::serve`] serves until the shutdown future completes, then gives the calls in
//!   flight a bounded grace period: a client that keeps its connection open cannot hold the
//!   server up;
//! - wire-level failures get the codes the protos promise: a message over the size cap is
//!   RESOURCE_EXHAUSTED (tonic says OUT_OF_RANGE) and a payload that is not the message
//!   INVALID_ARGUMENT (tonic says INTERNAL).

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::Notify};
use tonic::{
    Code, Status,
    service::Routes,
    transport::{Server, server::TcpIncoming},
};

use crate::{auth, secret::Secret};

/// Why a server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound.
    #[error("{role}: cannot listen on {addr}: {message}")]
    Listen {
        /// What the server is ("rollout worker", "reward server").
        role: &'static str,
        /// The address given.
        addr: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// Serving stopped with an I/O error.
    #[error("{role} on {addr} stopped: {message}")]
    Stopped {
        /// What the server is.
        role: &'static str,
        /// The address it listened on.
        addr: SocketAddr,
        /// What went wrong.
        message: String,
    },
    /// A setting that cannot work (a bad token, a zero limit).
    #[error("{0}")]
    Config(String),
}

/// A bound server, not yet serving.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
    role: &'static str,
    check: auth::Check,
}

impl Listener {
    /// Listens on `addr`: `HOST:PORT` (port 0 picks a free one), or a bare `PORT` on
    /// 127.0.0.1 (`example_port` goes in the hint of a failure). `role` names the server in
    /// messages. A token that cannot travel in a header fails here, before anything is served.
    pub async fn bind(
        addr: &str,
        example_port: u16,
        role: &'static str,
        token: Option<&Secret>,
    ) -> Result<Self, ServerError> {
        let check =
            auth::Check::new(token, role).map_err(|e| ServerError::Config(e.to_string()))?;
        let (listener, local) = crate::addr::bind(addr, example_port)
            .await
            .map_err(|message| ServerError::Listen {
                role,
                addr: addr.to_owned(),
                message,
            })?;
        if token.is_none() && !local.ip().is_loopback() {
            tracing::warn!("{}", exposed_warning(role, local));
        }
        Ok(Self {
            listener,
            addr: local,
            role,
            check,
        })
    }

    /// The address it listens on (with the port picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token check every service of this server is wrapped in
    /// (`InterceptedService::new(service, listener.check())`).
    pub fn check(&self) -> auth::Check {
        self.check.clone()
    }

    /// Serves `routes` until `shutdown` completes; then takes no new calls and waits at most
    /// `grace` for the calls in flight before returning.
    pub async fn serve(
        self,
        routes: Routes,
        shutdown: impl Future<Output = ()> + Send,
        grace: Duration,
    ) -> Result<(), ServerError> {
        let (role, addr) = (self.role, self.addr);
        let stopped = |e: tonic::transport::Error| ServerError::Stopped {
            role,
            addr,
            message: e.to_string(),
        };
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let stop = Arc::new(Notify::new());
        let stopping = stop.clone();
        let server = Server::builder()
            .layer(tower::util::MapResponseLayer::new(promised_codes))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, async move { stopping.notified().await });
        tokio::pin!(server);
        tokio::pin!(shutdown);
        tokio::select! {
            result = &mut server => return result.map_err(stopped),
            () = &mut shutdown => {}
        }
        // `notify_one` keeps the wake-up if the server is not yet waiting for it.
        stop.notify_one();
        match tokio::time::timeout(grace, server).await {
            Ok(result) => result.map_err(stopped),
            Err(_) => {
                tracing::warn!(
                    "{role}: calls still open after the {} ms grace period; stopping anyway",
                    grace.as_millis()
                );
                Ok(())
            }
        }
    }
}

/// The warning of a server that anyone who reaches its port may use.
pub fn exposed_warning(role: &str, addr: SocketAddr) -> String {
    format!(
        "listening on {addr} without a token: anyone who reaches this port can use the {role}; \
         give it a shared secret with --token-file or --token-env"
    )
}

/// Rewrites the status of a call that failed in tonic's codec to the code the protos promise.
fn promised_codes<B>(mut response: http::Response<B>) -> http::Response<B> {
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    let code = match status.code() {
        Code::OutOfRange if status.message().contains("message length too large") => {
            Code::ResourceExhausted
        }
        Code::Internal
            if status
                .message()
                .starts_with("failed to decode Protobuf message") =>
        {
            Code::InvalidArgument
        }
        _ => return response,
    };
    let hint = match code {
        Code::ResourceExhausted => {
            " (send smaller messages, or start the server with a larger --max-message-mib)"
        }
        _ => " (the payload is not the message this method takes)",
    };
    let status = Status::new(code, format!("{}{hint}", status.message()));
    // A message that cannot be written as a header keeps tonic's original status.
    let _ = status.add_header(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_status(status: Status) -> http::Response<()> {
        let mut response = http::Response::new(());
        let _ = status.add_header(response.headers_mut());
        response
    }

    fn code(response: &http::Response<()>) -> Option<Code> {
        Status::from_header_map(response.headers()).map(|s| s.code())
    }

    #[test]
    fn codec_failures_get_the_promised_codes() {
        let big = Status::out_of_range(
            "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes",
        );
        let garbage = Status::internal("failed to decode Protobuf message: invalid wire type");
        let other = Status::internal("the scorer panicked");
        assert_eq!(
            code(&promised_codes(with_status(big))),
            Some(Code::ResourceExhausted)
        );
        assert_eq!(
            code(&promised_codes(with_status(garbage))),
            Some(Code::InvalidArgument)
        );
        assert_eq!(
            code(&promised_codes(with_status(other))),
            Some(Code::Internal)
        );
        assert_eq!(code(&promised_codes(http::Response::new(()))), None);
    }
}
