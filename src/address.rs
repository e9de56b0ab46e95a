//! Replica addresses as jina writes them: `host:port`, `[v6]:port`, `grpc://host:port` (plaintext),
//! `https://host:port` and `grpcs://host:port` (TLS). The key a replica is known by is the `host:port`
//! part, so `https://h:1` and `h:1` are the same replica (jina 3.1 could store the former twice).
//!
//! Beyond jina, gRPC's naming: `unix:path` and `unix:///absolute/path` (a Unix domain socket, keyed
//! and shown as given), and `dns:///host:port` (also `dns:host:port`): a name whose every A/AAAA
//! record becomes a replica of its own, re-resolved while the pool lives (a plain `host:port` is one
//! replica, resolved when it connects).

use std::fmt;

use crate::error::{Error, Result};

/// A parsed, normalised replica address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    host: String,
    port: u16,
    tls: bool,
    key: String,
    kind: Kind,
}

/// What an address names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One TCP endpoint (`host` resolved when it connects).
    Tcp,
    /// A Unix domain socket at `host` (the path).
    Unix,
    /// Every address `host` resolves to (`dns:///host:port`).
    Dns,
}

impl Address {
    /// Parses an address; see the module documentation for the accepted forms.
    pub fn parse(input: &str) -> Result<Address> {
        let err = |reason| Error::InvalidAddress {
            address: input.to_owned(),
            reason,
        };
        // The routes text separates addresses with commas and columns with tabs: neither is part of
        // a host name, and a socket path with them is refused rather than shown ambiguously.
        if input.contains(',') {
            return Err(err("a ',' is not allowed in an address"));
        }
        if input.chars().any(char::is_control) {
            return Err(err("a control character is not allowed in an address"));
        }
        if let Some(rest) = input.strip_prefix("unix:") {
            // unix:path, or unix:///absolute (gRPC's naming); unix://authority/path is not one of them.
            let path = match rest.strip_prefix("//") {
                Some(abs) if abs.starts_with('/') => abs,
                Some(_) => return Err(err("unix:// needs an absolute path: unix:///path (or unix:path)")),
                None => rest,
            };
            if path.is_empty() || path.contains('\0') || path.chars().any(char::is_control) {
                return Err(err("empty or invalid unix socket path"));
            }
            return Ok(Address {
                host: path.to_owned(),
                port: 0,
                tls: false,
                key: input.to_owned(),
                kind: Kind::Unix,
            });
        }
        if let Some(rest) = input.strip_prefix("dns:") {
            // dns:///host:port, dns:host:port (no authority: the system's resolver)
            let target = match rest.strip_prefix("//") {
                Some(after) => after
                    .strip_prefix('/')
                    .ok_or_else(|| err("dns:// with an authority is not supported: use dns:///host:port"))?,
                None => rest,
            };
            let mut a = Address::parse(target).map_err(|_| err("dns: needs host:port"))?;
            if a.kind != Kind::Tcp || a.tls || target.contains("://") {
                return Err(err("dns: needs host:port"));
            }
            a.kind = Kind::Dns;
            a.key = format!("dns:///{}", a.key);
            return Ok(a);
        }
        let (tls, rest) = match input.split_once("://") {
            None => (false, input),
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "grpc" | "http" => (false, rest),
                "https" | "grpcs" => (true, rest),
                "" => return Err(err("empty scheme")),
                _ => return Err(err("unsupported scheme (use grpc://, https:// or grpcs://)")),
            },
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(err("empty address"));
        }
        if rest.contains(['/', '?', '#', '@']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err("expected host:port only"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| err("unclosed '[' in IPv6 address"))?;
            let port = after.strip_prefix(':').ok_or_else(|| err("missing port"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(err("invalid IPv6 address in brackets"));
            }
            (host, port)
        } else {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| err("missing port"))?;
            if host.contains(':') {
                return Err(err("IPv6 addresses must be written in brackets: [addr]:port"));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(err("empty host"));
        }
        if port.is_empty() {
            return Err(err("missing port"));
        }
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("port is not a number"));
        }
        let port: u16 = port.parse().map_err(|_| err("port out of range (1-65535)"))?;
        if port == 0 {
            return Err(err("port out of range (1-65535)"));
        }
        let key = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Address {
            host: host.to_owned(),
            port,
            tls,
            key,
            kind: Kind::Tcp,
        })
    }

    /// What the address names: a TCP endpoint, a Unix socket, or the records of a DNS name.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The address of one resolved record of a `dns:` address: `ip:port`, TLS as the name's.
    pub(crate) fn resolved(&self, ip: std::net::IpAddr) -> Address {
        let host = ip.to_string();
        let key = std::net::SocketAddr::new(ip, self.port).to_string();
        Address {
            host,
            port: self.port,
            tls: self.tls,
            key,
            kind: Kind::Tcp,
        }
    }

    /// The host (without brackets for IPv6); the path of a Unix socket.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (0 for a Unix socket).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the scheme asked for TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// `host:port` (`[v6]:port`), `unix:...` as given, `dns:///host:port`: the key a replica is known by.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The URI of the address: `http(s)://host:port`, `unix:path`.
    pub(crate) fn uri(&self, tls: bool) -> String {
        match self.kind {
            Kind::Unix => format!("unix:{}", self.host),
            _ => format!("{}://{}", if tls { "https" } else { "http" }, self.host_port()),
        }
    }

    /// `host:port` (`[v6]:port`).
    fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

