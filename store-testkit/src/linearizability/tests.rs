//! The checker on hand-made histories, and against a brute-force search on thousands of
//! small random ones.

use super::*;

fn put(task: usize, value: &str, version: &str, invoked: u64, returned: u64) -> Operation {
    let call = Call::Put {
        value: value.to_owned().into(),
    };
    Operation::new(task, call, Outcome::stored(version), invoked, returned)
}

fn put_many_entry(task: usize, value: &str, invoked: u64, returned: u64) -> Operation {
    let call = Call::Put {
        value: value.to_owned().into(),
    };
    let outcome = Outcome::Stored { version: None };
    Operation::new(task, call, outcome, invoked, returned)
}

fn dropped_put(task: usize, value: &str, invoked: u64, returned: u64) -> Operation {
    let call = Call::Put {
        value: value.to_owned().into(),
    };
    Operation::new(task, call, Outcome::Unknown, invoked, returned)
}

fn create(task: usize, value: &str, outcome: Outcome, invoked: u64, returned: u64) -> Operation {
    let call = Call::Create {
        value: value.to_owned().into(),
    };
    Operation::new(task, call, outcome, invoked, returned)
}

fn cas(task: usize, expected: &str, value: &str, outcome: Outcome, at: (u64, u64)) -> Operation {
    let call = Call::Cas {
        expected: expected.to_owned(),
        value: value.to_owned().into(),
    };
    Operation::new(task, call, outcome, at.0, at.1)
}

fn get(task: usize, outcome: Outcome, invoked: u64, returned: u64) -> Operation {
    Operation::new(task, Call::Get, outcome, invoked, returned)
}

fn delete(task: usize, outcome: Outcome, invoked: u64, returned: u64) -> Operation {
    Operation::new(task, Call::Delete, outcome, invoked, returned)
}

#[track_caller]
fn linearizable(history: &[Operation]) {
    if let Err(violation) = check(history) {
        panic!("expected linearizable, got: {violation}");
    }
}

#[track_caller]
fn not_linearizable(history: &[Operation]) -> String {
    match check(history) {
        Err(violation @ Violation::NotLinearizable { .. }) => violation.to_string(),
        other => panic!("expected NotLinearizable, got {other:?}"),
    }
}

#[test]
fn a_sequential_history_of_every_call_is_linearizable() {
    linearizable(&[
        get(0, Outcome::NotFound, 1, 2),
        create(0, "a", Outcome::stored("1"), 3, 4),
        get(1, Outcome::found("a", "1"), 5, 6),
        create(1, "x", Outcome::already_exists("a", "1"), 7, 8),
        put(0, "b", "2", 9, 10),
        cas(1, "2", "c", Outcome::stored("3"), (11, 12)),
        cas(0, "2", "y", Outcome::Conflict, (13, 14)),
        get(0, Outcome::found("c", "3"), 15, 16),
        delete(1, Outcome::Deleted, 17, 18),
        delete(0, Outcome::NotFound, 19, 20),
        cas(0, "3", "z", Outcome::NotFound, (21, 22)),
        get(1, Outcome::NotFound, 23, 24),
        create(1, "d", Outcome::stored("4"), 25, 26),
        get(0, Outcome::found("d", "4"), 27, 28),
    ]);
}

#[test]
fn reads_overlapping_a_write_may_see_before_or_after_it() {
    linearizable(&[
        put(0, "a", "1", 1, 10),
        get(1, Outcome::NotFound, 2, 3),
        get(2, Outcome::found("a", "1"), 4, 5),
        get(1, Outcome::found("a", "1"), 6, 7),
        get(3, Outcome::NotFound, 2, 8),
    ]);
}

#[test]
fn a_read_cannot_go_back_to_before_a_write_it_has_seen() {
    let report = not_linearizable(&[
        put(0, "a", "1", 1, 10),
        get(1, Outcome::found("a", "1"), 2, 3),
        get(2, Outcome::NotFound, 4, 5),
    ]);
    assert!(report.contains("task  2: get -> NotFound"), "{report}");
}

#[test]
fn stale_read_after_a_completed_write_is_caught() {
    let report = not_linearizable(&[
        put(0, "a", "1", 1, 2),
        put(1, "b", "2", 3, 4),
        get(2, Outcome::found("a", "1"), 5, 6),
    ]);
    assert!(report.contains("task  1: put \"b\""), "{report}");
    assert!(report.contains("task  2: get -> found \"a\""), "{report}");
    assert!(report.contains("<- returned first"), "{report}");
}

