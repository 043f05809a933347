//! The figures as BENCHMARKS.md (pure): a table of each figure against its target, then the raw
//! JSON.

mod peer;

use serde_json::Value;

/// The figures as BENCHMARKS.md: machine, date, commit, then each figure against its target.
pub fn report(f: &Value, commit: &str) -> String {
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
        rows.push([
            "fan-out deliveries missing".into(),
            "0".into(),
            lost.to_string(),
            verdict(Some(lost == 0)).into(),
        ]);
    }
    let lat = &f["latency"];
    if !lat.is_null() {
        for (label, key) in [("p50", "p50_us"), ("p99", "p99_us"), ("max", "max_us")] {
            let (m, b) = (&lat["multi"]["latency"][key], &lat["baseline"]["latency"][key]);
            let ok = (key == "p99_us").then(|| m.as_f64().is_some_and(|m| m <= 1000.0));
            rows.push([
                format!("1:1 `msg` latency across frontends at 1,000 msg/s, {label}"),
                if key == "p99_us" { "<= 1 ms".into() } else { "-".into() },
                format!("{} (baseline {})", ms(m), ms(b)),
                if key == "p99_us" {
                    verdict(ok).into()
                } else {
                    "-".into()
                },
            ]);
        }
    }
    let idle = &f["idle"];
    if !idle.is_null() {
        let per = idle["per_connection_kib"].as_f64();
        rows.push([
            format!(
                "idle: {} logged-in connections, RSS per connection, all processes",
                idle["connections"]
            ),
            "<= 8 KiB".into(),
            format!(
                "{:.2} KiB ({} KiB in all; {:.2} KiB counting the empty system)",
                per.unwrap_or(0.0),
                idle["total_kib"],
                idle["per_connection_kib_including_empty"].as_f64().unwrap_or(0.0)
            ),
            verdict(per.map(|p| p <= 8.0)).into(),
        ]);
    }
    let fr = &f["frontend_restart"];
    if !fr.is_null() {
        let refused = fr["refused"].as_u64();
        rows.push([
            format!(
                "frontend `kill -9` under {} connection attempts: refused",
                fr["connection_attempts"]
            ),
            "0".into(),
            refused.map_or("n/a".into(), |r| r.to_string()),
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
    out.push_str(&format!(
        "- machine: {}, {} cores, {} GiB\n- date: {}\n- commit: {commit}\n\n",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["memory_gib"],
        chrono::Local::now().format("%Y-%m-%d %H:%M %Z")
    ));
    out.push_str("| figure | target | measured | |\n|---|---|---|---|\n");
    for row in rows {
        out.push_str(&format!("| {} | {} | {} | {} |\n", row[0], row[1], row[2], row[3]));
    }
    out.push_str(peer::note(f));
    out.push_str("\nThe raw figures of this run, as `chat-bench` printed them:\n\n```json\n");
    out.push_str(&serde_json::to_string_pretty(f).unwrap_or_default());
    out.push_str("\n```\n");
    out
}
