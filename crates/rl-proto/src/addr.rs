//! Addresses as users write them, for every `rl` service: what a server listens on and the
//! URI a client dials.

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
