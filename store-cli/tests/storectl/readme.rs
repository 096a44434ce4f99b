//! The README's migration from a file store to Redis, run as written.

use std::path::Path;

use crate::support::storectl;

/// The text between `<!-- name -->` and `<!-- /name -->` in the README.
fn section<'a>(readme: &'a str, name: &str) -> &'a str {
    let start = readme
        .find(&format!("<!-- {name} -->"))
        .unwrap_or_else(|| panic!("README has no <!-- {name} -->"));
    let end = readme.find(&format!("<!-- /{name} -->")).unwrap();
    &readme[start..end]
}

/// The contents of every fenced block of `kind` in `text`.
fn blocks<'a>(text: &'a str, kind: &str) -> Vec<&'a str> {
    let fence = format!("```{kind}\n");
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(&fence) {
        let body = &rest[at + fence.len()..];
        let end = body.find("```").unwrap();
        found.push(&body[..end]);
        rest = &body[end..];
    }
    found
}

#[test]
fn the_readme_migration_works_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let text = section(&readme, "storectl-migration");
    let dir = tempfile::tempdir().unwrap();
    let url = store_redis::testing::server_url();
    store_redis::testing::require_server(&url);
    let prefix = store_redis::testing::fresh_name("readme");
    let _guard = store_redis::testing::PrefixGuard::new(&url, &prefix);
    // The two configurations as the README shows them, each named by its first comment
    // line (`# file.toml`), with the test server and a fresh prefix.
    for toml in blocks(text, "toml") {
        let (name, body) = toml.split_once('\n').unwrap();
        let name = name.trim_start_matches('#').trim();
        let body = body
            .replace("redis://127.0.0.1:6379/0", &url)
            .replace("prefix = \"orders\"", &format!("prefix = {prefix:?}"));
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    // Some data in the file store first (its `dir` is relative to where storectl runs).
    let in_dir = |args: &[&str]| {
        let output = storectl(None, args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    in_dir(&[
        "-c",
        "file.toml",
        "write",
        "order/1",
        "paid",
        "-m",
        "total=12.5",
        "--ttl",
        "24h",
    ]);
    in_dir(&["-c", "file.toml", "write", "order/2", "open"]);
    let mut ran = 0;
    for line in blocks(text, "sh").concat().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], "storectl", "{line}");
        let output = storectl(None, &words[1..])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 3, "the README migration has commands");
    assert_eq!(in_dir(&["-c", "redis.toml", "list"]), "order/1\norder/2\n");
    let read = in_dir(&["-c", "redis.toml", "read", "order/1", "-o", "json"]);
    assert!(read.contains("\"metadata\":{\"total\":12.5}"), "{read}");
}
