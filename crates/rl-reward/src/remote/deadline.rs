//! When a Score request must be answered by: the sooner of the client's deadline (the
//! `grpc-timeout` header) and the server's own limit per request.
//!
//! tonic's server also watches `grpc-timeout`, but answers CANCELLED ("Timeout expired") when
//! it runs out, counting from before the request body is read. To answer DEADLINE_EXCEEDED, as
//! gRPC specifies, the service gives up a little before that: 10% of the client's budget
//! earlier, at least 2 ms and at most 50 ms (a budget under 2 ms is refused at once).

use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;

/// How long before the client's deadline the service gives up: at least, at most.
const MARGIN: (Duration, Duration) = (Duration::from_millis(2), Duration::from_millis(50));

/// The instant to give up at, counted from `start`.
pub(crate) fn deadline(start: Instant, metadata: &MetadataMap, server_max: Duration) -> Instant {
    let budget = match client_timeout(metadata) {
        Some(client) => {
            let margin = (client / 10).clamp(MARGIN.0, MARGIN.1);
            server_max.min(client.saturating_sub(margin))
        }
        None => server_max,
    };
    start + budget
}

/// The client's timeout from `grpc-timeout` (`<1-8 digits><H|M|S|m|u|n>`); None when absent or
/// malformed.
fn client_timeout(metadata: &MetadataMap) -> Option<Duration> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    let unit = text.chars().last()?;
    let digits = text.get(..text.len() - unit.len_utf8())?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn with(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("grpc-timeout", value.parse().unwrap());
        m
    }

    #[test]
    fn parses_every_unit_and_refuses_garbage() {
        assert_eq!(client_timeout(&with("2H")), Some(Duration::from_secs(7200)));
        assert_eq!(client_timeout(&with("3M")), Some(Duration::from_secs(180)));
        assert_eq!(client_timeout(&with("4S")), Some(Duration::from_secs(4)));
        assert_eq!(client_timeout(&with("5m")), Some(Duration::from_millis(5)));
        assert_eq!(client_timeout(&with("6u")), Some(Duration::from_micros(6)));
        assert_eq!(client_timeout(&with("7n")), Some(Duration::from_nanos(7)));
        for bad in ["", "S", "123456789S", "5x", "-1S", "1.5S"] {
            assert_eq!(client_timeout(&with(bad)), None, "{bad:?}");
        }
        assert_eq!(client_timeout(&MetadataMap::new()), None);
    }

    #[test]
    fn the_sooner_wins_with_a_margin() {
        let start = Instant::now();
        let server = Duration::from_secs(60);
        assert_eq!(deadline(start, &MetadataMap::new(), server), start + server);
        assert_eq!(
            deadline(start, &with("200m"), server),
            start + Duration::from_millis(180)
        );
        assert_eq!(deadline(start, &with("1m"), server), start);
        assert_eq!(
            deadline(start, &with("10S"), server),
            start + Duration::from_millis(9950)
        );
        assert_eq!(
            deadline(start, &with("1S"), Duration::from_millis(100)),
            start + Duration::from_millis(100)
        );
    }
}
