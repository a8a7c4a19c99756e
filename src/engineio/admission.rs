//! Who may open a session: the client's address (from `X-Forwarded-For` only behind a
//! trusted proxy), sessions per address, handshakes per address per second, sessions in all.

use std::net::IpAddr;
use std::time::Instant;

use http::HeaderMap;

use super::config::Admission;
use super::error::Error;
use crate::limits::{IpKey, Limit, PerIp, TokenBucket};

/// Most addresses tracked per table; an attack from more addresses than this is refused
/// by the global cap instead.
const TRACKED_ADDRESSES: usize = 65_536;

/// The per-address state of one endpoint.
#[derive(Debug)]
pub(crate) struct Gate {
    sessions: PerIp<usize>,
    handshakes: PerIp<TokenBucket>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            sessions: PerIp::new(TRACKED_ADDRESSES),
            handshakes: PerIp::new(TRACKED_ADDRESSES),
        }
    }
}

/// The client's address: the peer's, or — when the peer is a trusted proxy — the nearest
/// untrusted address of `X-Forwarded-For`, read from the right.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, rules: &Admission) -> IpAddr {
    let trusted = |ip: &IpAddr| rules.trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(text) = value.to_str() else {
            return client;
        };
        for hop in text.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if trusted(&ip) => client = ip,
                Ok(ip) => return ip,
                Err(_) => return client,
            }
        }
    }
    client
}

impl Gate {
    /// Admit a new session from `ip` when `open` sessions are open; the caller must call
    /// [`Gate::left`] when an admitted session ends. The refusal names the limit.
    pub(crate) fn admit(
        &self,
        ip: IpAddr,
        open: usize,
        rules: &Admission,
        now: Instant,
    ) -> Result<(), (Limit, Error)> {
        if rules.max_sessions.is_some_and(|max| open >= max) {
            return Err((Limit::MaxConnections, Error::Busy("Too many connections")));
        }
        let key = IpKey::from(ip);
        if let Some(rate) = rules.handshakes_per_ip {
            let allowed = self.handshakes.with(
                key,
                || TokenBucket::new(rate, now),
                |b| b.is_full(rate, now),
                |b| b.try_take(rate, now),
            );
            // An address the table has no room for is not rate-limited; the caps still hold.
            if allowed == Some(false) {
                return Err((
                    Limit::HandshakesPerIp,
                    Error::Busy("Too many new connections from this address"),
                ));
            }
        }
        let max = rules.max_sessions_per_ip.unwrap_or(usize::MAX);
        match self.sessions.acquire(key, max) {
            Some(true) => Ok(()),
            Some(false) => Err((
                Limit::ConnectionsPerIp,
                Error::Busy("Too many connections from this address"),
            )),
            None => Err((Limit::MaxConnections, Error::Busy("Too many connections"))),
        }
    }

    /// A session admitted from `ip` ended.
    pub(crate) fn left(&self, ip: IpAddr) {
        self.sessions.release(IpKey::from(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Rate;
    use std::time::Duration;

    fn rules() -> Admission {
        Admission {
            max_sessions: Some(10),
            max_sessions_per_ip: Some(2),
            handshakes_per_ip: Some(Rate::new(1, Duration::from_secs(1), Some(3))),
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        }
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.7".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &headers, &rules()),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        let stranger: IpAddr = "5.5.5.5".parse().unwrap();
        assert_eq!(
            client_ip(stranger, &headers, &rules()),
            stranger,
            "only proxies are believed"
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &rules()), proxy);
        let mut junk = HeaderMap::new();
        junk.append("x-forwarded-for", "nonsense".parse().unwrap());
        assert_eq!(client_ip(proxy, &junk, &rules()), proxy);
    }

    #[test]
    fn sessions_per_address_and_in_all_are_capped_and_freed() {
        let gate = Gate::default();
        let now = Instant::now();
        let a: IpAddr = "1.1.1.1".parse().unwrap();
        let b: IpAddr = "2.2.2.2".parse().unwrap();
        assert!(gate.admit(a, 0, &rules(), now).is_ok());
        assert!(gate.admit(a, 1, &rules(), now).is_ok());
        let (limit, error) = gate.admit(a, 2, &rules(), now).unwrap_err();
        assert_eq!(limit, Limit::ConnectionsPerIp);
        assert_eq!(error.status(), 503);
        gate.left(a);
        assert!(
            gate.admit(a, 2, &rules(), now + Duration::from_secs(5))
                .is_ok(),
            "freed"
        );
        assert_eq!(
            gate.admit(b, 10, &rules(), now).unwrap_err().0,
            Limit::MaxConnections
        );
    }

    #[test]
    fn handshakes_per_address_follow_the_bucket() {
        let gate = Gate::default();
        let now = Instant::now();
        let open = Admission {
            max_sessions_per_ip: None,
            ..rules()
        };
        let a: IpAddr = "1.1.1.1".parse().unwrap();
        for _ in 0..3 {
            assert!(gate.admit(a, 0, &open, now).is_ok());
        }
        assert_eq!(
            gate.admit(a, 0, &open, now).unwrap_err().0,
            Limit::HandshakesPerIp
        );
        assert!(
            gate.admit(a, 0, &open, now + Duration::from_secs(1))
                .is_ok(),
            "refilled"
        );
    }
}