impl std::str::FromStr for Address {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Address::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let a = Address::parse("localhost:8080").unwrap();
        assert_eq!(
            (a.host(), a.port(), a.tls(), a.key()),
            ("localhost", 8080, false, "localhost:8080")
        );
        let a = Address::parse("[::1]:5").unwrap();
        assert_eq!((a.host(), a.key()), ("::1", "[::1]:5"));
        assert!(!Address::parse("grpc://h:1").unwrap().tls());
        assert!(Address::parse("https://h:1").unwrap().tls());
        assert!(Address::parse("grpcs://h:1/").unwrap().tls());
        assert_eq!(
            Address::parse("https://h:1").unwrap().key(),
            Address::parse("h:1").unwrap().key()
        );
        assert_eq!(Address::parse("grpc://[::1]:9").unwrap().uri(false), "http://[::1]:9");
        for (given, path) in [
            ("unix:/tmp/w.sock", "/tmp/w.sock"),
            ("unix:///tmp/w.sock", "/tmp/w.sock"),
            ("unix:rel.sock", "rel.sock"),
        ] {
            let a = Address::parse(given).unwrap();
            assert_eq!(
                (a.kind(), a.host(), a.key()),
                (Kind::Unix, path, given),
                "keyed as given"
            );
            assert_eq!(a.uri(false), format!("unix:{path}"));
        }
        let d = Address::parse("dns:///workers.svc:8080").unwrap();
        assert_eq!(
            (d.kind(), d.host(), d.port(), d.key()),
            (Kind::Dns, "workers.svc", 8080, "dns:///workers.svc:8080")
        );
        assert_eq!(Address::parse("dns:w:1").unwrap().key(), "dns:///w:1");
        let r = d.resolved("127.0.0.2".parse().unwrap());
        assert_eq!((r.kind(), r.key()), (Kind::Tcp, "127.0.0.2:8080"));
        assert_eq!(d.resolved("::1".parse().unwrap()).key(), "[::1]:8080");
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "",
            "h",
            "h:",
            ":80",
            "h:0",
            "h:65536",
            "h:-1",
            "h:8x",
            "ftp://h:1",
            "://h:1",
            "https://",
            "::1:80",
            "[::1]",
            "[::1",
            "[zz]:1",
            "h:1/path",
            "user@h:1",
            "h h:1",
            "grpc://h",
            "unix:",
            "unix://host/path",
            "dns://8.8.8.8/h:1",
            "dns:///h",
            "dns:///unix:/x",
            "dns:https://h:1",
        ] {
            let e = Address::parse(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidAddress { .. }), "{bad:?} -> {e}");
            assert!(e.to_string().contains("invalid address"), "{e}");
        }
    }
}
