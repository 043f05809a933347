//! The figures as BENCHMARKS.md (pure): a table of each figure against its target, then the raw
//! JSON. Given an earlier run's figures (`--before`), the table has a column for them too: each
//! row beside the row of the same name in the earlier run.

mod cluster;
mod peer;

use serde_json::Value;

/// Each figure of `f` as a table row: figure, target, measured, verdict. A row's figure names
/// what was measured and under which load, never a result, so that two runs' rows match by it.
fn rows(f: &Value) -> Vec<[String; 4]> {
    let ms = |v: &Value| {
        v.as_f64()
            .map_or("n/a".to_string(), |us| format!("{:.2} ms", us / 1000.0))
    };
    let num = |v: &Value| v.as_f64().map_or("n/a".to_string(), |n| format!("{n:.0}"));
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "n/a",
    };
    let mut rows: Vec<[String; 4]> = Vec::new();
    let fan = &f["fanout"];
    if !fan.is_null() {
        let (multi, base) = (
            &fan["multi"]["deliveries_per_sec"],
            &fan["baseline"]["deliveries_per_sec"],
        );
        let ratio = multi.as_f64().zip(base.as_f64()).map(|(m, b)| m / b);
        rows.push([
            format!(
                "fan-out: {} clients over 3 tcp + 1 ws, {} senders x {} `msgall`, deliveries/s",
                fan["multi"]["clients"], fan["multi"]["senders"], fan["multi"]["messages"]
            ),
            ">= 0.8x baseline".into(),
            format!(
                "{} (baseline {}): **{:.2}x**",
                num(multi),
                num(base),
                ratio.unwrap_or(0.0)
            ),
            verdict(ratio.map(|r| r >= 0.8)).into(),
        ]);
        for (label, key) in [("p50", "p50_us"), ("p99", "p99_us")] {
            let (m, b) = (&fan["multi"]["latency"][key], &fan["baseline"]["latency"][key]);
            let ratio = m.as_f64().zip(b.as_f64()).map(|(m, b)| m / b);
            rows.push([
                format!("fan-out delivery latency {label} (queueing under a burst)"),
                "-".into(),
                format!("{} (baseline {}): {:.2}x", ms(m), ms(b), ratio.unwrap_or(0.0)),
                "-".into(),
            ]);
        }
        let lost = fan["multi"]["expected"].as_u64().unwrap_or(0) - fan["multi"]["received"].as_u64().unwrap_or(0);
        let (m, b) = (
            &fan["multi"]["cpu_seconds_per_million"],
            &fan["baseline"]["cpu_seconds_per_million"],
        );
        rows.push([
            "fan-out: server CPU (every process, user + system) per 1 M deliveries".into(),
            "-".into(),
            m.as_f64().map_or("n/a".into(), |m| {
                format!("{m:.3} s (baseline {:.3} s)", b.as_f64().unwrap_or(0.0))
            }),
            "-".into(),
        ]);
        rows.push([
            "fan-out deliveries missing".into(),
            "0".into(),
            lost.to_string(),
            verdict(Some(lost == 0)).into(),
        ]);
    }
    let big = &f["fanout_5000"];
    if !big.is_null() {
        let ratios: Vec<String> = big["ratios"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_f64).map(|r| format!("{r:.2}x")).collect())
            .unwrap_or_default();
        let min = big["min_ratio"].as_f64();
        rows.push([
            format!(
                "fan-out: {} clients over 3 tcp + 1 ws, {} senders x {} `msgall`, deliveries/s, smallest ratio of {} interleaved rounds",
                big["clients"],
                big["senders"],
                big["messages"],
                ratios.len()
            ),
            ">= 0.8x baseline in every run".into(),
            min.map_or("n/a".into(), |m| format!("**{m:.2}x** (rounds: {})", ratios.join(", "))),
            verdict(min.map(|m| m >= 0.8)).into(),
        ]);
        let lost = big["multi_lost"].as_u64();
        rows.push([
            format!("fan-out at {} clients: deliveries missing, all rounds", big["clients"]),
            "0".into(),
            lost.map_or("n/a".into(), |l| l.to_string()),
            verdict(lost.map(|l| l == 0)).into(),
        ]);
    }
    let burst = &f["burst"];
    if !burst.is_null() {
        let what = format!(
            "burst: {} senders x {} `msgall` to {} reading clients over 3 tcp + 1 ws",
            burst["senders"], burst["messages"], burst["clients"]
        );
        let lost = burst["lost"].as_u64();
        rows.push([
            format!("{what}: deliveries lost"),
            "0".into(),
            lost.map_or("n/a".into(), |l| format!("{l} of {}", burst["expected"])),
            verdict(lost.map(|l| l == 0)).into(),
        ]);
        let closed = burst["closed"].as_u64();
        rows.push([
            format!("{what}: clients dropped or closed"),
            "0".into(),
            closed.map_or("n/a".into(), |c| c.to_string()),
            verdict(closed.map(|c| c == 0)).into(),
        ]);
        rows.push([
            format!("{what}: time until the last delivery"),
            "-".into(),
            burst["seconds"].as_f64().map_or("n/a".into(), |s| {
                format!(
                    "{s:.2} s ({} deliveries/s; {:.2} MB to each telnet client, {:.2} MB to each web one)",
                    num(&burst["deliveries_per_sec"]),
                    burst["bytes_per_telnet_client"].as_f64().unwrap_or(0.0) / 1e6,
                    burst["bytes_per_web_client"].as_f64().unwrap_or(0.0) / 1e6
                )
            }),
            "-".into(),
        ]);
    }
    let wc = &f["web_cpu"];
    if !wc.is_null() {
        let what = format!(
            "{} clients all on one frontend, {} senders x {} `msgall`",
            wc["web"]["clients"], wc["web"]["senders"], wc["web"]["messages"]
        );
        let (web, telnet) = (
            &wc["web"]["cpu_seconds_per_million"],
            &wc["telnet"]["cpu_seconds_per_million"],
        );
        let ratio = wc["cpu_ratio"].as_f64();
        rows.push([
            format!("web frontend CPU per 1 M deliveries against telnet's, {what}"),
            "<= 1.3x telnet".into(),
            ratio.map_or("n/a".into(), |r| {
                format!(
                    "{:.3} s (telnet {:.3} s): **{r:.2}x**",
                    web.as_f64().unwrap_or(0.0),
                    telnet.as_f64().unwrap_or(0.0)
                )
            }),
            verdict(ratio.map(|r| r <= 1.3)).into(),
        ]);
        let (web, telnet) = (
            &wc["web"]["write_syscalls_per_delivery"],
            &wc["telnet"]["write_syscalls_per_delivery"],
        );
        rows.push([
            format!("write system calls per delivery, web and telnet, {what}"),
            "-".into(),
            web.as_f64()
                .zip(telnet.as_f64())
                .map_or("n/a".into(), |(w, t)| format!("web {w:.3}, telnet {t:.3}")),
            "-".into(),
        ]);
    }
    let lat = &f["latency"];
    if !lat.is_null() {
        for (label, key) in [("p50", "p50_us"), ("p99", "p99_us"), ("max", "max_us")] {
            let (m, b) = (&lat["multi"]["latency"][key], &lat["baseline"]["latency"][key]);
            let ratio = m.as_f64().zip(b.as_f64()).map(|(m, b)| m / b);
            let targeted = key != "max_us";
            rows.push([
                format!("1:1 `msg` latency across frontends at 1,000 msg/s, {label}"),
                if targeted {
                    "<= 1.3x baseline".into()
                } else {
                    "-".into()
                },
                format!(
                    "{} (baseline {}): {}{}",
                    ms(m),
                    ms(b),
                    ratio.map_or("n/a".into(), |r| format!("{r:.2}x")),
                    round_ratios(lat, key)
                ),
                if targeted {
                    verdict(ratio.map(|r| r <= 1.3)).into()
                } else {
                    "-".into()
                },
            ]);
        }
    }
    for (key, how) in [("idle", "logged in steadily"), ("login_storm", "after a login storm")] {
        let idle = &f[key];
        if idle.is_null() {
            continue;
        }
        let what = format!(
            "idle: {} logged-in connections over 3 tcp + 1 ws, {how}",
            idle["connections"]
        );
        let whole = idle["per_connection_kib_including_empty"].as_f64();
        rows.push([
            format!("{what}: whole system's RSS (every process) per connection"),
            "<= 3 KiB".into(),
            whole.map_or("n/a".into(), |w| {
                format!("{w:.2} KiB ({} KiB in all)", idle["total_kib"])
            }),
            verdict(whole.map(|w| w <= 3.0)).into(),
        ]);
        let pss = idle["per_connection_pss_kib_including_empty"].as_f64();
        rows.push([
            format!("{what}: whole system's PSS (shared pages counted once) per connection"),
            "-".into(),
            pss.map_or("n/a".into(), |p| format!("{p:.2} KiB ({} KiB in all)", idle["pss_kib"])),
            "-".into(),
        ]);
        let per = idle["per_connection_kib"].as_f64();
        rows.push([
            format!("{what}: RSS growth per connection, all processes"),
            "<= 8 KiB".into(),
            per.map_or("n/a".into(), |p| format!("{p:.2} KiB")),
            verdict(per.map(|p| p <= 8.0)).into(),
        ]);
        let ws = idle["per_websocket_kib"].as_f64();
        rows.push([
            format!("{what}: web frontend's RSS growth per WebSocket"),
            "<= 4 KiB".into(),
            ws.map_or("n/a".into(), |w| {
                format!(
                    "{w:.2} KiB ({} WebSockets; telnet frontends {:.2} KiB per connection)",
                    idle["websockets"],
                    idle["per_telnet_kib"].as_f64().unwrap_or(0.0)
                )
            }),
            verdict(ws.map(|w| w <= 4.0)).into(),
        ]);
    }
    let fr = &f["frontend_restart"];
    if !fr.is_null() {
        let refused = fr["refused"].as_u64();
        rows.push([
            "frontend `kill -9` under a loop of connection attempts: refused".into(),
            "0".into(),
            refused.map_or("n/a".into(), |r| format!("{r} of {}", fr["connection_attempts"])),
            verdict(refused.map(|r| r == 0)).into(),
        ]);
        let median = &fr["kill_to_listening"]["p50_us"];
        rows.push([
            format!(
                "frontend `kill -9` to its new listening line, median of {}",
                fr["restarts"]
            ),
            "<= 100 ms".into(),
            format!("{} (max {})", ms(median), ms(&fr["kill_to_listening"]["max_us"])),
            verdict(median.as_f64().map(|m| m <= 100_000.0)).into(),
        ]);
    }
    let ho = &f["handoff"];
    if !ho.is_null() {
        for (event, label, pause) in [
            ("kill", "frontend `kill -9`", 250_000.0),
            ("restart", "`restart NAME`", 100_000.0),
        ] {
            let e = &ho["events"][event];
            let load = format!(
                "{label} with {} clients, a line every {} ms",
                ho["clients"], ho["line_every_ms"]
            );
            for (what, key) in [
                ("clients disconnected", "disconnected"),
                ("lines lost", "lost"),
                ("lines twice", "duplicated"),
            ] {
                let n = e[key].as_u64();
                rows.push([
                    format!("{load}: {what}"),
                    "0".into(),
                    n.map_or("n/a".into(), |n| format!("{n} of {}", e["expected"])),
                    verdict(n.map(|n| n == 0)).into(),
                ]);
            }
            let seen = &e["pause_us"];
            rows.push([
                format!("{load}: the pause a client saw (largest jump in delivery time between two lines)"),
                format!("<= {} ms", pause / 1000.0),
                format!(
                    "{} (with nothing killed {}; longest delivery {}, with nothing killed {})",
                    ms(seen),
                    ms(&ho["events"]["steady"]["pause_us"]),
                    ms(&e["delivery"]["max_us"]),
                    ms(&ho["events"]["steady"]["delivery"]["max_us"])
                ),
                verdict(seen.as_f64().map(|l| l <= pause)).into(),
            ]);
        }
        let per = ho["supervisor_kib_per_parked_connection"].as_f64();
        rows.push([
            format!("supervisor memory per parked connection, {} parked", ho["clients"]),
            "-".into(),
            per.map_or("n/a".into(), |p| format!("{p:.2} KiB")),
            "-".into(),
        ]);
    }
    let kr = &f["kernel_restart"];
    if !kr.is_null() {
        for (label, key) in [
            ("disconnected clients", "disconnected"),
            ("lost messages", "lost"),
            ("duplicated messages", "duplicated"),
        ] {
            let n = kr[key].as_u64();
            rows.push([
                format!(
                    "kernel `kill -9` x{} under traffic ({} clients): {label}",
                    kr["restarts"], kr["clients"]
                ),
                "0".into(),
                n.map_or("n/a".into(), |n| n.to_string()),
                verdict(n.map(|n| n == 0)).into(),
            ]);
        }
        let median = &kr["kill_to_flowing"]["p50_us"];
        rows.push([
            "kernel `kill -9` until chat flows again, median".into(),
            "<= 200 ms".into(),
            format!("{} (max {})", ms(median), ms(&kr["kill_to_flowing"]["max_us"])),
            verdict(median.as_f64().map(|m| m <= 200_000.0)).into(),
        ]);
    }
    let ss = &f["start_stop"];
    if !ss.is_null() {
        let up = &ss["up_to_all_ports_ready"]["p50_us"];
        let down = &ss["down_to_no_process"]["p50_us"];
        rows.push([
            "`up` until every port accepts (4 servers), median".into(),
            "<= 300 ms".into(),
            format!("{} (max {})", ms(up), ms(&ss["up_to_all_ports_ready"]["max_us"])),
            verdict(up.as_f64().map(|m| m <= 300_000.0)).into(),
        ]);
        rows.push([
            "`down` until no process is left, median".into(),
            "<= 1 s".into(),
            format!("{} (max {})", ms(down), ms(&ss["down_to_no_process"]["max_us"])),
            verdict(down.as_f64().map(|m| m <= 1_000_000.0)).into(),
        ]);
    }
    rows.extend(peer::rows(f));
    rows.extend(cluster::rows(f));
    rows
}

