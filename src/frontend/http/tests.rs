//! Unit tests of request parsing, routing, the Host rule and responses.

use super::*;

fn loopback() -> Hosts {
    Hosts {
        bound: "127.0.0.1".parse().unwrap(),
        allowed: vec!["chat.example.org".into()],
    }
}

fn request(head: &str) -> Request {
    let (request, len) = parse(head.as_bytes()).unwrap().unwrap();
    assert_eq!(len, head.len());
    request
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade_from(host: &str, origin: Option<&str>) -> Route {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let head = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\n{origin}Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    route(&request(&head), &loopback())
}

#[test]
fn the_page_and_an_upgrade() {
    let r = request("GET /app.js?v=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
    assert!(!r.close);
    assert!(matches!(route(&r, &loopback()), Route::Asset { head: false, asset } if asset.body.contains("WebSocket")));
    // The RFC 6455 example key.
    assert_eq!(
        upgrade_from("127.0.0.1:8080", Some("http://127.0.0.1:8080")),
        Route::Upgrade {
            accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
        }
    );
    assert!(matches!(upgrade_from("localhost:8080", None), Route::Upgrade { .. }));
}

#[test]
fn only_our_host_names_are_served() {
    let hosts = loopback();
    for ok in [
        "127.0.0.1:8080",
        "127.0.0.1",
        "localhost:8080",
        "LOCALHOST",
        "chat.example.org",
        "Chat.Example.Org.:443",
    ] {
        assert!(hosts.allows(ok), "{ok}");
    }
    for bad in [
        "evil.example:8080",
        "127.0.0.2:8080",
        "localhost.evil.example",
        "[::1]:8080",
        "example.org",
    ] {
        assert!(!hosts.allows(bad), "{bad}");
    }
    assert_eq!(
        upgrade_from("rebind.evil.example:8080", Some("http://rebind.evil.example:8080")),
        Route::Refuse(421, "this server does not serve that host name")
    );
    let page = request("GET / HTTP/1.1\r\nHost: rebind.evil.example\r\n\r\n");
    assert!(matches!(route(&page, &hosts), Route::Refuse(421, _)));
    // Bound to every address: any address literal, and localhost.
    let all = Hosts {
        bound: "0.0.0.0".parse().unwrap(),
        allowed: Vec::new(),
    };
    assert!(all.allows("192.168.1.5:8080") && all.allows("[::1]:8080") && all.allows("localhost"));
    assert!(!all.allows("evil.example"));
    // A name-less v6 bind.
    let v6 = Hosts {
        bound: "::1".parse().unwrap(),
        allowed: Vec::new(),
    };
    assert!(v6.allows("[::1]:8080") && v6.allows("localhost:8080"));
}

#[test]
fn cross_origin_upgrades_are_refused() {
    assert_eq!(
        upgrade_from("127.0.0.1:8080", Some("http://evil.example")),
        Route::Refuse(403, "cross-origin WebSocket refused")
    );
    assert!(matches!(
        upgrade_from("127.0.0.1:8080", Some("http://127.0.0.1:8081")),
        Route::Refuse(403, _)
    ));
    assert!(matches!(
        upgrade_from("127.0.0.1:8080", Some("null")),
        Route::Refuse(403, _)
    ));
}

#[test]
fn malformed_and_odd_requests() {
    assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
    assert_eq!(parse(b"\x00\x01garbage\r\n\r\n"), Err(400));
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
    assert_eq!(parse(huge.as_bytes()), Err(431));
    let many: String = (0..40).map(|i| format!("X{i}: y\r\n")).collect();
    assert_eq!(parse(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), Err(431));
    let hosts = loopback();
    assert_eq!(
        route(&request("GET / HTTP/1.1\r\n\r\n"), &hosts),
        Route::Refuse(400, "a Host header is required")
    );
    assert!(matches!(
        route(&request("GET / HTTP/1.0\r\n\r\n"), &hosts),
        Route::Asset { .. }
    ));
    assert!(request("GET / HTTP/1.0\r\n\r\n").close);
    assert!(matches!(
        route(&request("POST / HTTP/1.1\r\nHost: localhost\r\n\r\n"), &hosts),
        Route::Refuse(405, _)
    ));
    assert!(matches!(
        route(&request("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n"), &hosts),
        Route::Refuse(404, _)
    ));
    assert!(matches!(
        route(
            &request("GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\n"),
            &hosts
        ),
        Route::Refuse(413, _)
    ));
    assert!(matches!(
        route(&request("GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n"), &hosts),
        Route::Refuse(400, _)
    ));
    assert!(matches!(
        route(
            &request("HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
            &hosts
        ),
        Route::Asset { head: true, .. }
    ));
    assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a\r\nHost: localhost\r\n\r\n"), Err(400));
}

#[test]
fn responses() {
    let page = asset(&ASSETS[0].1, false, false);
    let text = std::str::from_utf8(&page).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(text.contains("Content-Security-Policy: default-src 'none'"));
    assert!(text.contains(&format!("Content-Length: {}\r\n", ASSETS[0].1.body.len())));
    assert!(text.ends_with(ASSETS[0].1.body));
    let head = asset(&ASSETS[0].1, true, true);
    assert!(
        std::str::from_utf8(&head)
            .unwrap()
            .ends_with("Connection: close\r\n\r\n")
    );
    let no = refusal(421, "no");
    assert_eq!(&no[..], b"HTTP/1.1 421 Misdirected Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n");
    assert!(upgrade("abc").ends_with(b"Sec-WebSocket-Accept: abc\r\n\r\n"));
}
