//! Usage errors exit with status 2, store and configuration errors with 1, help with 0.

use crate::support::{config, fails, file_config, ok, run};

const COMMANDS: &[&str] = &[
    "read",
    "write",
    "delete",
    "list",
    "databases",
    "tables",
    "get",
    "put",
    "create",
    "cas",
    "keys",
    "watch",
    "snapshot",
    "restore",
    "stats",
    "compact",
];

#[test]
fn help_for_every_command_has_an_example() {
    for command in COMMANDS {
        let output = run(None, &[command, "--help"]);
        assert_eq!(output.status.code(), Some(0), "{command} --help");
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(
            help.contains("Example") && help.contains("storectl -c "),
            "{command}: {help}"
        );
    }
    let output = run(None, &["--help"]);
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn help_is_text_not_rustdoc() {
    // The crate's rustdoc examples are next to clap's derive attributes; none of them may
    // reach the help.
    let mut asked: Vec<Vec<&str>> = vec![vec!["--help"], vec!["-h"], vec!["help"]];
    for command in COMMANDS {
        asked.push(vec![command, "--help"]);
        asked.push(vec![command, "-h"]);
        asked.push(vec!["help", command]);
    }
    for args in asked {
        let output = run(None, &args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(help.contains("Usage: storectl"), "{args:?}: {help}");
        for rustdoc in ["```", "use clap", "assert", "parse_from"] {
            assert!(
                !help.contains(rustdoc),
                "{args:?} prints {rustdoc:?}: {help}"
            );
        }
    }
    let help = String::from_utf8(run(None, &["--help"]).stdout).unwrap();
    assert!(
        help.starts_with("storectl: look inside a store") && help.contains("TOML file"),
        "{help}"
    );
}

#[test]
fn a_ttl_too_long_for_the_clock_is_refused_not_stored_forever() {
    let dir = tempfile::tempdir().unwrap();
    let c = &file_config(dir.path(), "store");
    for (command, ttl) in [
        ("write", "400000000000years"),
        ("write", "200years"),
        ("put", "400000000000years"),
        ("create", "500000years"),
        ("cas", "36501days"),
    ] {
        let mut args = vec![command, "k", "v", "--ttl", ttl];
        if command == "cas" {
            args.extend(["--version", "1"]);
        }
        let err = fails(Some(c), &args, 2);
        assert!(
            err.contains(&format!("invalid value '{ttl}' for '--ttl <DURATION>'"))
                && err.contains("accepted is a duration of at most 36500days"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(ok(c, &["keys", "*", "--raw"]), "", "nothing was stored");
    // The longest TTL accepted gives the record an expiry.
    ok(c, &["put", "k", "v", "--ttl", "36500days"]);
    let got = crate::support::json_lines(&ok(c, &["get", "k", "-o", "json"]));
    let ttl_ms = got[0]["ttl_ms"].as_u64().expect("an expiry");
    assert!(ttl_ms > 36_499 * 86_400_000, "{ttl_ms}");
}

#[test]
fn go_micro_expiry_points_to_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let c = &file_config(dir.path(), "store");
    for args in [
        &["write", "k", "v", "--expiry", "1h"][..],
        &["put", "k", "v", "--expiry", "1h"],
        &["create", "k", "v", "--expiry", "1h"],
        &["cas", "k", "v", "--version", "1", "--expiry", "1h"],
        &["write", "k", "v", "--expiry=1h"],
    ] {
        let err = fails(Some(c), args, 2);
        assert!(
            err.contains("go-micro's --expiry is --ttl in storectl: use --ttl 1h")
                && !err.contains("-- --expiry"),
            "{args:?}: {err}"
        );
    }
    let err = fails(Some(c), &["write", "k", "v", "--expiry"], 2);
    assert!(err.contains("use --ttl DURATION"), "{err}");
    // Not in the help: it is not a flag of storectl.
    let help = String::from_utf8(run(None, &["write", "--help"]).stdout).unwrap();
    assert!(!help.contains("--expiry"), "{help}");
    assert_eq!(ok(c, &["keys", "*", "--raw"]), "", "nothing was stored");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let c = &file_config(dir.path(), "store");
    for args in [
        &[][..],
        &["frobnicate"],
        &["read"],
        &["read", "k", "--limit", "lots"],
        &["read", "k", "--order", "sideways"],
        &["write", "k"],
        &["write", "k", "v", "--ttl", "soon"],
        &["write", "k", "v", "--ttl", "0s"],
        &["write", "k", "v", "--metadata", "novalue"],
        &["write", "k", "v", "--bogus"],
        &["get", "k", "--raw", "--table", "t"],
        &["cas", "k", "v"],
        &["snapshot", "f", "--table", "t"],
        &["list", "--output", "xml"],
        &["write", "k", "!!", "--base64"],
    ] {
        let err = fails(Some(c), args, 2);
        assert!(!err.is_empty(), "{args:?}");
    }
    let err = fails(None, &["list"], 2);
    assert!(
        err.contains("--config FILE or set STORECTL_CONFIG"),
        "{err}"
    );
    let err = fails(Some(c), &["write", "k", "v", "--ttl", "soon"], 2);
    assert!(err.contains("--ttl"), "{err}");
}

#[test]
fn a_max_record_size_out_of_range_or_unreadable_exits_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let c = &file_config(dir.path(), "store");
    for command in ["snapshot", "restore"] {
        for (size, says) in [
            (
                "2GiB",
                "accepted is a size from 64 KiB (65536) to 1 GiB (1073741824 bytes",
            ),
            ("1073741825", "accepted is a size from 64 KiB"),
            ("1KiB", "accepted is a size from 64 KiB"),
            ("16MB", "write KiB, MiB or GiB"),
            (
                "lots",
                "accepted: bytes as a whole number, or with a KiB, MiB or GiB suffix",
            ),
            ("1.5GiB", "unknown unit"),
        ] {
            let args = [command, "s.snap", "--max-record-size", size];
            let err = fails(Some(c), &args, 2);
            assert!(
                err.contains(&format!(
                    "invalid value '{size}' for '--max-record-size <SIZE>'"
                )) && err.contains(says),
                "{args:?}: {err}"
            );
        }
        let help = String::from_utf8(run(None, &[command, "--help"]).stdout).unwrap();
        assert!(
            help.contains("--max-record-size <SIZE>") && help.contains("[default: 16MiB]"),
            "{help}"
        );
    }
    assert!(!dir.path().join("s.snap").exists());
}

#[test]
fn configuration_and_store_errors_exit_1_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let err = fails(Some(&missing), &["list"], 1);
    assert!(err.contains("missing.toml"), "{err}");
    let bad = config(dir.path(), "bad.toml", "backend = \"mongo\"\n");
    let err = fails(Some(&bad), &["list"], 1);
    assert!(err.contains("bad.toml") && err.contains("mongo"), "{err}");
    let field = config(
        dir.path(),
        "field.toml",
        "backend = \"file\"\n[file]\ndir = \"d\"\nsync = \"sometimes\"\n",
    );
    let err = fails(Some(&field), &["list"], 1);
    assert!(err.contains("file.sync"), "{err}");
    let c = &file_config(dir.path(), "store");
    let err = fails(Some(c), &["read", "k", "--table", "a/b"], 1);
    assert!(err.contains("table"), "{err}");
    let err = fails(Some(c), &["restore", "/no/such.snap"], 1);
    assert!(err.contains("/no/such.snap"), "{err}");
    // A device is written in place, not replaced; a full one is an error naming it.
    let err = fails(Some(c), &["snapshot", "/dev/full"], 1);
    assert!(err.contains("/dev/full"), "{err}");
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata("/dev/full")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    let err = fails(Some(c), &["snapshot", "/no/such/dir/s.snap"], 1);
    assert!(err.contains("/no/such/dir"), "{err}");
}
