//! Damaged snapshots: a clear error naming the line, and nothing restored.

use crate::support::{fails, file_config, ok, storectl};

/// A file store with `n` records and its snapshot's lines.
fn snapshot_lines(dir: &std::path::Path, n: usize) -> Vec<String> {
    let c = &file_config(dir, "source");
    for i in 0..n {
        ok(
            c,
            &[
                "write",
                &format!("k{i:02}"),
                &format!("value {i}"),
                "-m",
                &format!("i={i}"),
            ],
        );
    }
    let path = dir.join("good.snap");
    ok(c, &["snapshot", path.to_str().unwrap()]);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn damaged_snapshots_restore_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lines = snapshot_lines(dir.path(), 5);
    assert_eq!(lines.len(), 7);
    let target = &file_config(dir.path(), "target");
    let joined = |ls: &[String]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();

    // One changed character in the fourth line (the third record).
    let mut damaged = lines.clone();
    damaged[3] = damaged[3].replace("value 2", "value 9");
    let file = write(dir.path(), "damaged.snap", &joined(&damaged));
    let err = fails(Some(target), &["restore", &file], 1);
    assert!(
        err.contains("damaged.snap: line 4: checksum mismatch"),
        "{err}"
    );
    assert_eq!(ok(target, &["keys", "*", "--raw"]), "", "nothing restored");

    // Cut in the middle of a line, and cut after a whole line.
    let text = joined(&lines);
    let file = write(dir.path(), "cut.snap", &text[..text.len() / 2]);
    let err = fails(Some(target), &["restore", &file], 1);
    assert!(
        err.contains("cut.snap: line ") && err.contains("truncated"),
        "{err}"
    );
    let file = write(dir.path(), "short.snap", &joined(&lines[..5]));
    let err = fails(Some(target), &["restore", &file], 1);
    assert!(
        err.contains("short.snap: line 6: the file ends after line 5 without an end line"),
        "{err}"
    );
    // A line removed whole: the end line's count tells.
    let mut removed = lines.clone();
    removed.remove(2);
    let file = write(dir.path(), "removed.snap", &joined(&removed));
    let err = fails(Some(target), &["restore", &file], 1);
    assert!(err.contains("line 6: the end line says 5 records"), "{err}");
    // Not a snapshot at all.
    let file = write(dir.path(), "other.snap", "{\"hello\":1}\n");
    let err = fails(Some(target), &["restore", &file], 1);
    assert!(err.contains("line 1"), "{err}");
    assert_eq!(ok(target, &["keys", "*", "--raw"]), "", "nothing restored");

    // From stdin too (staged, then checked).
    let mut child = storectl(Some(target), &["restore", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), joined(&damaged).as_bytes()).unwrap();
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("snapshot -: line 4: checksum mismatch")
    );
    assert_eq!(ok(target, &["keys", "*", "--raw"]), "", "nothing restored");

    // --partial keeps what came before the bad line.
    let file = write(dir.path(), "damaged.snap", &joined(&damaged));
    let err = fails(Some(target), &["restore", &file, "--partial"], 1);
    assert!(err.contains("line 4: checksum mismatch"), "{err}");
    assert_eq!(ok(target, &["list"]), "k00\nk01\n");
    let err = fails(Some(target), &["restore", "-", "--partial", "--verify"], 2);
    assert!(err.contains("--partial"), "{err}");
}

#[test]
fn an_endless_line_on_stdin_is_refused_at_the_limit() {
    use store_cli::snapshot::MAX_LINE;
    let dir = tempfile::tempdir().unwrap();
    let lines = snapshot_lines(dir.path(), 1);
    let target = &file_config(dir.path(), "target");
    // The default limit, and a raised one: the memory a line takes follows the flag.
    endless_line(target, &lines[0], &["restore", "-"], MAX_LINE);
    endless_line(
        target,
        &lines[0],
        &["restore", "-", "--max-record-size", "20MiB"],
        4 * (20 << 20),
    );
}

/// Feeds `restore` (as `args`) a good header, then a line with no end, and checks that it
/// refuses the line once it has read `max_line` bytes of it.
fn endless_line(target: &std::path::Path, header: &str, args: &[&str], max_line: usize) {
    use std::io::Write;
    let mut child = storectl(Some(target), args)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Twice the limit is offered, and the test counts what storectl accepted before it
    // gave up and closed its end of the pipe.
    let mut stdin = child.stdin.take().unwrap();
    let offered = 2 * max_line;
    let header = format!("{header}\n");
    let feeder = std::thread::spawn(move || {
        stdin.write_all(header.as_bytes()).unwrap();
        let mut accepted = header.len();
        let chunk = vec![b'x'; 1 << 20];
        while accepted < offered {
            match stdin.write(&chunk) {
                Ok(n) => accepted += n,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                Err(e) => panic!("writing to storectl: {e}"),
            }
        }
        accepted
    });
    let output = child.wait_with_output().unwrap();
    let accepted = feeder.join().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
    assert!(
        err.contains(&format!("snapshot -: line 2: longer than {max_line} bytes")),
        "{args:?}: {err}"
    );
    // What storectl read is one line's worth, plus what its buffers and the pipe hold.
    assert!(
        accepted < max_line + (4 << 20),
        "{args:?}: storectl took {accepted} of {offered} bytes"
    );
    assert_eq!(ok(target, &["keys", "*", "--raw"]), "", "nothing restored");
}