#[test]
fn lost_update_is_caught() {
    // Two read-modify-write cycles from the same version, one after the other: the second
    // must conflict, since the first replaced that version.
    not_linearizable(&[
        create(0, "a", Outcome::stored("1"), 1, 2),
        cas(1, "1", "b", Outcome::stored("2"), (3, 4)),
        cas(2, "1", "c", Outcome::stored("3"), (5, 6)),
    ]);
}

#[test]
fn two_concurrent_cas_winners_are_caught() {
    not_linearizable(&[
        create(0, "a", Outcome::stored("1"), 1, 2),
        cas(1, "1", "b", Outcome::stored("2"), (3, 6)),
        cas(2, "1", "c", Outcome::stored("3"), (4, 5)),
    ]);
    // One winner and one conflict is fine, in either order.
    linearizable(&[
        create(0, "a", Outcome::stored("1"), 1, 2),
        cas(1, "1", "b", Outcome::stored("2"), (3, 6)),
        cas(2, "1", "c", Outcome::Conflict, (4, 5)),
    ]);
}

#[test]
fn two_creates_cannot_both_succeed() {
    not_linearizable(&[
        create(0, "a", Outcome::stored("1"), 1, 4),
        create(1, "b", Outcome::stored("2"), 2, 3),
    ]);
}

#[test]
fn version_reuse_is_caught() {
    let history = [
        put(0, "a", "1", 1, 2),
        delete(0, Outcome::Deleted, 3, 4),
        put(1, "b", "1", 5, 6),
    ];
    assert!(matches!(
        check(&history),
        Err(Violation::VersionReused { .. })
    ));
    // A read that reports another version than its write returned.
    let history = [
        put(0, "a", "1", 1, 2),
        get(1, Outcome::found("a", "7"), 3, 4),
    ];
    assert!(matches!(
        check(&history),
        Err(Violation::VersionReused { .. })
    ));
    // A put_many entry's version, learnt from a read, reused by a later write.
    let history = [
        put_many_entry(0, "a", 1, 2),
        get(1, Outcome::found("a", "5"), 3, 4),
        put(0, "b", "5", 5, 6),
    ];
    let violation = check(&history).unwrap_err();
    assert!(matches!(violation, Violation::VersionReused { .. }));
    assert!(violation.to_string().contains("\"5\""), "{violation}");
}

#[test]
fn values_nobody_wrote_are_caught() {
    let history = [get(0, Outcome::found("ghost", "1"), 1, 2)];
    assert!(matches!(
        check(&history),
        Err(Violation::NeverWritten { .. })
    ));
    // The value of a refused create was never stored.
    let history = [
        create(0, "a", Outcome::stored("1"), 1, 2),
        create(1, "b", Outcome::already_exists("a", "1"), 3, 4),
        get(2, Outcome::found("b", "2"), 5, 6),
    ];
    assert!(matches!(
        check(&history),
        Err(Violation::NeverWritten { .. })
    ));
}

#[test]
fn malformed_histories_are_refused() {
    let duplicate = [put(0, "a", "1", 1, 2), put(1, "a", "2", 3, 4)];
    assert!(matches!(
        check(&duplicate),
        Err(Violation::Malformed { .. })
    ));
    let impossible = [get(0, Outcome::Conflict, 1, 2)];
    assert!(matches!(
        check(&impossible),
        Err(Violation::Malformed { .. })
    ));
    let backwards = [get(0, Outcome::NotFound, 2, 2)];
    assert!(matches!(
        check(&backwards),
        Err(Violation::Malformed { .. })
    ));
}

#[test]
fn a_dropped_write_may_take_effect_after_it_was_dropped_or_never() {
    // Seen after the drop: it happened.
    linearizable(&[
        dropped_put(0, "a", 1, 2),
        get(1, Outcome::NotFound, 3, 4),
        get(1, Outcome::found("a", "9"), 5, 6),
    ]);
    // Never seen: it may not have happened.
    linearizable(&[
        put(0, "a", "1", 1, 2),
        dropped_put(1, "b", 3, 4),
        get(2, Outcome::found("a", "1"), 5, 6),
    ]);
    // Seen before it was invoked: impossible.
    not_linearizable(&[
        get(1, Outcome::found("a", "9"), 1, 2),
        dropped_put(0, "a", 3, 4),
    ]);
    // Seen, then unseen, then seen again with nothing else written: impossible.
    not_linearizable(&[
        dropped_put(0, "a", 1, 2),
        get(1, Outcome::found("a", "9"), 3, 4),
        get(1, Outcome::NotFound, 5, 6),
        get(1, Outcome::found("a", "9"), 7, 8),
    ]);
    // A dropped delete may have happened, a dropped create only on an empty key.
    linearizable(&[
        put(0, "a", "1", 1, 2),
        delete(1, Outcome::Unknown, 3, 4),
        create(2, "b", Outcome::Unknown, 5, 6),
        get(0, Outcome::found("b", "2"), 7, 8),
    ]);
    not_linearizable(&[
        put(0, "a", "1", 1, 2),
        create(2, "b", Outcome::Unknown, 3, 4),
        get(0, Outcome::found("b", "2"), 5, 6),
    ]);
}

