//! Usage errors exit with status 2, store and configuration errors with 1, help with 0.

use crate::support::{config, fails, file_config, run};

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
