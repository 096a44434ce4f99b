//! Every command on a file store, through the binary.

use serde_json::json;

use crate::support::{fails, file_config, json_lines, ok, run, storectl};

#[test]
fn go_micro_commands() {
    let dir = tempfile::tempdir().unwrap();
    let c = &file_config(dir.path(), "store");
    ok(
        c,
        &[
            "write",
            "user/1",
            "alice",
            "--ttl",
            "1h",
            "-m",
            "age=37",
            "-m",
            "tags=[\"a\"]",
            "-m",
            "name=al",
        ],
    );
    ok(c, &["write", "user/2", "bob"]);
    ok(
        c,
        &[
            "write",
            "user/3",
            "carol",
            "--table",
            "users",
            "--database",
            "shop",
        ],
    );
    ok(c, &["write", "bin", "AP/B", "--base64"]);

    // An exact read, as a table and as JSON.
    let table = ok(c, &["read", "user/1"]);
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["KEY", "EXPIRES", "IN", "METADATA", "VALUE"]
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with("user/1") && row.ends_with("alice"), "{row}");
    assert!(
        row.contains("59m") && row.contains(r#"{"age":37,"name":"al","tags":["a"]}"#),
        "{row}"
    );
    let read = json_lines(&ok(c, &["read", "user/1", "--output", "json"]));
    assert_eq!(read.len(), 1);
    assert_eq!(read[0]["database"], "micro");
    assert_eq!(read[0]["value"], "alice");
    assert_eq!(
        read[0]["metadata"],
        json!({"age": 37, "tags": ["a"], "name": "al"})
    );
    let ttl = read[0]["ttl_ms"].as_u64().unwrap();
    assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{ttl}");

    // Values that are not UTF-8: base64 with a marker.
    assert!(ok(c, &["read", "bin"]).contains("base64:AP/B"));
    let bin = json_lines(&ok(c, &["read", "bin", "-o", "json"]));
    assert_eq!(bin[0]["value_base64"], "AP/B");
    assert!(bin[0].get("value").is_none());

    // Prefix, suffix, order, offset, limit.
    let keys = |out: &str| -> Vec<String> {
        json_lines(out)
            .iter()
            .map(|v| v["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        keys(&ok(c, &["read", "user/", "--prefix", "-o", "json"])),
        ["user/1", "user/2"]
    );
    assert_eq!(
        keys(&ok(c, &["read", "/2", "--suffix", "-o", "json"])),
        ["user/2"]
    );
    let desc = ok(
        c,
        &[
            "read", "", "--prefix", "--order", "desc", "--offset", "1", "--limit", "1", "-o",
            "json",
        ],
    );
    assert_eq!(keys(&desc), ["user/1"]);
    let shop = ok(
        c,
        &["read", "user/3", "-d", "shop", "-t", "users", "-o", "json"],
    );
    assert_eq!(json_lines(&shop)[0]["table"], "users");

    // list.
    assert_eq!(ok(c, &["list"]), "bin\nuser/1\nuser/2\n");
    assert_eq!(
        keys(&ok(
            c,
            &["list", "--prefix", "user/", "--offset", "1", "-o", "json"]
        )),
        ["user/2"]
    );
    assert_eq!(
        ok(c, &["list", "--suffix", "1", "--limit", "5"]),
        "user/1\n"
    );
    assert_eq!(
        ok(c, &["list", "--order", "desc", "--limit", "1"]),
        "user/2\n"
    );
    assert_eq!(ok(c, &["list", "-d", "shop", "-t", "users"]), "user/3\n");

    // databases and tables.
    ok(c, &["put", "lock", "x", "--raw"]);
    assert_eq!(ok(c, &["databases"]), "micro\nshop\n");
    assert_eq!(
        json_lines(&ok(c, &["databases", "-o", "json"]))[1],
        json!({"database": "shop"})
    );
    assert_eq!(ok(c, &["tables", "--database", "shop"]), "users\n");
    assert_eq!(ok(c, &["tables"]), "micro\n");
    assert_eq!(ok(c, &["tables", "-d", "nothing"]), "");

    // delete (a missing key is fine, as in go-micro).
    ok(c, &["delete", "user/2"]);
    ok(c, &["delete", "user/2"]);
    ok(c, &["delete", "user/3", "-d", "shop", "-t", "users"]);
    let err = fails(Some(c), &["read", "user/2"], 1);
    assert!(
        err.contains("read micro/micro key \"user/2\": key not found"),
        "{err}"
    );
    assert_eq!(ok(c, &["databases"]), "micro\n");

    // The configuration from the environment.
    let output = storectl(None, &["list"])
        .env("STORECTL_CONFIG", c)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "bin\nuser/1\n");
}

#[test]
fn versioned_commands() {
    let dir = tempfile::tempdir().unwrap();
    let c = &file_config(dir.path(), "store");
    let v1 = ok(c, &["create", "job", "queued", "--table", "jobs"])
        .trim()
        .to_owned();
    let err = fails(Some(c), &["create", "job", "again", "-t", "jobs"], 1);
    assert!(
        err.contains("create micro/jobs key \"job\": key \"job\" already exists (live version"),
        "{err}"
    );
    let got = json_lines(&ok(c, &["get", "job", "-t", "jobs", "-o", "json"]));
    assert_eq!(
        got[0],
        json!({"key": "job", "version": v1, "value": "queued"})
    );

    let v2 = ok(
        c,
        &[
            "cas",
            "job",
            "running",
            "--version",
            &v1,
            "-t",
            "jobs",
            "--ttl",
            "10m",
        ],
    )
    .trim()
    .to_owned();
    assert_ne!(v1, v2);
    let err = fails(
        Some(c),
        &["cas", "job", "done", "--version", &v1, "-t", "jobs"],
        1,
    );
    assert!(
        err.contains("cas micro/jobs key \"job\" at version") && err.contains("version conflict"),
        "{err}"
    );
    let got = json_lines(&ok(c, &["get", "job", "-t", "jobs", "-o", "json"]));
    assert_eq!(got[0]["value"], "running");
    assert!(got[0]["ttl_ms"].as_u64().unwrap() <= 600_000);
    let table = ok(c, &["get", "job", "-t", "jobs"]);
    assert!(
        table.starts_with("KEY") && table.contains("running"),
        "{table}"
    );

    let put = json_lines(&ok(c, &["put", "bin", "wUc=", "--base64", "-o", "json"]));
    assert_eq!(put[0]["key"], "bin");
    let got = json_lines(&ok(c, &["get", "bin", "-o", "json"]));
    assert_eq!(got[0]["value_base64"], "wUc=");

    // The facade's keys as stored, with --raw.
    assert_eq!(
        ok(c, &["keys", "*", "--raw"]),
        "micro/jobs/job\nmicro/micro/bin\n"
    );
    assert_eq!(ok(c, &["keys", "j?b", "-t", "jobs"]), "job\n");
    assert!(ok(c, &["get", "micro/jobs/job", "--raw", "-o", "json"]).contains("running"));
    let err = fails(Some(c), &["keys", "[", "-t", "jobs"], 1);
    assert!(err.contains("keys micro/jobs pattern \"[\""), "{err}");
    let err = fails(Some(c), &["get", "nope"], 1);
    assert!(err.contains("get micro/micro key \"nope\""), "{err}");
}

#[test]
fn an_empty_listing_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let c = &file_config(dir.path(), "store");
    // go-micro's sync package keeps its locks in table "sync": stored as micro/sync/<key>.
    ok(c, &["put", "lock", "me", "--table", "sync"]);
    let outputs = |args: &[&str]| {
        let output = run(Some(c), args);
        assert!(output.status.success(), "{args:?}");
        (
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };

    let (out, err) = outputs(&["keys", "micro/sync/*"]);
    assert_eq!(out, "");
    assert!(
        err.contains("no key matches \"micro/sync/*\" in database \"micro\", table \"micro\"")
            && err.contains("--database and --table")
            && err.contains("--raw matches the store's raw keys"),
        "{err}"
    );
    let (out, err) = outputs(&["keys", "x*", "-d", "shop", "-t", "orders"]);
    assert_eq!(out, "");
    assert!(
        err.contains("in database \"shop\", table \"orders\""),
        "{err}"
    );
    let (out, err) = outputs(&["list", "--prefix", "micro/sync/"]);
    assert_eq!(out, "");
    assert!(
        err.contains("no key with prefix \"micro/sync/\" in database \"micro\"")
            && err.contains("storectl keys PATTERN --raw"),
        "{err}"
    );

    // Found, or asked for JSON, or with --raw: no note.
    for args in [
        &["keys", "micro/sync/*", "--raw"][..],
        &["keys", "*", "--table", "sync"],
        &["list", "--table", "sync"],
    ] {
        let (out, err) = outputs(args);
        assert!(out.contains("lock"), "{args:?}: {out}");
        assert_eq!(err, "", "{args:?}");
    }
    for args in [
        &["keys", "micro/sync/*", "-o", "json"][..],
        &["list", "--prefix", "micro/sync/", "-o", "json"],
        &["keys", "nothing*", "--raw"],
    ] {
        assert_eq!(outputs(args), (String::new(), String::new()), "{args:?}");
    }
}

#[test]
fn watch_prints_changes_until_the_record_goes() {
    let dir = tempfile::tempdir().unwrap();
    let c = &file_config(dir.path(), "store");
    // The file store admits one process: the change is the record's expiry.
    ok(c, &["put", "lease", "me", "--ttl", "3s"]);
    let out = json_lines(&ok(c, &["watch", "lease", "-o", "json"]));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0]["event"], "current");
    assert_eq!(out[0]["value"], "me");
    assert_eq!(out[1], json!({"event": "deleted", "key": "lease"}));
    let err = fails(Some(c), &["watch", "lease"], 1);
    assert!(
        err.contains("watch micro/micro key \"lease\": key not found"),
        "{err}"
    );
    // --count 0: the current record only.
    ok(c, &["put", "k", "v"]);
    let out = ok(c, &["watch", "k", "--count", "0"]);
    assert!(out.starts_with("EVENT") && out.contains("current"), "{out}");
}