#[test]
fn put_many_entries_take_the_version_their_readers_see() {
    linearizable(&[
        put_many_entry(0, "a", 1, 2),
        get(1, Outcome::found("a", "4"), 3, 4),
        cas(1, "4", "b", Outcome::stored("5"), (5, 6)),
    ]);
}

#[test]
fn the_search_gives_up_past_its_budget_and_never_passes() {
    // Twelve concurrent writes, each read by a concurrent read, then a read that nothing
    // can explain: every order of the writes must be tried before the answer.
    let mut history: Vec<Operation> = (0..12)
        .map(|i| {
            put(
                i,
                &format!("w{i}"),
                &format!("{i}"),
                1 + i as u64,
                100 + i as u64,
            )
        })
        .collect();
    for i in 0..12 {
        let seen = Outcome::found(format!("w{i}"), format!("{i}"));
        history.push(get(20 + i, seen, 50 + i as u64, 150 + i as u64));
    }
    history.push(get(40, Outcome::NotFound, 200, 201));
    match check_with_budget(&history, 1000) {
        Err(Violation::GaveUp { budget, .. }) => assert_eq!(budget, 1000),
        other => panic!("expected GaveUp, got {other:?}"),
    }
    assert!(matches!(
        check(&history),
        Err(Violation::NotLinearizable { .. })
    ));
    let message = Violation::GaveUp {
        budget: 1,
        operations: 2,
    }
    .to_string();
    assert!(message.starts_with("checker gave up"), "{message}");
}

// ---------------------------------------------------------------------------------------
// Timed histories: records that expire
// ---------------------------------------------------------------------------------------

/// The wall-clock instant `ms` milliseconds after the epoch. The timed histories below use
/// the same numbers for both clocks, so that the two agree.
fn ms(ms: u64) -> std::time::SystemTime {
    std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms)
}

/// `operation`, timed: its logical stamps read as milliseconds on the wall clock.
fn timed(operation: Operation) -> Operation {
    let (invoked, returned) = (operation.invoked, operation.returned);
    operation.with_wall_clock(ms(invoked), ms(returned))
}

/// `operation`, timed, writing a record that expires at `expires` ms.
fn expiring(operation: Operation, expires: u64) -> Operation {
    timed(operation).with_expiry(Some(ms(expires)))
}

#[test]
fn the_probes_expiry_violation_is_caught() {
    // A record that expires at 10 ms; a get that returned at 9 ms saw it gone; a cas of its
    // version that overlapped the get succeeded. The cas needs an instant before 10 ms, the
    // get one from 10 ms on, and the get could only follow the cas by seeing its record.
    let report = not_linearizable(&[
        expiring(put(0, "a", "1", 1, 2), 10),
        timed(cas(1, "1", "b", Outcome::stored("2"), (3, 12))),
        timed(get(2, Outcome::NotFound, 4, 9)),
    ]);
    assert!(
        report.contains("expiring at 00:00:00.010000000"),
        "{report}"
    );
    assert!(report.contains("task  2: get -> NotFound"), "{report}");
    // The same, with the get returning after the expiry: now it may come after it, but the
    // cas must still come before it, and then the get should have seen "b".
    not_linearizable(&[
        expiring(put(0, "a", "1", 1, 2), 10),
        timed(cas(1, "1", "b", Outcome::stored("2"), (3, 12))),
        timed(get(2, Outcome::NotFound, 4, 11)),
    ]);
    // Unless the cas's own record expired by then too.
    linearizable(&[
        expiring(put(0, "a", "1", 1, 2), 10),
        expiring(cas(1, "1", "b", Outcome::stored("2"), (3, 12)), 10),
        timed(get(2, Outcome::NotFound, 4, 11)),
    ]);
}

