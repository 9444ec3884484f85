//! Addresses as users write them, for every `rl` service: what a server listens on (and
//! binding it) and the URI a client dials.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Binds `addr` (see [`listen_target`]); the listener and the address it got (the real port
/// for port 0). `Err` says what went wrong and how to fix it; `example_port` goes in the hint.
pub async fn bind(addr: &str, example_port: u16) -> Result<(TcpListener, SocketAddr), String> {
    let target = listen_target(addr);
    let listener = TcpListener::bind(&target).await.map_err(|e| {
        format!(
            "{e}; give HOST:PORT of this machine with a free port, e.g. 127.0.0.1:{example_port} \
             (0.0.0.0:{example_port} for every interface)"
        )
    })?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, local))
}

/// The socket address to bind for `addr`: `HOST:PORT` as given, or a bare `PORT` on
/// 127.0.0.1 (servers listen on loopback unless told otherwise).
pub fn listen_target(addr: &str) -> String {
    if addr.parse::<u16>().is_ok() {
        format!("127.0.0.1:{addr}")
    } else {
        addr.to_owned()
    }
}

/// The URI to dial for `addr`: `http://host:port` or `https://…` as given, `host:port` as
/// `http://host:port`.
pub fn dial_uri(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_ports_and_schemes() {
        assert_eq!(listen_target("50051"), "127.0.0.1:50051");
        assert_eq!(listen_target("0.0.0.0:1"), "0.0.0.0:1");
        assert_eq!(dial_uri("h:1"), "http://h:1");
        assert_eq!(dial_uri("https://h:1"), "https://h:1");
    }
}