#[test]
fn snapshot_restore_stats_compact() {
    let dir = tempfile::tempdir().unwrap();
    let c = &file_config(dir.path(), "source");
    let target = &file_config(dir.path(), "target");
    ok(c, &["write", "user/1", "alice", "-m", "n=1", "--ttl", "1h"]);
    ok(c, &["write", "x", "y", "-d", "other", "-t", "t"]);
    for _ in 0..3 {
        ok(c, &["write", "user/2", "overwritten"]);
    }
    let snap = dir.path().join("all.snap");
    let summary = json_lines(&ok(c, &["snapshot", snap.to_str().unwrap(), "-o", "json"]));
    assert_eq!(summary[0]["records"], 3);
    let restored = json_lines(&ok(
        target,
        &["restore", snap.to_str().unwrap(), "--verify", "-o", "json"],
    ));
    assert_eq!(restored[0]["records"], 3);
    assert_eq!(restored[0]["verified"], 3);
    let read = json_lines(&ok(target, &["read", "user/1", "-o", "json"]));
    assert_eq!(read[0]["metadata"], json!({"n": 1}));
    assert!(read[0]["ttl_ms"].as_u64().unwrap() > 3_500_000);

    // One database, to stdout, restored from stdin.
    let part = run(Some(c), &["snapshot", "-", "--database", "other"]);
    assert!(part.status.success());
    let text = String::from_utf8(part.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("\"database\":\"other\"")
    );
    let third = &file_config(dir.path(), "third");
    let mut child = crate::support::storectl(Some(third), &["restore", "-", "--verify"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &part.stdout).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(ok(third, &["keys", "*", "--raw"]), "other/t/x\n");

    let stats = ok(c, &["stats"]);
    assert!(
        stats.contains("file ") && stats.contains("records="),
        "{stats}"
    );
    let stats = json_lines(&ok(c, &["stats", "-o", "json"]));
    assert_eq!(stats[0]["component"], "file");
    assert!(stats[0]["figures"]["records"].is_u64());
    ok(c, &["compact"]);
    let memory = crate::support::config(dir.path(), "memory.toml", "backend = \"memory\"\n");
    let err = fails(Some(&memory), &["compact"], 1);
    assert!(err.contains("compact: not supported"), "{err}");
}

#[test]
fn watch_sees_another_process_write_on_redis() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let url = store_redis::testing::server_url();
    store_redis::testing::require_server(&url);
    let prefix = store_redis::testing::fresh_name("storectl-watch");
    let _guard = store_redis::testing::PrefixGuard::new(&url, &prefix);
    let c = &crate::support::config(
        dir.path(),
        "redis.toml",
        &format!("backend = \"redis\"\n[redis]\nurl = {url:?}\nprefix = {prefix:?}\n"),
    );
    ok(c, &["put", "leader", "a", "-t", "elections"]);
    let mut watch = storectl(
        Some(c),
        &[
            "watch",
            "leader",
            "-t",
            "elections",
            "--count",
            "2",
            "-o",
            "json",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = std::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut next =
        || -> serde_json::Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    let current = next();
    assert_eq!(
        (&current["event"], &current["value"]),
        (&json!("current"), &json!("a"))
    );
    // Each write waits until the watcher has printed the previous one.
    ok(c, &["put", "leader", "b", "-t", "elections"]);
    let changed = next();
    assert_eq!(
        (&changed["event"], &changed["value"]),
        (&json!("changed"), &json!("b"))
    );
    ok(c, &["delete", "leader", "-t", "elections"]);
    assert_eq!(next(), json!({"event": "deleted", "key": "leader"}));
    assert!(watch.wait().unwrap().success());
}

#[test]
fn watch_prints_one_table_header_on_redis() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let url = store_redis::testing::server_url();
    store_redis::testing::require_server(&url);
    let prefix = store_redis::testing::fresh_name("storectl-watch-table");
    let _guard = store_redis::testing::PrefixGuard::new(&url, &prefix);
    let c = &crate::support::config(
        dir.path(),
        "redis.toml",
        &format!("backend = \"redis\"\n[redis]\nurl = {url:?}\nprefix = {prefix:?}\n"),
    );
    ok(c, &["put", "leader", "a"]);
    let mut watch = storectl(Some(c), &["watch", "leader", "--count", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    let words = |line: &str| {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        words(&next()),
        ["EVENT", "KEY", "VERSION", "EXPIRES", "IN", "VALUE"]
    );
    let current = next();
    assert!(
        current.starts_with("current") && current.ends_with(" a"),
        "{current}"
    );
    // Each write waits until the watcher has printed the previous one.
    ok(c, &["put", "leader", "b"]);
    let changed = next();
    assert!(
        changed.starts_with("changed") && changed.ends_with(" b"),
        "{changed}"
    );
    ok(c, &["put", "leader", "a longer value"]);
    let changed = next();
    assert!(
        changed.starts_with("changed") && changed.ends_with(" a longer value"),
        "{changed}"
    );
    // Its columns are the first row's.
    let column = |line: &str, word: &str| line.find(word).unwrap();
    assert_eq!(column(&current, "leader"), column(&changed, "leader"));
    assert!(lines.next().is_none(), "nothing after --count 2 changes");
    assert!(watch.wait().unwrap().success());
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let c = &file_config(dir.path(), "store");
    ok(c, &["write", "k", "v"]);
    let snap = dir.path().join("s.snap");
    let output = run(Some(c), &["snapshot", snap.to_str().unwrap()]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    // One summary line, no bar, no escape sequences.
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("snapshot of 1 records") && !stderr.contains('\u{1b}'),
        "{stderr}"
    );
    let output = run(Some(c), &["restore", snap.to_str().unwrap()]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("restored 1 records") && !stderr.contains('\u{1b}'),
        "{stderr}"
    );
}