#[test]
fn a_record_is_live_before_its_expiry_and_gone_from_it_on() {
    // Seen just before the expiry, gone at it: expired means expires_at <= now.
    linearizable(&[
        expiring(put(0, "a", "1", 1, 2), 10),
        timed(get(1, Outcome::found("a", "1"), 9, 12)),
        timed(get(2, Outcome::NotFound, 10, 11)),
    ]);
    // A read that started at the expiry cannot see the record.
    not_linearizable(&[
        expiring(put(0, "a", "1", 1, 2), 10),
        timed(get(1, Outcome::found("a", "1"), 10, 12)),
    ]);
    // A read that ended before it cannot miss it.
    not_linearizable(&[
        expiring(put(0, "a", "1", 1, 2), 10),
        timed(get(1, Outcome::NotFound, 3, 9)),
    ]);
}

#[test]
fn an_expired_record_is_absent_for_every_call() {
    // create over it succeeds, cas and delete answer NotFound.
    linearizable(&[
        expiring(create(0, "a", Outcome::stored("1"), 1, 2), 10),
        timed(cas(1, "1", "x", Outcome::NotFound, (11, 12))),
        timed(delete(2, Outcome::NotFound, 11, 12)),
        timed(create(3, "b", Outcome::stored("2"), 13, 14)),
        timed(get(0, Outcome::found("b", "2"), 15, 16)),
    ]);
    // Before it expires each of them sees it.
    not_linearizable(&[
        expiring(create(0, "a", Outcome::stored("1"), 1, 2), 10),
        timed(cas(1, "1", "x", Outcome::NotFound, (3, 4))),
    ]);
    not_linearizable(&[
        expiring(create(0, "a", Outcome::stored("1"), 1, 2), 10),
        timed(delete(1, Outcome::NotFound, 3, 4)),
    ]);
    not_linearizable(&[
        expiring(create(0, "a", Outcome::stored("1"), 1, 2), 10),
        timed(create(1, "b", Outcome::stored("2"), 3, 4)),
    ]);
    // A create that overlaps the expiry may come after it; one after it cannot be refused.
    linearizable(&[
        expiring(create(0, "a", Outcome::stored("1"), 1, 2), 10),
        timed(create(1, "b", Outcome::stored("2"), 3, 11)),
    ]);
    not_linearizable(&[
        expiring(create(0, "a", Outcome::stored("1"), 1, 2), 10),
        timed(create(1, "b", Outcome::already_exists("a", "1"), 11, 12)),
    ]);
    // A record written already expired is never seen.
    not_linearizable(&[
        expiring(put(0, "a", "1", 5, 6), 4),
        timed(get(1, Outcome::found("a", "1"), 7, 8)),
    ]);
}

#[test]
fn a_cas_may_renew_a_record_only_before_it_expires() {
    // Renewed at 9 ms, before its expiry at 10: the renewed record is live until 20.
    linearizable(&[
        expiring(put(0, "a", "1", 1, 2), 10),
        expiring(cas(1, "1", "b", Outcome::stored("2"), (9, 12)), 20),
        timed(get(2, Outcome::found("b", "2"), 13, 14)),
        timed(get(2, Outcome::NotFound, 21, 22)),
    ]);
    // A renewal that began after the expiry cannot have succeeded.
    not_linearizable(&[
        expiring(put(0, "a", "1", 1, 2), 10),
        expiring(cas(1, "1", "b", Outcome::stored("2"), (10, 12)), 20),
    ]);
    // A renewal that overlaps a read that saw the record gone, both after the expiry:
    // the read must come before the cas, which then had nothing to renew.
    not_linearizable(&[
        expiring(put(0, "a", "1", 1, 2), 10),
        timed(get(2, Outcome::NotFound, 9, 11)),
        expiring(cas(1, "1", "b", Outcome::stored("2"), (8, 12)), 20),
        timed(get(3, Outcome::found("b", "2"), 13, 14)),
    ]);
    // Unless the renewed record expired before the read too.
    linearizable(&[
        expiring(put(0, "a", "1", 1, 2), 10),
        timed(get(2, Outcome::NotFound, 9, 16)),
        expiring(cas(1, "1", "b", Outcome::stored("2"), (8, 12)), 15),
    ]);
}

