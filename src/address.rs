//! Replica addresses as jina writes them: `host:port`, `[v6]:port`, `grpc://host:port` (plaintext),
//! `https://host:port` and `grpcs://host:port` (TLS). The key a replica is known by is the `host:port`
//! part, so `https://h:1` and `h:1` are the same replica (jina 3.1 could store the former twice).

use std::fmt;

use crate::error::{Error, Result};

/// A parsed, normalised replica address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    host: String,
    port: u16,
    tls: bool,
    key: String,
}

impl Address {
    /// Parses an address; see the module documentation for the accepted forms.
    pub fn parse(input: &str) -> Result<Address> {
        let err = |reason| Error::InvalidAddress {
            address: input.to_owned(),
            reason,
        };
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
        })
    }

    /// The host (without brackets for IPv6).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the scheme asked for TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// `host:port` (`[v6]:port`): the key a replica is known by.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The URI tonic connects to.
    pub(crate) fn uri(&self, tls: bool) -> String {
        format!("{}://{}", if tls { "https" } else { "http" }, self.key)
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
        ] {
            let e = Address::parse(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidAddress { .. }), "{bad:?} -> {e}");
            assert!(e.to_string().contains("invalid address"), "{e}");
        }
    }
}
