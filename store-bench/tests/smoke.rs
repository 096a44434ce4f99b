//! Runs the benchmark binary briefly and checks what it prints.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_store-bench"))
        .args(args)
        .output()
        .expect("the store-bench binary runs")
}

fn json_lines(output: &std::process::Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect()
}

/// The hit percentage in a row's note ("hits 99.5%, ..."), if it has one.
fn hit_percent(row: &Value) -> Option<f64> {
    let note = row["note"].as_str()?;
    let rest = note.strip_prefix("hits ")?;
    rest.split('%').next()?.parse().ok()
}

#[test]
fn quick_file_and_cache_runs_cover_every_workload_figure_and_goal() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().to_str().unwrap();
    let output = bench(&[
        "--target",
        "file,cache",
        "--quick",
        "--format",
        "json",
        "--dir",
        dir,
    ]);
    assert!(output.status.success(), "{output:?}");
    let lines = json_lines(&output);
    let of = |kind: &str, target: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["type"] == kind && l["target"] == target)
            .collect()
    };
    assert_eq!(of("config", "file").len(), 1);
    assert_eq!(of("config", "cache").len(), 1);

    let rows = of("result", "file");
    let count = |workload: &str, baseline: &str| {
        rows.iter()
            .filter(|r| r["workload"] == workload && r["baseline"] == baseline)
            .count()
    };
    // Three task counts; put against two baselines, get against one.
    assert_eq!(count("put", "fdatasync-log"), 3);
    assert_eq!(count("put", "redb"), 3);
    assert_eq!(count("get", "memory"), 3);
    assert_eq!(rows.len(), 9);
    for row in &rows {
        assert!(row["target_ops_per_sec"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["baseline_ops_per_sec"].as_f64().unwrap() > 0.0, "{row}");
    }
    let put64 = rows
        .iter()
        .find(|r| r["workload"] == "put" && r["tasks"] == 64)
        .unwrap();
    assert!(
        put64["note"].as_str().unwrap().contains("writes/fsync"),
        "{put64}"
    );

    let figures = of("figure", "file");
    let names: Vec<&str> = figures
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "reopen_seconds",
            "space_amplification_before_compact",
            "space_amplification_after_compact"
        ]
    );
    assert_eq!(figures[0]["keys"], 20_000);
    assert_eq!(figures[0]["details"]["records"], 20_000);
    assert!(figures[0]["value"].as_f64().unwrap() > 0.0);
    let (before, after) = (
        figures[1]["value"].as_f64().unwrap(),
        figures[2]["value"].as_f64().unwrap(),
    );
    assert!(before > 4.0 && after < before, "{before} {after}");
    assert_eq!(figures[2]["details"]["records"], 4_500);

    let rows = of("result", "cache");
    assert_eq!(rows.len(), 3 * 2 + 3 + 3);
    for row in &rows {
        assert!(row["target_ops_per_sec"].as_f64().unwrap() > 0.0, "{row}");
        let hits = hit_percent(row).expect("cache rows carry the hit ratio");
        match row["workload"].as_str().unwrap() {
            "get" => assert_eq!(hits, 100.0, "{row}"),
            "miss" => assert!(hits < 5.0, "{row}"),
            "mixed" => assert!(hits > 90.0, "{row}"),
            other => panic!("unexpected cache workload {other}"),
        }
    }
    let baselines: Vec<&str> = rows
        .iter()
        .filter(|r| r["workload"] == "get" && r["tasks"] == 1)
        .map(|r| r["baseline"].as_str().unwrap())
        .collect();
    assert_eq!(baselines, ["memory", "moka"]);

    // file: put vs fdatasync-log at 1 task, put vs redb, get at 64 tasks and at 1, reopen,
    // space after compact; cache: get vs moka, miss.
    assert_eq!(of("goal", "file").len(), 6);
    assert_eq!(of("goal", "cache").len(), 2);
    // Every store's data was removed.
    assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
}

