//! jina's host checks: whether a host is this machine, and whether a connection goes from a global
//! address to a local one (`is_remote_local_connection`), with Python `ipaddress` semantics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};

/// `localhost`, `0.0.0.0` and loopback IPs are local; other IPs are not; any other name is an error
/// (jina raises `ValueError`).
pub fn host_is_local(host: &str) -> Result<bool> {
    if host == "localhost" || host == "0.0.0.0" {
        return Ok(true);
    }
    match parse_ip(host) {
        Some(ip) => Ok(ip.is_loopback()),
        None => Err(Error::InvalidHost {
            host: host.to_owned(),
            reason: "neither an IP address nor localhost",
        }),
    }
}

/// True only when `first` is global (a global IP, or any name but `localhost`) and `second` is
/// private or loopback (or `localhost`).
pub fn is_remote_local_connection(first: &str, second: &str) -> bool {
    let first_global = match parse_ip(first) {
        Some(ip) => is_global(ip),
        None => first != "localhost",
    };
    let second_local = match parse_ip(second) {
        Some(ip) => is_private(ip) || ip.is_loopback(),
        None => second == "localhost",
    };
    first_global && second_local
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    (u128::from(ip) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
}

/// Python's `ipaddress` `is_private` (IANA special-purpose registries, as in CPython 3.11).
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => [
            ([0, 0, 0, 0], 8),
            ([10, 0, 0, 0], 8),
            ([127, 0, 0, 0], 8),
            ([169, 254, 0, 0], 16),
            ([172, 16, 0, 0], 12),
            ([192, 0, 0, 0], 29),
            ([192, 0, 0, 170], 31),
            ([192, 0, 2, 0], 24),
            ([192, 168, 0, 0], 16),
            ([198, 18, 0, 0], 15),
            ([198, 51, 100, 0], 24),
            ([203, 0, 113, 0], 24),
            ([240, 0, 0, 0], 4),
            ([255, 255, 255, 255], 32),
        ]
        .iter()
        .any(|(net, p)| in_v4(v4, *net, *p)),
        IpAddr::V6(v6) => [
            ([0, 0, 0, 0, 0, 0, 0, 1], 128),
            ([0, 0, 0, 0, 0, 0, 0, 0], 128),
            ([0, 0, 0, 0, 0, 0xffff, 0, 0], 96),
            ([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
            ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
            ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
            ([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28),
            ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
            ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        ]
        .iter()
        .any(|(net, p)| in_v6(v6, *net, *p)),
    }
}

/// Python's `is_global`: not private, and (IPv4) not in the shared address space 100.64.0.0/10.
fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !in_v4(v4, [100, 64, 0, 0], 10) && !is_private(ip),
        IpAddr::V6(_) => !is_private(ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_local_truth_table() {
        for (a, b, expected) in [
            ("1.2.3.4", "localhost", true),
            ("1.2.3.4", "192.168.0.1", true),
            ("1.2.3.4", "127.0.0.1", true),
            ("1.2.3.4", "10.0.0.1", true),
            ("jina.ai", "localhost", true),
            ("jina.ai", "10.0.0.1", true),
            ("0.0.0.0", "0.0.0.0", false),
            ("localhost", "1.2.3.4", false),
            ("127.0.0.1", "localhost", false),
            ("192.168.0.1", "localhost", false),
            ("1.2.3.4", "1.2.3.5", false),
            ("1.2.3.4", "jina.ai", false),
            ("100.64.0.1", "localhost", false),
            ("2606:4700::1", "::1", true),
            ("::1", "localhost", false),
        ] {
            assert_eq!(is_remote_local_connection(a, b), expected, "({a}, {b})");
        }
    }

    #[test]
    fn host_is_local_truth_table() {
        for (host, expected) in [
            ("localhost", true),
            ("0.0.0.0", true),
            ("127.0.0.1", true),
            ("127.5.6.7", true),
            ("::1", true),
            ("1.2.3.4", false),
            ("192.168.0.1", false),
        ] {
            assert_eq!(host_is_local(host).unwrap(), expected, "{host}");
        }
        assert!(matches!(host_is_local("jina.ai"), Err(Error::InvalidHost { .. })));
        assert!(host_is_local("").is_err());
    }
}