#[test]
fn a_dropped_write_with_an_expiry_may_happen_late_or_never() {
    // Seen after the drop, then gone when it expires.
    linearizable(&[
        expiring(dropped_put(0, "a", 1, 2), 10),
        timed(get(1, Outcome::found("a", "9"), 3, 4)),
        timed(get(1, Outcome::NotFound, 11, 12)),
    ]);
    // Seen after it expired: impossible, however late it took effect.
    not_linearizable(&[
        expiring(dropped_put(0, "a", 1, 2), 10),
        timed(get(1, Outcome::found("a", "9"), 12, 13)),
    ]);
    // A dropped create may wait for the record it would have been refused by to expire.
    linearizable(&[
        expiring(put(0, "a", "1", 1, 2), 10),
        timed(create(1, "b", Outcome::Unknown, 3, 4)),
        timed(get(2, Outcome::found("b", "2"), 12, 13)),
    ]);
}

#[test]
fn put_many_entries_with_an_expiry_are_timed_like_puts() {
    linearizable(&[
        expiring(put_many_entry(0, "a", 1, 2), 10),
        timed(get(1, Outcome::found("a", "4"), 3, 4)),
        timed(cas(1, "4", "b", Outcome::NotFound, (11, 12))),
        timed(get(2, Outcome::NotFound, 11, 12)),
    ]);
    not_linearizable(&[
        expiring(put_many_entry(0, "a", 1, 2), 10),
        timed(get(1, Outcome::found("a", "4"), 3, 4)),
        timed(cas(1, "4", "b", Outcome::NotFound, (5, 6))),
    ]);
}

#[test]
fn a_read_is_not_placed_first_when_that_would_skip_past_an_expiry() {
    // The get that saw nothing fits the empty key at once, but only from 11 ms on, which
    // would put the write of "y" after its own expiry at 10 and leave its read unexplained.
    // The order y (5), its read (5), expiry (10), then the get (11) works.
    linearizable(&[
        timed(get(0, Outcome::NotFound, 11, 40)),
        expiring(put(1, "y", "2", 3, 30), 10),
        timed(get(2, Outcome::found("y", "2"), 5, 35)),
    ]);
}

#[test]
fn unobserved_writes_stand_for_each_other_only_when_no_later() {
    // Two writes nobody read, with the same expiry: the one that returned first was
    // invoked after the record it would write had expired, so only the other one can
    // give the delete something to delete before 30 ms.
    linearizable(&[
        expiring(put(0, "a", "1", 1, 100), 30),
        expiring(put(1, "b", "2", 35, 80), 30),
        timed(delete(2, Outcome::Deleted, 2, 90)),
    ]);
}

#[test]
fn timed_histories_that_cannot_be_checked_are_refused() {
    let refused = |history: &[Operation], why: &str| match check(history) {
        Err(Violation::Malformed { reason }) => assert!(reason.contains(why), "{reason}"),
        other => panic!("expected Malformed ({why}), got {other:?}"),
    };
    refused(
        &[
            timed(put(0, "a", "1", 1, 2)),
            get(1, Outcome::NotFound, 3, 4),
        ],
        "some operations carry wall-clock times",
    );
    refused(
        &[put(0, "a", "1", 1, 2).with_expiry(Some(ms(5)))],
        "no wall-clock times",
    );
    refused(
        &[timed(get(0, Outcome::NotFound, 1, 2)).with_expiry(Some(ms(5)))],
        "writes nothing",
    );
    // Logical order says the put ended before the get began; the wall clock disagrees.
    refused(
        &[
            timed(put(0, "a", "1", 1, 2)).with_wall_clock(ms(1), ms(9)),
            timed(get(1, Outcome::NotFound, 3, 4)),
        ],
        "the wall clock went back",
    );
    refused(
        &[timed(get(0, Outcome::NotFound, 1, 2)).with_wall_clock(ms(2), ms(1))],
        "returned before it was invoked",
    );
}

#[test]
fn far_expiries_leave_a_history_timeless() {
    // Expiries after the last response never matter: the history is checked as if it had
    // none, so this one passes exactly as its timeless twin does.
    let history = [
        expiring(put(0, "a", "1", 1, 10), 3_600_000),
        timed(get(1, Outcome::NotFound, 2, 3)),
        timed(get(2, Outcome::found("a", "1"), 4, 5)),
    ];
    linearizable(&history);
    let timeless = history.clone().map(|operation| {
        Operation::new(
            operation.task,
            operation.call,
            operation.outcome,
            operation.invoked,
            operation.returned,
        )
    });
    assert_eq!(check(&history), check(&timeless));
}

