//! Facts about a request that security rules depend on: where it came from, and from which site.

use std::net::IpAddr;

/// The client's address. `X-Forwarded-For` is believed only when the connection comes from a
/// configured proxy, and then only its last entry (the one that proxy appended): anything to the
/// left of it was written by the client and can be forged.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted_proxies: &[IpAddr]) -> IpAddr {
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    forwarded_for
        .and_then(|header| header.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(peer)
}

/// The client as throttles count it: an IPv4 address, or the /64 network of an IPv6 one. One
/// subscriber routinely holds a whole /64 (2^64 addresses), so counting IPv6 addresses one by one
/// would give a single guesser unlimited buckets. An IPv4-mapped IPv6 address counts as the IPv4
/// address it carries.
pub fn throttle_client(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Whether a state-changing request was sent by a page of another site (cross-site request
/// forgery). Browsers send `Origin` on every cross-origin POST and `Sec-Fetch-Site` on every
/// request; a request with neither (curl, a server) is not a browser being tricked.
pub fn is_cross_site(
    origin: Option<&str>,
    sec_fetch_site: Option<&str>,
    allowed_origins: &[String],
) -> bool {
    if sec_fetch_site == Some("cross-site") {
        return true;
    }
    match origin {
        None => false,
        // Browsers send the literal "null" from sandboxed frames and some redirects: never ours.
        Some(origin) => !allowed_origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_count_ipv6_clients_by_their_64_network() {
        let cases = [
            ("203.0.113.7", "203.0.113.7"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
            ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
            ("::1", "0:0:0:0::/64"),
        ];
        for (ip, expected) in cases {
            let ip: IpAddr = ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
            assert_eq!(throttle_client(ip), expected, "{ip}");
        }
    }

    #[test]
    fn client_ip_trusts_only_configured_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let cases: [(IpAddr, Option<&str>, &[IpAddr], IpAddr); 6] = [
            (client, None, &[], client),
            (client, Some("198.51.100.1"), &[], client),
            (client, Some("198.51.100.1"), &[proxy], client),
            (proxy, Some("203.0.113.7"), &[proxy], client),
            (proxy, Some("6.6.6.6, 203.0.113.7"), &[proxy], client),
            (proxy, Some("garbage"), &[proxy], proxy),
        ];
        for (peer, header, trusted, expected) in cases {
            assert_eq!(client_ip(peer, header, trusted), expected, "{peer} {header:?}");
        }
    }

    #[test]
    fn cross_site_detection() {
        let allowed = vec!["http://127.0.0.1:3000".to_owned(), "http://localhost:3000".to_owned()];
        let cases = [
            (None, None, false),
            (Some("http://127.0.0.1:3000"), Some("same-origin"), false),
            (Some("http://localhost:3000"), None, false),
            (Some("HTTP://LOCALHOST:3000"), None, false),
            (Some("https://evil.example"), None, true),
            (Some("http://127.0.0.1:3001"), Some("same-site"), true),
            (Some("null"), None, true),
            (None, Some("cross-site"), true),
            (Some("http://127.0.0.1:3000"), Some("cross-site"), true),
            (None, Some("none"), false),
        ];
        for (origin, fetch_site, expected) in cases {
            assert_eq!(
                is_cross_site(origin, fetch_site, &allowed),
                expected,
                "{origin:?} {fetch_site:?}"
            );
        }
    }
}