/// The figures as BENCHMARKS.md: machine, date, commit, then each figure against its target;
/// beside the `before` run's figure of the same name if given ("-" where it has none).
pub fn report(f: &Value, before: Option<&Value>, commit: &str) -> String {
    let rows = rows(f);
    let before_rows = before.map(rows_by_figure);
    let m = &f["machine"];
    let mut out = String::new();
    out.push_str("# Benchmarks\n\n");
    out.push_str(
        "Written by `scripts/bench.sh` (the `chat-bench` load generator, release build). Every figure comes\n",
    );
    out.push_str("from one run; ratios compare the multi-process system with the in-process baseline (the same\n");
    out.push_str("frontends on one chat state, no kernel hop) measured in the same run, on one thread and on all\n");
    out.push_str("cores; the faster of the two is the baseline. The load generator shares the machine with the\n");
    out.push_str("system under test.\n\n");
    out.push_str("The load comes from one address, as fast as each client can send: every server of both systems\n");
    out.push_str("runs with `input_rate = 0` (input throttling off; the default is 20 lines a second per client)\n");
    out.push_str("and `max_connections_per_ip` and `max_connections` at 100000 (the per-address default is 64).\n\n");
    out.push_str("Memory: RSS summed over the system's six processes counts the pages they share (the one binary,\n");
    out.push_str("libc) once in each; PSS, also summed, counts each shared page once, split among its processes.\n\n");
    out.push_str(&format!(
        "- machine: {}, {} cores, {} GiB\n- date: {}\n- commit: {commit}\n\n",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["memory_gib"],
        chrono::Local::now().format("%Y-%m-%d %H:%M %Z")
    ));
    match (&before_rows, before) {
        (Some(earlier), Some(b)) => {
            // Not the `--supervisor` path it was given: that names a folder of the machine that
            // measured it, which means nothing to a reader.
            out.push_str(&format!(
                "The before column: an earlier run of the same load generator, commit {}{}.\n\n",
                b["commit"].as_str().unwrap_or("unknown"),
                if b["supervisor"].is_string() {
                    ", built apart and passed as `--supervisor`"
                } else {
                    ""
                }
            ));
            out.push_str("| figure | target | before | measured | |\n|---|---|---|---|---|\n");
            for row in rows {
                let was = earlier.get(&row[0]).map_or("-", String::as_str);
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} |\n",
                    row[0], row[1], was, row[2], row[3]
                ));
            }
        }
        _ => {
            out.push_str("| figure | target | measured | |\n|---|---|---|---|\n");
            for row in rows {
                out.push_str(&format!("| {} | {} | {} | {} |\n", row[0], row[1], row[2], row[3]));
            }
        }
    }
    out.push_str(&latency_note(f, before));
    out.push_str(peer::note(f));
    out.push_str(cluster::note(f));
    out.push_str("\nThe raw figures of this run, as `chat-bench` printed them:\n\n```json\n");
    out.push_str(&serde_json::to_string_pretty(f).unwrap_or_default());
    out.push_str("\n```\n");
    out
}

