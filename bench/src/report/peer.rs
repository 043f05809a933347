//! The peer's rows in BENCHMARKS.md (pure): ngircd's figures beside ours from the same run, and a
//! note on how it was configured.

use serde_json::Value;

/// The peer's rows (figure, target, measured, verdict); one saying so when ngircd was not
/// installed, none when the peer scenario did not run.
pub fn rows(f: &Value) -> Vec<[String; 4]> {
    let peer = &f["peer"];
    if peer.is_null() {
        return Vec::new();
    }
    let row = |figure: String, measured: String| [figure, "-".into(), measured, "-".into()];
    if peer["installed"] == false {
        return vec![row("ngircd (peer)".into(), "ngircd not installed".into())];
    }
    let (fan, ours) = (&peer["fanout"], &f["fanout"]["multi"]);
    let rate = &fan["deliveries_per_sec"];
    let ratio = rate
        .as_f64()
        .zip(ours["deliveries_per_sec"].as_f64())
        .map(|(p, o)| p / o);
    // A figure of the peer's, then ours (multi-process) from the same run.
    let both =
        |p: &Value, o: &Value, key: &str| format!("{} (ours {})", ms(&p["latency"][key]), ms(&o["latency"][key]));
    let lost = fan["expected"]
        .as_u64()
        .zip(fan["received"].as_u64())
        .map(|(e, r)| e.saturating_sub(r));
    let (one, ours_one) = (&peer["latency"], &f["latency"]["multi"]);
    vec![
        row(
            format!(
                "ngircd {} (peer): fan-out, {} clients in one channel, {} senders x {} `PRIVMSG`, deliveries/s",
                peer["version"].as_str().unwrap_or("?"),
                fan["clients"],
                fan["senders"],
                fan["messages"]
            ),
            match ratio {
                Some(r) => format!(
                    "{}: **{r:.2}x** ours (multi-process: {})",
                    num(rate),
                    num(&ours["deliveries_per_sec"])
                ),
                None => format!("{} (ours not measured in this run)", num(rate)),
            },
        ),
        row(
            "ngircd (peer): fan-out delivery latency p50 / p99".into(),
            format!("{} / {}", both(fan, ours, "p50_us"), both(fan, ours, "p99_us")),
        ),
        row(
            "ngircd (peer): fan-out deliveries missing, clients disconnected".into(),
            format!(
                "{}, {}",
                lost.map_or("n/a".into(), |l| l.to_string()),
                fan["disconnected"]
            ),
        ),
        row(
            "ngircd (peer): its CPU time (user + system) per 1 M fan-out deliveries; its RSS after".into(),
            format!(
                "{} (ours {}); {} KiB",
                fan["cpu_seconds_per_million_deliveries"]
                    .as_f64()
                    .map_or("n/a".into(), |s| format!("{s:.3} s")),
                f["fanout"]["multi"]["cpu_seconds_per_million"]
                    .as_f64()
                    .map_or("n/a".into(), |s| format!("{s:.3} s, every process")),
                fan["rss_kib"]["ngircd"]
            ),
        ),
        row(
            "ngircd (peer): 1:1 `PRIVMSG` latency at 1,000 msg/s, p50 / p99".into(),
            format!("{} / {}", both(one, ours_one, "p50_us"), both(one, ours_one, "p99_us")),
        ),
    ]
}

/// How the peer was run, for below the table; empty unless it ran.
pub fn note(f: &Value) -> &'static str {
    if f["peer"]["installed"] != true {
        return "";
    }
    "\nThe peer is Debian's `ngircd` on loopback, driven by IRC clients from the same load generator\n\
     (IRC does not echo a line to its sender: a channel line makes one delivery fewer than a\n\
     `msgall`). Its flood limits are lifted as far as its configuration allows: `MaxConnectionsIP = 0`,\n\
     `MaxConnections = 0`, `MaxJoins = 0`, `MaxPenaltyTime = 0` (no penalty time), no DNS, IDENT or\n\
     PAM look-ups, and every client an operator with user mode `+F` (flood protection off). Compiled\n\
     in and left as they are: 10 commands per client per turn of its loop (with `+F`), a 32 KiB\n\
     send queue per client, and a listen backlog of 10 (so its clients log in 8 at a time).\n"
}

fn ms(v: &Value) -> String {
    v.as_f64()
        .map_or("n/a".to_string(), |us| format!("{:.2} ms", us / 1000.0))
}

fn num(v: &Value) -> String {
    v.as_f64().map_or("n/a".to_string(), |n| format!("{n:.0}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn no_rows_without_the_scenario_and_one_without_ngircd() {
        assert!(rows(&json!({})).is_empty());
        assert_eq!(note(&json!({})), "");
        let missing = rows(&json!({"peer": {"installed": false}}));
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0][2], "ngircd not installed");
        assert_eq!(note(&json!({"peer": {"installed": false}})), "");
    }

    #[test]
    fn the_peer_beside_ours() {
        let latency = |p50: u64, p99: u64| json!({"p50_us": p50, "p99_us": p99});
        let f = json!({
            "fanout": {"multi": {
                "deliveries_per_sec": 8_000_000.0, "latency": latency(350_000, 500_000),
                "cpu_seconds_per_million": 0.125,
            }},
            "latency": {"multi": {"latency": latency(230, 500)}},
            "peer": {
                "installed": true, "version": "26.1",
                "fanout": {
                    "clients": 1000, "senders": 20, "messages": 200, "expected": 3_996_000, "received": 3_996_000,
                    "disconnected": 0, "deliveries_per_sec": 2_000_000.0, "latency": latency(1_000_000, 2_000_000),
                    "cpu_seconds_per_million_deliveries": 0.33, "rss_kib": {"ngircd": 12_000},
                },
                "latency": {"latency": latency(90, 1_200)},
            },
        });
        let rows = rows(&f);
        let measured: Vec<&str> = rows.iter().map(|r| r[2].as_str()).collect();
        assert_eq!(
            measured,
            [
                "2000000: **0.25x** ours (multi-process: 8000000)",
                "1000.00 ms (ours 350.00 ms) / 2000.00 ms (ours 500.00 ms)",
                "0, 0",
                "0.330 s (ours 0.125 s, every process); 12000 KiB",
                "0.09 ms (ours 0.23 ms) / 1.20 ms (ours 0.50 ms)",
            ]
        );
        assert!(rows[0][0].starts_with("ngircd 26.1 (peer): fan-out, 1000 clients"));
        assert!(note(&f).contains("MaxPenaltyTime = 0"));
    }
}
