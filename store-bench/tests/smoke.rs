//! Runs the benchmark binary briefly and checks what it prints.

use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_store-bench"))
        .args(args)
        .output()
        .expect("the store-bench binary runs")
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
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect();
    assert_eq!(lines[0]["type"], "config");
    let results: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "result").collect();
    // get, put, mixed, cas, wait, and list twice (two store sizes); two task counts each.
    assert_eq!(results.len(), 7 * 2);
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
}