// ---------------------------------------------------------------------------------------
// Against brute force
// ---------------------------------------------------------------------------------------

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A random history of up to eight operations, produced by running them one at a time at
/// instants inside their intervals against a register (so it is linearizable), then, for
/// two histories in three, with one outcome, interval or expiry changed (so it may not be).
///
/// A `timed` history has wall-clock times (the logical stamps, read as nanoseconds) and
/// writes with expiries: none, a random one soon after the write, or exactly an instant of
/// the history (where "expired when expires_at <= now" is decided by the boundary).
fn random_history(rng: &mut Rng, timed: bool) -> Vec<Operation> {
    let count = 1 + rng.below(8) as usize;
    struct Planned {
        invoked: u64,
        returned: u64,
        at: u64,
        kind: u64,
        happens: bool,
        unknown: bool,
        expires: Option<u64>,
    }
    let mut planned: Vec<Planned> = (0..count)
        .map(|i| {
            let start = rng.below(12);
            let end = start + 1 + rng.below(6);
            let invoked = start * 1000 + 2 * i as u64;
            let returned = end * 1000 + 2 * i as u64 + 1;
            let unknown = rng.below(6) == 0;
            // A dropped call may take effect after it was dropped.
            let last = if unknown { end + 8 } else { end };
            let at = start * 1000 + 500 + rng.below((last - start) * 1000 - 999);
            Planned {
                invoked,
                returned,
                at,
                kind: rng.below(7),
                happens: rng.below(2) == 0,
                unknown,
                expires: None,
            }
        })
        .collect();
    if timed {
        let instants: Vec<u64> = planned
            .iter()
            .flat_map(|p| [p.invoked, p.returned])
            .collect();
        for p in &mut planned {
            p.expires = match rng.below(4) {
                0 => None,
                1 => Some(instants[rng.below(instants.len() as u64) as usize]),
                _ => Some(p.at + rng.below(4000)),
            };
        }
    }
    let mut by_instant: Vec<usize> = (0..count).collect();
    by_instant.sort_by_key(|&i| planned[i].at);
    // The value, version and expiry of the live record.
    let mut register: Option<(String, String, Option<u64>)> = None;
    let mut versions: Vec<String> = Vec::new();
    let mut history: Vec<Option<Operation>> = vec![None; count];
    for i in by_instant {
        let p = &mut planned[i];
        if register
            .as_ref()
            .is_some_and(|(_, _, expires)| expires.is_some_and(|e| e <= p.at))
        {
            register = None;
        }
        let value = format!("v{i}");
        let fresh = format!("{}", 10 + i);
        let expires = p.expires;
        let stored = |register: &mut Option<(String, String, Option<u64>)>,
                      versions: &mut Vec<String>| {
            *register = Some((value.clone(), fresh.clone(), expires));
            versions.push(fresh.clone());
        };
        let applies = !p.unknown || p.happens;
        let (call, outcome) = match p.kind {
            0 | 1 => (
                Call::Get,
                match &register {
                    Some((v, ver, _)) => Outcome::found(v.clone(), ver.clone()),
                    None => Outcome::NotFound,
                },
            ),
            2 => {
                if applies {
                    stored(&mut register, &mut versions);
                }
                // Now and then a put_many entry, which reports no version.
                let outcome = if rng.below(3) == 0 {
                    Outcome::Stored { version: None }
                } else {
                    Outcome::stored(fresh.clone())
                };
                (
                    Call::Put {
                        value: value.clone().into(),
                    },
                    outcome,
                )
            }
            3 => {
                let outcome = match &register {
                    Some((v, ver, _)) => Outcome::already_exists(v.clone(), ver.clone()),
                    None => {
                        if applies {
                            stored(&mut register, &mut versions);
                        }
                        Outcome::stored(fresh.clone())
                    }
                };
                (
                    Call::Create {
                        value: value.clone().into(),
                    },
                    outcome,
                )
            }
            4 | 5 => {
                let expected = if versions.is_empty() || rng.below(4) == 0 {
                    "none".to_owned()
                } else {
                    versions[rng.below(versions.len() as u64) as usize].clone()
                };
                let outcome = match &register {
                    None => Outcome::NotFound,
                    Some((_, ver, _)) if *ver != expected => Outcome::Conflict,
                    Some(_) => {
                        if applies {
                            stored(&mut register, &mut versions);
                        }
                        Outcome::stored(fresh.clone())
                    }
                };
                let call = Call::Cas {
                    expected,
                    value: value.clone().into(),
                };
                (call, outcome)
            }
            _ => {
                let outcome = match register {
                    Some(_) => {
                        if applies {
                            register = None;
                        }
                        Outcome::Deleted
                    }
                    None => Outcome::NotFound,
                };
                (Call::Delete, outcome)
            }
        };
        let outcome = if p.unknown { Outcome::Unknown } else { outcome };
        let mut operation = Operation::new(i, call, outcome, p.invoked, p.returned);
        if timed {
            let expires = p.expires.filter(|_| operation.call.writes().is_some());
            operation = operation
                .with_wall_clock(nanos(p.invoked), nanos(p.returned))
                .with_expiry(expires.map(nanos));
        }
        history[i] = Some(operation);
    }
    let mut history: Vec<Operation> = history.into_iter().map(Option::unwrap).collect();
    if rng.below(3) != 0 {
        let i = rng.below(count as u64) as usize;
        let op = &mut history[i];
        match rng.below(if timed { 5 } else { 4 }) {
            0 => op.outcome = Outcome::NotFound,
            1 => op.outcome = Outcome::found(format!("v{}", rng.below(count as u64)), "10"),
            2 => op.outcome = Outcome::Conflict,
            3 => {
                // Move the call earlier: it may now precede what it saw.
                let shift = rng.below(op.invoked / 1000 + 1) * 1000;
                op.invoked -= shift;
                if let Some(wall) = &mut op.wall {
                    wall.invoked = nanos(op.invoked);
                }
            }
            _ => {
                // Move an expiry: the record may now be gone when it was seen, or live
                // when it was missed.
                if op.call.writes().is_some() {
                    op.expires_at = Some(nanos(rng.below(20_000)));
                }
            }
        }
    }
    history
}

