//! `postgres://` URLs as the inventory writes them: parsed, never holding a password.

use std::collections::BTreeMap;
use std::fmt;

/// Where a database is, as named in the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrl {
    pub user: Option<String>,
    /// Host name, IP address, or an absolute socket directory.
    pub host: String,
    pub port: u16,
    pub dbname: String,
    /// Query parameters (sslmode, application_name, connect_timeout, host, ...).
    pub params: BTreeMap<String, String>,
    /// True when the URL carried `user:password@`; the loader rejects it.
    pub had_password: bool,
}

impl PgUrl {
    /// `host:port/dbname` as shown to the operator (principle 3).
    pub fn display_target(&self) -> String {
        if self.host.starts_with('/') {
            format!("{}:{}/{}", self.host, self.port, self.dbname)
        } else if self.host.contains(':') {
            format!("[{}]:{}/{}", self.host, self.port, self.dbname)
        } else {
            format!("{}:{}/{}", self.host, self.port, self.dbname)
        }
    }

    /// The same server with another database name.
    pub fn with_dbname(&self, dbname: &str) -> PgUrl {
        PgUrl {
            dbname: dbname.to_string(),
            ..self.clone()
        }
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "postgres://")?;
        if let Some(u) = &self.user {
            write!(f, "{}@", pct_encode(u))?;
        }
        if self.host.starts_with('/') {
            write!(f, "{}", pct_encode(&self.host))?;
        } else if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            write!(f, "{}", self.host)?;
        }
        write!(f, ":{}/{}", self.port, pct_encode(&self.dbname))?;
        for (i, (k, v)) in self.params.iter().enumerate() {
            write!(
                f,
                "{}{}={}",
                if i == 0 { '?' } else { '&' },
                k,
                pct_encode(v)
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(pub String);

fn pct_decode(s: &str) -> Result<String, UrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UrlError(format!("bad percent-escape in '{s}'")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError(format!("'{s}' is not UTF-8 once decoded")))
}

fn pct_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `postgres[ql]://[user[:password]@]host[:port]/dbname[?k=v&...]`.
pub fn parse(url: &str) -> Result<PgUrl, UrlError> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| {
            UrlError(format!(
                "'{url}' is not a postgres:// URL (expected postgres://user@host:port/dbname)"
            ))
        })?;
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.split_once('/') {
        Some((a, p)) => (a, p),
        None => (main, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut had_password = false;
    let user = match userinfo {
        Some(u) => {
            let name = match u.split_once(':') {
                Some((name, _pw)) => {
                    had_password = true;
                    name
                }
                None => u,
            };
            Some(pct_decode(name)?).filter(|n| !n.is_empty())
        }
        None => None,
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| UrlError(format!("unclosed '[' in '{hostport}'")))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(UrlError(format!("junk after ']' in '{hostport}'"))),
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (pct_decode(h)?, Some(p)),
            None => (pct_decode(hostport)?, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| UrlError(format!("port '{p}' is not a number from 1 to 65535")))?,
        None => 5432,
    };
    let mut params = BTreeMap::new();
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(pct_decode(k)?, pct_decode(v)?);
        }
    }
    if params.contains_key("password") {
        had_password = true;
        params.remove("password");
    }
    let host = match params.remove("host") {
        Some(h) if host.is_empty() => h,
        Some(h) => {
            return Err(UrlError(format!(
                "both an address '{host}' and ?host='{h}' given: keep one"
            )));
        }
        None => host,
    };
    if host.is_empty() {
        return Err(UrlError(format!(
            "'{url}' names no host (write postgres://user@HOST:PORT/dbname)"
        )));
    }
    if !host.starts_with('/') && !valid_hostname(&host) {
        return Err(UrlError(format!(
            "'{host}' is not a valid host name or address"
        )));
    }
    let dbname = pct_decode(path)?;
    if dbname.is_empty() {
        return Err(UrlError(format!(
            "'{url}' names no database (write postgres://user@host:port/DBNAME)"
        )));
    }
    Ok(PgUrl {
        user,
        host,
        port,
        dbname,
        params,
        had_password,
    })
}

/// A DNS name or an IP address.
pub fn valid_hostname(h: &str) -> bool {
    if h.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Parses an SSH address `host[:port]` or `[v6]:port` (port defaults to 22).
pub fn parse_address(addr: &str) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(v6) = addr.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| UrlError(format!("unclosed '[' in '{addr}'")))?;
        (h, after.strip_prefix(':'))
    } else if addr.matches(':').count() > 1 {
        (addr, None) // bare IPv6
    } else {
        match addr.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        }
    };
    if !valid_hostname(host) {
        return Err(UrlError(format!(
            "'{addr}' is not host[:port] (e.g. 'db1.example.net:22' or '10.0.0.5')"
        )));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| UrlError(format!("port '{p}' in '{addr}' is not 1-65535")))?,
        None => 22,
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_url() {
        let u = parse("postgres://app@db.example.net:6432/TovPlay?sslmode=require").unwrap();
        assert_eq!(u.user.as_deref(), Some("app"));
        assert_eq!(u.host, "db.example.net");
        assert_eq!(u.port, 6432);
        assert_eq!(u.dbname, "TovPlay");
        assert_eq!(u.params["sslmode"], "require");
        assert!(!u.had_password);
        assert_eq!(u.display_target(), "db.example.net:6432/TovPlay");
        assert_eq!(parse(&u.to_string()).unwrap(), u);
    }

    #[test]
    fn socket_dir_and_password_detection() {
        let u = parse("postgresql://postgres@%2Ftmp%2Fs:5433/app").unwrap();
        assert_eq!(u.host, "/tmp/s");
        let u = parse("postgres:///app?host=/run/pg&port=1").unwrap();
        assert_eq!(u.host, "/run/pg");
        assert!(parse("postgres://a:pw@h/db").unwrap().had_password);
        assert!(parse("postgres://a@h/db?password=x").unwrap().had_password);
    }

    #[test]
    fn rejects_bad() {
        assert!(parse("mysql://h/db").is_err());
        assert!(parse("postgres://h:99999/db").is_err());
        assert!(parse("postgres://h:5432/").is_err());
        assert!(parse("postgres://bad host/db").is_err());
    }

    #[test]
    fn ssh_addresses() {
        assert_eq!(
            parse_address("h.example:2222").unwrap(),
            ("h.example".into(), 2222)
        );
        assert_eq!(parse_address("10.0.0.1").unwrap(), ("10.0.0.1".into(), 22));
        assert_eq!(parse_address("[::1]:22").unwrap(), ("::1".into(), 22));
        assert!(parse_address("h:0").is_err());
        assert!(parse_address("h x").is_err());
    }
}
