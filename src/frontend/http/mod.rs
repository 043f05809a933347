//! The little HTTP a web server needs, pure: a request head parsed by `httparse`, what to answer
//! (the page, a WebSocket upgrade, or a refusal), and the response bytes.
//!
//! Only `GET`/`HEAD` of the page's three files and `GET /ws` exist, so no request has a body and
//! a request head is all there is to read. Hosts are checked before anything is served: a name
//! that is not ours (DNS rebinding: a remote page whose name resolves to 127.0.0.1) gets 421, the
//! page and the WebSocket alike.

use std::net::IpAddr;

use bytes::{BufMut, Bytes, BytesMut};

/// Longest request head accepted.
pub const MAX_HEAD: usize = 8 << 10;
/// Headers in a request, at most.
const MAX_HEADERS: usize = 32;

/// One of the page's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static str,
}

/// What the page is made of, by path.
pub const ASSETS: [(&str, Asset); 3] = [
    (
        "/",
        Asset {
            content_type: "text/html; charset=utf-8",
            body: include_str!("../page/index.html"),
        },
    ),
    (
        "/app.js",
        Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../page/app.js"),
        },
    ),
    (
        "/app.css",
        Asset {
            content_type: "text/css; charset=utf-8",
            body: include_str!("../page/app.css"),
        },
    ),
];

/// Scripts and styles only from this server; no frames, no plugins, no other host.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The parts of a request head that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without its query.
    pub path: String,
    /// HTTP/1.1 (true) or 1.0.
    pub http11: bool,
    pub host: Option<String>,
    pub origin: Option<String>,
    /// `Connection: close` (or HTTP/1.0 without keep-alive).
    pub close: bool,
    /// `Upgrade: websocket` with `Connection: upgrade`.
    pub upgrade: bool,
    pub key: Option<String>,
    pub version: Option<String>,
    /// A body is announced (none is expected).
    pub body: bool,
}

/// Who this server is, for the `Host` check.
#[derive(Debug, Clone)]
pub struct Hosts {
    /// The bound address.
    pub bound: IpAddr,
    /// Lowercase names served besides it.
    pub allowed: Vec<String>,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Serve a file (no body for `HEAD`).
    Asset { asset: Asset, head: bool },
    /// Switch to the WebSocket chat with this `Sec-WebSocket-Accept`.
    Upgrade { accept: String },
    /// Answer this status and text, then close.
    Refuse(u16, &'static str),
}

/// Parses a request head at the start of `buf`: `Ok(None)` while it is incomplete, else the
/// request and the head's length. `Err` is the status to refuse with.
pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, u16> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(431),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(431),
        Err(_) => return Err(400),
    };
    if len > MAX_HEAD {
        return Err(431);
    }
    let http11 = parsed.version == Some(1);
    let mut request = Request {
        method: parsed.method.unwrap_or_default().to_string(),
        path: parsed
            .path
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string(),
        http11,
        host: None,
        origin: None,
        close: !http11,
        upgrade: false,
        key: None,
        version: None,
        body: false,
    };
    let mut connection_upgrade = false;
    let mut upgrade_websocket = false;
    for header in parsed.headers.iter() {
        let Ok(value) = std::str::from_utf8(header.value) else {
            return Err(400);
        };
        let value = value.trim();
        let name = header.name;
        if name.eq_ignore_ascii_case("host") {
            if request.host.is_some() {
                return Err(400);
            }
            request.host = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("origin") {
            request.origin = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    request.close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    request.close = false;
                } else if token.eq_ignore_ascii_case("upgrade") {
                    connection_upgrade = true;
                }
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade_websocket = value.split(',').any(|t| t.trim().eq_ignore_ascii_case("websocket"));
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            request.key = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            request.version = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || (name.eq_ignore_ascii_case("content-length") && value != "0")
        {
            request.body = true;
        }
    }
    request.upgrade = connection_upgrade && upgrade_websocket;
    Ok(Some((request, len)))
}