/// The wall-clock instant `n` nanoseconds after the epoch.
fn nanos(n: u64) -> std::time::SystemTime {
    std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(n)
}

/// Whether some subset-and-order of the operations, each at some instant of its interval,
/// the instants never going back, respects real time and the register, tried exhaustively
/// on the model written out plainly. Instants are tried from the invocations and expiries
/// of the history (in nanoseconds; 0 for a timeless history): any instant of a solution
/// can be lowered to the latest of those at or before it without changing what is live
/// when, so these are enough.
fn brute_force(history: &[Operation]) -> bool {
    // A write's version: the one it returned, else the one its readers saw.
    let mut version_of: Vec<Option<String>> = history
        .iter()
        .map(|op| match &op.outcome {
            Outcome::Stored { version } => version.clone(),
            _ => None,
        })
        .collect();
    for op in history {
        if let Outcome::Found { value, version } | Outcome::AlreadyExists { value, version } =
            &op.outcome
        {
            if let Some(w) = history.iter().position(|w| w.call.writes() == Some(value)) {
                match &version_of[w] {
                    None => version_of[w] = Some(version.clone()),
                    Some(known) if known != version => return false,
                    Some(_) => {}
                }
            }
        }
    }
    let mut all: Vec<&String> = version_of.iter().flatten().collect();
    all.sort();
    if all.windows(2).any(|w| w[0] == w[1]) {
        return false;
    }
    let time = |at: std::time::SystemTime| {
        at.duration_since(std::time::SystemTime::UNIX_EPOCH)
            .expect("after the epoch")
            .as_nanos() as u64
    };
    // Per operation: its wall-clock interval (a known outcome), and its record's expiry.
    let from: Vec<u64> = history
        .iter()
        .map(|op| op.wall.map_or(0, |wall| time(wall.invoked)))
        .collect();
    let until: Vec<u64> = history
        .iter()
        .map(|op| match (op.wall, &op.outcome) {
            (Some(wall), outcome) if *outcome != Outcome::Unknown => time(wall.returned),
            _ => u64::MAX,
        })
        .collect();
    let expires: Vec<Option<u64>> = history.iter().map(|op| op.expires_at.map(time)).collect();
    let mut instants: Vec<u64> = from
        .iter()
        .copied()
        .chain(expires.iter().flatten().copied())
        .collect();
    instants.sort_unstable();
    instants.dedup();

    struct Brute<'a> {
        history: &'a [Operation],
        version_of: &'a [Option<String>],
        from: &'a [u64],
        until: &'a [u64],
        expires: &'a [Option<u64>],
        instants: &'a [u64],
        failed: std::collections::HashSet<(Vec<bool>, Option<usize>, u64)>,
    }
    impl Brute<'_> {
        /// From the register filled by `register`, the last operation placed at `lower`.
        fn step(&mut self, used: &mut Vec<bool>, register: Option<usize>, lower: u64) -> bool {
            let history = self.history;
            let n = history.len();
            let pending_required = (0..n)
                .filter(|&i| !used[i] && history[i].outcome != Outcome::Unknown)
                .count();
            if pending_required == 0 {
                return true;
            }
            if self.failed.contains(&(used.clone(), register, lower)) {
                return false;
            }
            for i in 0..n {
                if used[i] {
                    continue;
                }
                // Real time: nothing unplaced (and required) may have returned before i began.
                let blocked = (0..n).any(|j| {
                    !used[j]
                        && j != i
                        && history[j].outcome != Outcome::Unknown
                        && history[j].returned < history[i].invoked
                });
                if blocked {
                    continue;
                }
                for k in 0..self.instants.len() {
                    let at = self.instants[k];
                    if at < lower || at < self.from[i] || at > self.until[i] {
                        continue;
                    }
                    // The register at that instant: expired when expires_at <= now.
                    let live = register.filter(|&w| self.expires[w].is_none_or(|e| at < e));
                    if let Some(next) = self.apply(i, live) {
                        used[i] = true;
                        let found = self.step(used, next, at);
                        used[i] = false;
                        if found {
                            return true;
                        }
                    }
                }
            }
            self.failed.insert((used.clone(), register, lower));
            false
        }

        /// The register after operation `i` on the live record of `register`, if it can.
        fn apply(&self, i: usize, register: Option<usize>) -> Option<Option<usize>> {
            let (history, version_of) = (self.history, self.version_of);
            let op = &history[i];
            let holds = |w: Option<usize>, value: &bytes::Bytes, version: &str| {
                w.is_some_and(|w| {
                    history[w].call.writes() == Some(value)
                        && version_of[w].as_deref() == Some(version)
                })
            };
            let version_now = register.and_then(|w| version_of[w].clone());
            match (&op.call, &op.outcome) {
                (Call::Get, Outcome::Unknown) => None,
                (_, Outcome::Found { value, version })
                | (_, Outcome::AlreadyExists { value, version }) => {
                    holds(register, value, version).then_some(register)
                }
                (_, Outcome::NotFound) => register.is_none().then_some(register),
                (Call::Cas { expected, .. }, Outcome::Conflict) => (register.is_some()
                    && version_now.as_deref() != Some(expected.as_str()))
                .then_some(register),
                (Call::Put { .. }, _) => Some(Some(i)),
                (Call::Create { .. }, _) => register.is_none().then_some(Some(i)),
                (Call::Cas { expected, .. }, _) => (register.is_some()
                    && version_now.as_deref() == Some(expected.as_str()))
                .then_some(Some(i)),
                (Call::Delete, _) => register.is_some().then_some(None),
                _ => None,
            }
        }
    }
    let mut brute = Brute {
        history,
        version_of: &version_of,
        from: &from,
        until: &until,
        expires: &expires,
        instants: &instants,
        failed: std::collections::HashSet::new(),
    };
    brute.step(&mut vec![false; history.len()], None, 0)
}