/// An earlier run's measured figures by row name; a figure it could not measure is left out.
/// How the 1:1 latency was sampled, if in rounds; and that the before column's was not, if so.
fn latency_note(f: &Value, before: Option<&Value>) -> String {
    let lat = &f["latency"];
    let Some(rounds) = lat["rounds"].as_array() else {
        return String::new();
    };
    let mut note = format!(
        "The 1:1 latency rows: {} interleaved rounds of {} s per system (the multi-process system, then \
         the one-thread and the all-cores baseline), each system's percentiles over all its samples, so \
         that how busy the machine was at a moment weighs on all three alike; the baseline is the one \
         with the lower p99. Each round's own ratio is shown too.",
        rounds.len(),
        lat["round_secs"]
    );
    if before.is_some_and(|b| !b["latency"].is_null() && b["latency"]["rounds"].is_null()) {
        note.push_str(" The before column's latency is one run of each system.");
    }
    note.push_str("\n\n");
    note
}

/// For the latency scenario's rows: how its samples were taken and each round's ratio of `key`
/// (empty for a run from before the rounds).
fn round_ratios(lat: &Value, key: &str) -> String {
    let Some(rounds) = lat["rounds"].as_array() else {
        return String::new();
    };
    let ratio_key = match key {
        "p50_us" => "p50_ratio",
        "p99_us" => "p99_ratio",
        _ => return String::new(),
    };
    let ratios: Vec<String> = rounds
        .iter()
        .map(|r| r[ratio_key].as_f64().map_or("n/a".into(), |r| format!("{r:.2}x")))
        .collect();
    format!(
        "; {} samples each from {} interleaved rounds (each round alone: {})",
        lat["multi"]["latency"]["samples"],
        rounds.len(),
        ratios.join(", ")
    )
}