#[test]
fn quick_table_for_file() {
    let parent = tempfile::tempdir().unwrap();
    let output = bench(&[
        "--target",
        "file",
        "--quick",
        "--workloads",
        "reopen,space",
        "--dir",
        parent.path().to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.lines().any(|l| l.starts_with("reopen ")), "{text}");
    assert!(text.contains("after compact"), "{text}");
    assert!(text.contains("goals:"), "{text}");
}

#[test]
fn json_lines_cover_every_workload_and_goal() {
    let output = bench(&[
        "--format",
        "json",
        "--tasks",
        "1,4",
        "--duration",
        "10ms",
        "--keys",
        "500",
        "--list-keys",
        "200,2000",
    ]);
    assert!(output.status.success(), "{output:?}");
    let lines = json_lines(&output);
    assert_eq!(lines[0]["type"], "config");
    let results: Vec<&Value> = lines.iter().filter(|l| l["type"] == "result").collect();
    // get, put, mixed, cas, wait, list twice (two store sizes), lock and handover; two task
    // counts each.
    assert_eq!(results.len(), 9 * 2);
    for result in &results {
        assert!(
            result["target_ops_per_sec"].as_f64().unwrap() > 0.0,
            "{result}"
        );
        assert!(
            result["baseline_ops_per_sec"].as_f64().unwrap() > 0.0,
            "{result}"
        );
        assert!(
            result["target_p99_ns"].as_u64().unwrap() >= result["target_p50_ns"].as_u64().unwrap()
        );
        assert!(result["ratio"].as_f64().unwrap() > 0.0);
    }
    // The lock workloads run against raw record operations on the same store and give
    // their latency ratios.
    for workload in ["lock", "handover"] {
        let rows: Vec<&&Value> = results
            .iter()
            .filter(|r| r["workload"] == workload)
            .collect();
        assert_eq!(rows.len(), 2, "{workload}");
        for row in rows {
            assert_eq!(row["baseline"], "raw-records");
            assert!(row["p50_ratio"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["p99_ratio"].as_f64().unwrap() > 0.0, "{row}");
        }
    }
    let goals = lines.iter().filter(|l| l["type"] == "goal").count();
    // get and put at 64 tasks were not run; the list scaling is checked per task count.
    assert_eq!(goals, 2);
}

#[test]
fn table_output_and_bad_arguments() {
    let output = bench(&["--workloads", "get", "--tasks", "2", "--duration", "5ms"]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("mutex-hashmap"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("get ")), "{text}");

    let bad = bench(&["--tasks", "0"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--tasks"));
    let unknown = bench(&["--workloads", "scan"]);
    assert!(!unknown.status.success());
    let elsewhere = bench(&["--target", "memory", "--workloads", "reopen"]);
    assert!(!elsewhere.status.success());
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("reopen"));
}

/// The postgres target against the machine's PostgreSQL (see `.ci/run`), briefly: every
/// workload against the tokio-postgres baseline, and its three goals evaluated.
#[test]
fn quick_postgres_run_covers_every_workload_and_goal() {
    let output = bench(&[
        "--target", "postgres", "--quick", "--tasks", "1,4", "--keys", "2000", "--format", "json",
    ]);
    assert!(
        output.status.success(),
        "the postgres target failed (is PostgreSQL running on 127.0.0.1:5432, database \
         test? start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) \
         main start`): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output);
    for workload in ["get", "put", "cas", "put_many"] {
        let rows = lines
            .iter()
            .filter(|l| l["type"] == "result" && l["workload"] == workload)
            .filter(|l| l["baseline"] == "tokio-postgres")
            .count();
        assert_eq!(rows, 2, "{workload}: one row per task count");
    }
    let goals: Vec<&Value> = lines.iter().filter(|l| l["type"] == "goal").collect();
    // get and put at 64 tasks are not measured here; put_many over put at 1 task is.
    assert!(
        goals.iter().any(|g| g["goal"]
            .as_str()
            .unwrap()
            .starts_with("put_many at 1 task")),
        "{goals:?}"
    );
}