/// Decides what to answer.
pub fn route(request: &Request, hosts: &Hosts) -> Route {
    if request.http11 && request.host.is_none() {
        return Route::Refuse(400, "a Host header is required");
    }
    if let Some(host) = &request.host
        && !hosts.allows(host)
    {
        return Route::Refuse(421, "this server does not serve that host name");
    }
    if request.body {
        return Route::Refuse(413, "requests have no body here");
    }
    let head = match request.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::Refuse(405, "only GET and HEAD"),
    };
    if request.path == "/ws" {
        if head || !request.upgrade {
            return Route::Refuse(400, "expected a WebSocket upgrade");
        }
        if request.version.as_deref() != Some("13") {
            return Route::Refuse(426, "WebSocket version 13 only");
        }
        let Some(key) = request.key.as_deref().filter(|k| k.len() == 24) else {
            return Route::Refuse(400, "missing or malformed Sec-WebSocket-Key");
        };
        if !same_origin(request) {
            return Route::Refuse(403, "cross-origin WebSocket refused");
        }
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        return Route::Upgrade { accept };
    }
    match ASSETS.iter().find(|(path, _)| *path == request.path) {
        Some((_, asset)) => Route::Asset { asset: *asset, head },
        None => Route::Refuse(404, "not found"),
    }
}

impl Hosts {
    /// True for the bound address (any address when bound to all of them), `localhost` when bound
    /// to loopback, and the allowed names. The port is not checked: DNS rebinding is about names.
    pub fn allows(&self, host: &str) -> bool {
        let name = strip_port(host).trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            return ip == self.bound || self.bound.is_unspecified() || self.allowed.contains(&name);
        }
        if name == "localhost" && (self.bound.is_loopback() || self.bound.is_unspecified()) {
            return true;
        }
        self.allowed.contains(&name)
    }
}

/// `name:port` or `[v6]:port` without the port.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// A browser always sends `Origin`; it must name the host the page came from (the `Host`
/// header). Clients that are not browsers send none and cannot be tricked into riding a user's
/// session.
fn same_origin(request: &Request) -> bool {
    let Some(origin) = &request.origin else {
        return true;
    };
    let Some(host) = &request.host else {
        return false;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !authority.is_empty() && authority.eq_ignore_ascii_case(host)
}

/// The response to a file request.
pub fn asset(asset: &Asset, head: bool, close: bool) -> Bytes {
    let mut out = BytesMut::with_capacity(512 + asset.body.len());
    status_line(&mut out, 200);
    header(&mut out, "Content-Type", asset.content_type);
    header(&mut out, "Content-Security-Policy", CSP);
    header(&mut out, "X-Content-Type-Options", "nosniff");
    header(&mut out, "Cache-Control", "no-cache");
    header(&mut out, "Content-Length", &asset.body.len().to_string());
    header(&mut out, "Connection", if close { "close" } else { "keep-alive" });
    out.put_slice(b"\r\n");
    if !head {
        out.put_slice(asset.body.as_bytes());
    }
    out.freeze()
}

/// A refusal (the connection closes after it).
pub fn refusal(status: u16, text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(256);
    status_line(&mut out, status);
    header(&mut out, "Content-Type", "text/plain; charset=utf-8");
    header(&mut out, "Content-Length", &(text.len() + 1).to_string());
    if status == 426 {
        header(&mut out, "Sec-WebSocket-Version", "13");
    }
    if status == 405 {
        header(&mut out, "Allow", "GET, HEAD");
    }
    header(&mut out, "Connection", "close");
    out.put_slice(b"\r\n");
    out.put_slice(text.as_bytes());
    out.put_slice(b"\n");
    out.freeze()
}

/// The switch to the WebSocket protocol.
pub fn upgrade(accept: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(160);
    status_line(&mut out, 101);
    header(&mut out, "Upgrade", "websocket");
    header(&mut out, "Connection", "Upgrade");
    header(&mut out, "Sec-WebSocket-Accept", accept);
    out.put_slice(b"\r\n");
    out.freeze()
}

fn status_line(out: &mut BytesMut, status: u16) {
    let reason = match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        421 => "Misdirected Request",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    out.put_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
}

fn header(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