fn rows_by_figure(f: &Value) -> std::collections::HashMap<String, String> {
    rows(f)
        .into_iter()
        .filter(|r| !r[2].starts_with("n/a"))
        .map(|[figure, _, measured, _]| (figure, measured))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn idle(whole: f64, per_websocket: f64) -> Value {
        json!({
            "connections": 10000, "total_kib": (whole * 10000.0) as u64,
            "per_connection_kib_including_empty": whole, "per_connection_kib": 2.0,
            "websockets": 2500, "per_websocket_kib": per_websocket, "per_telnet_kib": 1.5,
        })
    }

    /// The table line whose figure starts with `figure`.
    fn line<'a>(report: &'a str, figure: &str) -> &'a str {
        report
            .lines()
            .find(|l| l.starts_with(&format!("| {figure}")))
            .unwrap_or_else(|| panic!("no row {figure:?} in\n{report}"))
    }

    #[test]
    fn rows_against_their_targets() {
        let figures = json!({
            "fanout_5000": {"clients": 5000, "senders": 20, "messages": 200, "ratios": [0.91, 0.78, 1.02],
                            "min_ratio": 0.78, "multi_lost": 0},
            "idle": idle(2.5, 4.5),
        });
        let report = report(&figures, None, "abc1234");
        assert!(report.contains("- commit: abc1234"));
        assert!(report.contains("| figure | target | measured | |"));
        let big = line(&report, "fan-out: 5000 clients");
        assert!(big.contains("smallest ratio of 3 interleaved rounds"), "{big}");
        assert!(
            big.contains("**0.78x** (rounds: 0.91x, 0.78x, 1.02x) | **missed** |"),
            "{big}"
        );
        let whole = line(
            &report,
            "idle: 10000 logged-in connections over 3 tcp + 1 ws, logged in steadily: whole",
        );
        assert!(
            whole.ends_with("| <= 3 KiB | 2.50 KiB (25000 KiB in all) | met |"),
            "{whole}"
        );
        let ws = line(
            &report,
            "idle: 10000 logged-in connections over 3 tcp + 1 ws, logged in steadily: web",
        );
        assert!(
            ws.contains("4.50 KiB (2500 WebSockets; telnet frontends 1.50 KiB per connection) | **missed** |"),
            "{ws}"
        );
        // No storm ran: no storm rows.
        assert!(!report.contains("after a login storm"));
    }

    #[test]
    fn latency_rows_show_each_round() {
        let lat = |p50: u64, p99: u64| json!({"latency": {"samples": 15000, "p50_us": p50, "p99_us": p99}});
        let figures = json!({"latency": {
            "multi": lat(130, 300), "baseline": lat(100, 250),
            "rounds": [{"p50_ratio": 1.25, "p99_ratio": 1.1}, {"p50_ratio": 1.4, "p99_ratio": 1.3}],
            "round_secs": 3,
        }});
        let shown = report(&figures, None, "abc1234");
        let p50 = line(&shown, "1:1 `msg` latency across frontends at 1,000 msg/s, p50");
        assert!(
            p50.contains("0.13 ms (baseline 0.10 ms): 1.30x; 15000 samples each from 2 interleaved rounds (each round alone: 1.25x, 1.40x) | met |"),
            "{p50}"
        );
        let p99 = line(&shown, "1:1 `msg` latency across frontends at 1,000 msg/s, p99");
        assert!(
            p99.contains("1.20x; 15000 samples") && p99.contains("1.10x, 1.30x) | met |"),
            "{p99}"
        );
        assert!(
            shown.contains("The 1:1 latency rows: 2 interleaved rounds of 3 s per system"),
            "{shown}"
        );
        let old = json!({"latency": {"multi": lat(140, 300), "baseline": lat(100, 200)}});
        let beside = report(&figures, Some(&old), "abc1234");
        assert!(beside.contains("The before column's latency is one run of each system."));
        assert!(!shown.contains("The before column's latency"));
        // An earlier run's figures, one run of each system, have no rounds to show.
        let old = json!({"latency": {"multi": lat(140, 300), "baseline": lat(100, 200)}});
        let old = report(&old, None, "abc1234");
        let p99 = line(&old, "1:1 `msg` latency across frontends at 1,000 msg/s, p99");
        assert!(
            p99.contains("0.30 ms (baseline 0.20 ms): 1.50x | **missed** |"),
            "{p99}"
        );
    }

    #[test]
    fn a_before_column_beside_measured() {
        let figures = json!({
            "idle": idle(2.5, 3.0), "login_storm": idle(2.75, 3.5),
            "burst": {"clients": 1000, "senders": 20, "messages": 1000, "expected": 20000000, "lost": 0, "closed": 0,
                      "seconds": 3.2, "deliveries_per_sec": 6250000.0, "bytes_per_telnet_client": 1600000,
                      "bytes_per_web_client": 4200000},
        });
        let before = json!({"commit": "0ld0ld0", "idle": idle(3.25, 5.0)});
        let report = report(&figures, Some(&before), "new1234");
        assert!(report.contains("| figure | target | before | measured | |"));
        assert!(report.contains("commit 0ld0ld0."), "{report}");
        let whole = line(
            &report,
            "idle: 10000 logged-in connections over 3 tcp + 1 ws, logged in steadily: whole",
        );
        assert!(
            whole.ends_with("| <= 3 KiB | 3.25 KiB (32500 KiB in all) | 2.50 KiB (25000 KiB in all) | met |"),
            "{whole}"
        );
        // The earlier run had no storm and no burst.
        let storm = line(
            &report,
            "idle: 10000 logged-in connections over 3 tcp + 1 ws, after a login storm: whole",
        );
        assert!(
            storm.ends_with("| <= 3 KiB | - | 2.75 KiB (27500 KiB in all) | met |"),
            "{storm}"
        );
        let lost = line(
            &report,
            "burst: 20 senders x 1000 `msgall` to 1000 reading clients over 3 tcp + 1 ws: deliveries lost",
        );
        assert!(lost.ends_with("| 0 | - | 0 of 20000000 | met |"), "{lost}");
        let time = line(
            &report,
            "burst: 20 senders x 1000 `msgall` to 1000 reading clients over 3 tcp + 1 ws: time",
        );
        assert!(
            time.contains("3.20 s (6250000 deliveries/s; 1.60 MB to each telnet client, 4.20 MB to each web one)"),
            "{time}"
        );
    }
}
