//! `X-Forwarded-For` and the peer address: whom the throttles count.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use tokenlab_core::request::{client_ip, throttle_client};

fuzz_target!(|input: (bool, [u8; 4], &str)| {
    let (trusted, octets, forwarded) = input;
    let peer = IpAddr::V4(Ipv4Addr::from(octets));
    let proxies = if trusted { vec![peer] } else { vec![IpAddr::V4(Ipv4Addr::LOCALHOST)] };
    let client = client_ip(peer, Some(forwarded), &proxies);
    if !proxies.contains(&peer) {
        // Nothing the client writes moves it off its own address.
        assert_eq!(client, peer);
    } else if client != peer {
        // Only the last entry, the one the proxy appended, is believed.
        let last = forwarded.rsplit(',').next().unwrap_or_default().trim();
        assert_eq!(last.parse::<IpAddr>().ok(), Some(client));
    }
    let bucket = throttle_client(client);
    assert!(!bucket.is_empty() && bucket.len() <= 45, "{bucket}");
});
