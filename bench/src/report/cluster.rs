//! The cluster's rows in BENCHMARKS.md (pure): three nodes on one Redis against one host without
//! a cluster, from the same run.

use serde_json::Value;

/// The cluster scenario's rows (figure, target, measured, verdict); none if it did not run.
pub fn rows(f: &Value) -> Vec<[String; 4]> {
    let c = &f["cluster"];
    if c.is_null() {
        return Vec::new();
    }
    let nodes = c["nodes"].as_u64().unwrap_or(3);
    let rounds: Vec<&Value> = c["fanout_rounds"]
        .as_array()
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    let rate = |v: &Value| v["deliveries_per_sec"].as_f64();
    let ratios: Vec<f64> = rounds
        .iter()
        .filter_map(|r| rate(&r["cluster"]).zip(rate(&r["single"])).map(|(c, s)| c / s))
        .collect();
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.2}x")).collect();
    let first = rounds.first().copied().unwrap_or(&Value::Null);
    let lost: u64 = rounds
        .iter()
        .map(|r| {
            let x = &r["cluster"];
            x["expected"]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(x["received"].as_u64().unwrap_or(0))
        })
        .sum();
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" }.to_string();
    let mut rows = Vec::new();
    rows.push([
        format!(
            "cluster fan-out: {} clients over {nodes} nodes on one Redis ({nodes} tcp + 1 ws), {} senders x {} `msgall`, deliveries/s, smallest ratio of {} rounds",
            first["cluster"]["clients"],
            first["cluster"]["senders"],
            first["cluster"]["messages"],
            rounds.len()
        ),
        ">= 0.5x one host".into(),
        format!(
            "{:.0} (one host {:.0}): **{min:.2}x** (rounds: {})",
            rate(&first["cluster"]).unwrap_or(0.0),
            rate(&first["single"]).unwrap_or(0.0),
            listed.join(", ")
        ),
        verdict(!ratios.is_empty() && min >= 0.5),
    ]);
    rows.push([
        "cluster fan-out: deliveries missing, all rounds".into(),
        "0".into(),
        lost.to_string(),
        verdict(lost == 0),
    ]);
    let x = &first["cluster"];
    let messages = x["senders"].as_f64().unwrap_or(0.0) * x["messages"].as_f64().unwrap_or(0.0);
    rows.push([
        "cluster fan-out: Redis's share of the CPU (every process's and Redis's, first round)".into(),
        "-".into(),
        format!(
            "{:.1}% ({:.2} s of {:.2} s)",
            100.0 * x["redis_cpu_share"].as_f64().unwrap_or(0.0),
            x["redis_cpu_seconds"].as_f64().unwrap_or(0.0),
            x["cpu_seconds"].as_f64().unwrap_or(0.0)
        ),
        "-".into(),
    ]);
    let logins = x["clients"].as_f64().unwrap_or(0.0);
    let events = messages + logins;
    let per = |key: &str| x[key].as_f64().unwrap_or(0.0) / events.max(1.0);
    rows.push([
        "cluster fan-out: Redis per chat event (the logins and `msgall`s; first round): scripts, stream reads, commands run (those inside scripts included)".into(),
        "-".into(),
        format!(
            "{:.2} scripts, {:.2} reads ({:.0} reads by {nodes} nodes), {:.1} commands; {events:.0} events",
            per("redis_scripts"),
            per("redis_stream_reads"),
            x["redis_stream_reads"].as_f64().unwrap_or(0.0),
            per("redis_commands"),
        ),
        "-".into(),
    ]);
    let (single, cluster) = (&c["latency"]["single"], &c["latency"]["cluster"]);
    let us = |v: &Value, key: &str| v["latency"][key].as_f64();
    for (label, key) in [("p50", "p50_us"), ("p99", "p99_us")] {
        let (s, m) = (us(single, key), us(cluster, key));
        let target = if key == "p99_us" { "<= 3 ms" } else { "-" };
        rows.push([
            format!("cluster 1:1 `msg` latency across nodes at 1,000 msg/s, {label}"),
            target.into(),
            format!(
                "{:.2} ms (one host {:.2} ms)",
                m.unwrap_or(0.0) / 1000.0,
                s.unwrap_or(0.0) / 1000.0
            ),
            if key == "p99_us" {
                verdict(m.is_some_and(|m| m <= 3000.0))
            } else {
                "-".into()
            },
        ]);
    }
    let sent = cluster["sent"].as_f64().unwrap_or(0.0).max(1.0);
    let per = |key: &str| cluster[key].as_f64().unwrap_or(0.0) / sent;
    rows.push([
        "cluster 1:1: Redis per `msg`: scripts, stream reads, commands run".into(),
        "-".into(),
        format!(
            "{:.2}, {:.2}, {:.1}",
            per("redis_scripts"),
            per("redis_stream_reads"),
            per("redis_commands")
        ),
        "-".into(),
    ]);
    rows
}

/// How the cluster was run, under the table.
pub fn note(f: &Value) -> &'static str {
    if f["cluster"].is_null() {
        return "";
    }
    "\nThe cluster rows: three `up`s (nodes h1, h2, h3, each with its own kernel) on one Debian \
     `redis-server` 7.0 on a Unix socket (no persistence), every process on this one machine, \
     against one `up` without `[cluster]` serving the same frontends (3 tcp + 1 ws), in \
     interleaved rounds. Redis commands are counted by its `INFO stats`; its CPU from /proc.\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_say_the_ratio_and_whether_each_target_is_met() {
        let fan = |rate: f64| {
            json!({"deliveries_per_sec": rate, "clients": 1000, "senders": 20, "messages": 200, "expected": 10, "received": 10,
                   "cpu_seconds": 2.0, "redis_cpu_seconds": 0.5, "redis_cpu_share": 0.25, "redis_commands": 4200,
                   "redis_scripts": 10000, "redis_stream_reads": 5000})
        };
        let f = json!({"cluster": {
            "nodes": 3,
            "fanout_rounds": [{"single": fan(100.0), "cluster": fan(60.0)}, {"single": fan(100.0), "cluster": fan(40.0)}],
            "latency": {"single": {"latency": {"p50_us": 200, "p99_us": 500}},
                        "cluster": {"latency": {"p50_us": 400, "p99_us": 2500}, "redis_commands": 2000, "sent": 1000,
                                    "redis_scripts": 1000, "redis_stream_reads": 3000}}
        }});
        let got = rows(&f);
        let rows = got;
        assert!(
            rows[0][2].contains("0.40x") && rows[0][3].contains("missed"),
            "{:?}",
            rows[0]
        );
        assert_eq!(rows[1][2], "0");
        assert!(rows[3][2].starts_with("2.00 scripts, 1.00 reads"), "{:?}", rows[3]);
        assert!(rows[5][3] == "met", "{:?}", rows[5]);
        assert_eq!(rows[6][2], "1.00, 3.00, 2.0");
        assert!(super::rows(&json!({})).is_empty());
    }
}