/// Checks `rounds` random histories against [`brute_force`]; returns how many were
/// linearizable and how many not.
fn against_brute_force(seed: u64, rounds: usize, timed: bool) -> (usize, usize) {
    let mut rng = Rng(seed);
    let (mut yes, mut no) = (0, 0);
    for round in 0..rounds {
        let history = random_history(&mut rng, timed);
        let got = check(&history);
        if matches!(got, Err(Violation::Malformed { .. })) {
            // A changed outcome that the call cannot have (a get that conflicts).
            continue;
        }
        let expected = brute_force(&history);
        if got.is_ok() != expected {
            let listing: Vec<String> = history.iter().map(|op| format!("  {op}")).collect();
            panic!(
                "round {round}: brute force says {expected}, the checker {got:?}, on:\n{}",
                listing.join("\n")
            );
        }
        if expected {
            yes += 1;
        } else {
            no += 1;
        }
    }
    (yes, no)
}

#[test]
fn the_search_agrees_with_brute_force_on_small_random_histories() {
    let (yes, no) = against_brute_force(0x9e37_79b9_7f4a_7c15, 5000, false);
    assert!(yes > 2000 && no > 400, "{yes} linearizable, {no} not");
}

#[test]
fn the_timed_search_agrees_with_brute_force_on_small_random_histories() {
    let (yes, no) = against_brute_force(0x2545_f491_4f6c_dd1d, 10_000, true);
    assert!(yes > 5000 && no > 600, "{yes} linearizable, {no} not");
}
