//! The child-process harness: a child is waited for as long as it makes progress, however
//! slowly, and fails (and so fails its scenario) once it has made none for its limit.
//!
//! Run by `cargo test` like any test binary (it has its own `main`, `harness = false`), and
//! it ends with a `N passed, M failed` line.

use std::time::{Duration, Instant};

use store_testkit::process::{self, say, ChildProcess, Scenario};

/// The children's silence limit: short, so that the silent child fails quickly.
const CHILD_LIMIT: Duration = Duration::from_secs(2);
/// How long the parent waits for a line (the children end long before).
const PARENT_LIMIT: Duration = Duration::from_secs(30);

fn main() {
    match process::child_role() {
        Some(role) => child_main(&role),
        None => {
            let scenarios: [(&str, Scenario); 3] = [
                ("a_child_answers_on_the_store_it_was_given", echo),
                ("a_slow_child_that_makes_progress_is_waited_for", slow),
                ("a_silent_child_fails_after_its_limit", silent),
            ];
            let removed = std::cell::RefCell::new(Vec::new());
            process::run_scenarios(
                "process",
                &scenarios,
                || store_testkit::fresh_name("process"),
                |store| removed.borrow_mut().push(store.to_owned()),
            );
            // Each scenario's store was removed, once.
            let removed = removed.into_inner();
            assert_eq!(removed.len(), scenarios.len(), "{removed:?}");
            assert!(removed.iter().all(|s| s.starts_with("test-process-")));
        }
    }
}

fn echo(store: &str) -> Result<(), String> {
    let child = ChildProcess::spawn("echo", store, &["hello".to_owned()]);
    let said = child.expect_line("echo", PARENT_LIMIT)?;
    child.finish(PARENT_LIMIT)?;
    if said == format!("{store} hello") {
        Ok(())
    } else {
        Err(format!("the child said {said:?}"))
    }
}

fn slow(store: &str) -> Result<(), String> {
    let started = Instant::now();
    let child = ChildProcess::spawn("slow", store, &[]);
    let lines = child.finish(PARENT_LIMIT)?;
    if lines.len() != 16 {
        return Err(format!("the child said {lines:?}"));
    }
    // It ran for several of its limits: slowness alone never fails a child.
    if started.elapsed() < 2 * CHILD_LIMIT {
        return Err(format!("the child ended after {:?}", started.elapsed()));
    }
    Ok(())
}

fn silent(store: &str) -> Result<(), String> {
    let started = Instant::now();
    let child = ChildProcess::spawn("silent", store, &[]);
    match child.finish(PARENT_LIMIT) {
        Ok(lines) => Err(format!("a silent child passed, saying {lines:?}")),
        Err(why) if why.contains("the child failed") && started.elapsed() < PARENT_LIMIT => Ok(()),
        Err(why) => Err(format!("the silent child failed otherwise: {why}")),
    }
}

fn child_main(role: &str) {
    process::run_child(role, CHILD_LIMIT, |store, args| async move {
        match role {
            "echo" => say(&format!("echo {store} {}", args.join(" "))),
            // A line every eighth of the limit (a wide margin for a loaded machine's
            // scheduling): progress, for two limits in all.
            "slow" => {
                for n in 0..16 {
                    tokio::time::sleep(CHILD_LIMIT / 8).await;
                    say(&format!("step {n}"));
                }
            }
            // Nothing finishes, ever: the watchdog ends the process.
            "silent" => futures::future::pending::<()>().await,
            other => return Err(format!("unknown role {other:?}")),
        }
        Ok(())
    });
}
