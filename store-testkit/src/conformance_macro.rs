//! `conformance_tests!`: one `#[test]` per case, for any backend or layer.

/// Expands into one `#[test]` function per conformance case, each running that case (through
/// [`run`](crate::run)) on a fresh store from `factory`.
///
/// Each case gets its stores wrapped in [`Watched`](crate::Watched), which only
/// counts finished calls: a case fails as hung when none of its calls finishes for
/// [`STALL_LIMIT`](crate::STALL_LIMIT), never for being slow.
///
/// # Every backend and layer
///
/// `store_testkit::conformance_tests!(factory)` generates the cases that every
/// [`Storage`](store_core::Storage) must pass on one handle: every rule of the contract, the
/// **Linearizable** rule included (woken waiters, other tasks, `get_many` and gets after a
/// listing see what completed before them, and random histories from 8 to 32 tasks, with
/// records that expire while they run, pass [the checker](crate::linearizability)).
///
/// `factory` is any expression callable as `(factory)().await` that yields a `Storage`:
/// a closure such as `|| async { MemoryStorage::new() }`, or the path of an `async fn`. It is
/// called once per test, inside that test's tokio runtime, and must give a fresh, empty
/// store. Put each invocation in its own module, since the generated functions are named
/// after the cases.
///
/// `store_core::conformance_tests!` forwards here unchanged, so a backend written against
/// store-core's name keeps its one line; either way the calling crate has this crate among
/// its dev-dependencies.
///
/// # Capabilities
///
/// Options after the factory declare what else the backend can do; each generates the
/// cases that check it, and nothing is generated for what is not declared (no case passes
/// by skipping itself). They may come in any order:
///
/// - `second_handle = |first| async { .. }`: a second, independent handle on the same data
///   as `first` (the factory's store): a clone for an in-process store, a second connection
///   on the same prefix or table for a network backend. Generates the cases of
///   `shared.rs`: `create`, concurrent `cas_by_version`, waiters and listings
///   through one handle see the other's writes. The closure's parameter may carry its type
///   (`|first: &MyStore| ..`); the path of an `async fn(&MyStore) -> Other` works too.
/// - `linearizable_across_handles = true | false` (default `true`, which is what the
///   contract asks of shared backends): whether a read through one handle sees at once what
///   the other wrote. `true` also generates the cases of `shared_linearizable.rs`
///   (reads, woken waiters, `get_many` and listings across handles, and checked random
///   histories with tasks on both handles). Declare `false` only for stacks that promise
///   less, such as a cache layer in each of two processes over one shared store (the cache
///   bounds staleness by its `ttl`).
/// - `reopen = |closed| async { .. }`: the backend is durable. Given the store after the
///   case closed it (by value), returns a store opened again on the same data. Generates
///   the cases of `durable.rs`: everything acknowledged before `close` is there
///   after reopening, with the same versions, and no version is ever handed out twice.
///
/// # Examples
///
/// ```
/// /// The backend under test (here: a tiny engine run by the store-core actor runtime).
/// async fn new_store() -> store_core::runtime::ActorHandle {
///     store_core::runtime::spawn(store_core::__private::DocEngine::default(), Default::default())
/// }
///
/// // In tests/conformance.rs: one #[test] per case, e.g. `plain::put_many_later_duplicates_win`.
/// mod plain {
///     store_testkit::conformance_tests!(super::new_store);
/// }
/// mod namespaced {
///     store_testkit::conformance_tests!(|| async {
///         store_core::Namespaced::new(super::new_store().await, "tenant").unwrap()
///     });
/// }
/// // The same cases, plus the two-handle ones: a clone of the actor handle is a second
/// // handle on the same data (linearizable with the first, the default).
/// mod shared {
///     use store_core::runtime::ActorHandle;
///     store_testkit::conformance_tests!(
///         super::new_store,
///         second_handle = |first: &ActorHandle| async { first.clone() },
///     );
/// }
///
/// # fn main() {
/// // A single case can also be run by hand:
/// store_testkit::run(|| async {
///     store_testkit::cas_matching_version_stores_with_a_new_version(new_store().await).await;
/// });
/// # }
/// ```
///
/// A durable backend declares `reopen`; this is store-file's test file, whose store owns its
/// temporary directory (so the directory outlives every handle):
///
/// ```text
/// async fn reopen(closed: TempFileStorage, options: FileOptions) -> TempFileStorage {
///     let store = FileStorage::open_with(closed.dir.path(), options).await.expect("reopen");
///     TempFileStorage { store, dir: closed.dir }
/// }
///
/// mod default_options {
///     use super::{open, reopen, TempFileStorage};
///     use store_file::FileOptions;
///
///     store_testkit::conformance_tests!(
///         || open(FileOptions::default()),
///         second_handle = |first: &TempFileStorage| async { first.clone() },
///         reopen = |closed| reopen(closed, FileOptions::default()),
///     );
/// }
/// ```
///
/// A network backend whose instances each keep a cache declares that reads across handles
/// may lag (two caches over one server), and still runs every other shared case:
///
/// ```text
/// store_testkit::conformance_tests!(
///     || cached(connect(&prefix)),
///     second_handle = |first| cached(connect(first.prefix())),
///     linearizable_across_handles = false,
/// );
/// ```
///
/// # Mistakes are compile errors
///
/// An option the macro does not know, an option given twice, or
/// `linearizable_across_handles` without a second handle does not compile:
///
/// ```compile_fail
/// # async fn new_store() -> store_core::runtime::ActorHandle { unimplemented!() }
/// store_testkit::conformance_tests!(new_store, durable = true);
/// ```
///
/// ```compile_fail
/// # async fn new_store() -> store_core::runtime::ActorHandle { unimplemented!() }
/// store_testkit::conformance_tests!(new_store, linearizable_across_handles = false);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    // ---- The tests, one per case, for each way of calling a case. ----
    (@single ($factory:expr) $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::run(|| async {
                    let store = $crate::Watched::new(($factory)().await);
                    $crate::$case(store).await;
                });
            }
        )*
    };
    (@pair [$group:ident] ($factory:expr) $second:tt $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::run(|| async {
                    let first = ($factory)().await;
                    let second = $crate::conformance_tests!(@second_handle first $second);
                    $crate::$case(
                        $crate::Watched::new(first),
                        $crate::Watched::new(second),
                    )
                    .await;
                });
            }
        )*
    };
    (@reopen ($factory:expr) ($reopen:expr) $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::run(|| async {
                    let store = $crate::Watched::new(($factory)().await);
                    let mut reopen = $reopen;
                    let reopen = move |closed: $crate::Watched<_>| {
                        let reopened = reopen(closed.into_inner());
                        async move { $crate::Watched::new(reopened.await) }
                    };
                    $crate::$case(store, reopen).await;
                });
            }
        )*
    };
    // A closure is taken apart, so that its future may borrow the first handle (a closure
    // returning such a future cannot be typed).
    (@second_handle $first:ident (closure $param:ident ($($ty:ty)?) $body:expr)) => {{
        let $param $(: $ty)? = &$first;
        $body.await
    }};
    (@second_handle $first:ident (call $handle:expr)) => {
        ($handle)(&$first).await
    };

    // ---- Options, collected as (second handle) (linearizable) (reopen). ----
    (@option $f:tt () $lin:tt $reopen:tt
        second_handle = |$param:ident $(: $ty:ty)?| $body:expr $(, $($rest:tt)*)?) => {
        $crate::conformance_tests!(@option $f (closure $param ($($ty)?) $body) $lin $reopen
            $($($rest)*)?);
    };
    (@option $f:tt () $lin:tt $reopen:tt second_handle = $handle:expr $(, $($rest:tt)*)?) => {
        $crate::conformance_tests!(@option $f (call $handle) $lin $reopen $($($rest)*)?);
    };
    (@option $f:tt $second:tt () $reopen:tt
        linearizable_across_handles = true $(, $($rest:tt)*)?) => {
        $crate::conformance_tests!(@option $f $second (true) $reopen $($($rest)*)?);
    };
    (@option $f:tt $second:tt () $reopen:tt
        linearizable_across_handles = false $(, $($rest:tt)*)?) => {
        $crate::conformance_tests!(@option $f $second (false) $reopen $($($rest)*)?);
    };
    (@option $f:tt $second:tt $lin:tt () reopen = $reopen:expr $(, $($rest:tt)*)?) => {
        $crate::conformance_tests!(@option $f $second $lin ($reopen) $($($rest)*)?);
    };
    (@option $f:tt $second:tt $lin:tt $reopen:tt) => {
        $crate::conformance_tests!(@generate $f $second $lin $reopen);
    };
    (@option $f:tt $second:tt $lin:tt $reopen:tt $($unknown:tt)+) => {
        ::core::compile_error!(::core::concat!(
            "conformance_tests!: cannot read `",
            ::core::stringify!($($unknown)+),
            "`. After the factory it accepts, once each: `second_handle = |first| async { .. }`, \
             `linearizable_across_handles = true` or `false`, `reopen = |closed| async { .. }`"
        ));
    };

    // ---- What the options generate. ----
    (@generate $f:tt () ($($lin:tt)+) $reopen:tt) => {
        ::core::compile_error!(
            "conformance_tests!: `linearizable_across_handles` needs `second_handle`"
        );
    };
    (@generate $f:tt $second:tt $lin:tt $reopen:tt) => {
        $crate::conformance_tests!(@shared $f $second);
        $crate::conformance_tests!(@shared_linearizable $f $second $lin);
        $crate::conformance_tests!(@durable $f $reopen);
    };
    (@shared $f:tt ()) => {};
    (@shared ($factory:expr) $second:tt) => {
        $crate::conformance_tests!(@pair [shared] ($factory) $second
            create_through_the_other_handle_returns_the_live_record,
            concurrent_cas_across_handles_has_exactly_one_winner,
            waiters_on_one_handle_are_woken_by_writes_through_the_other,
            a_waiter_on_one_handle_is_woken_by_the_expiry_of_a_write_through_the_other,
            listing_through_one_handle_shows_the_others_writes_and_deletes,
        );
    };
    (@shared_linearizable $f:tt () $lin:tt) => {};
    (@shared_linearizable $f:tt $second:tt (false)) => {};
    (@shared_linearizable ($factory:expr) $second:tt $lin:tt) => {
        $crate::conformance_tests!(@pair [shared_linearizable] ($factory) $second
            writes_through_one_handle_are_read_at_once_through_the_other,
            a_waiter_woken_by_the_other_handle_reads_what_woke_it,
            get_many_through_one_handle_is_never_torn_by_put_many_through_the_other,
            get_many_through_one_handle_sees_puts_through_the_other_in_order,
            a_get_through_one_handle_agrees_with_a_listing_through_the_other,
            concurrent_histories_across_handles_are_linearizable,
        );
    };
    (@durable $f:tt ()) => {};
    (@durable ($factory:expr) ($reopen:expr)) => {
        $crate::conformance_tests!(@reopen ($factory) ($reopen)
            reopen_keeps_every_record_with_its_version,
            reopen_never_reuses_a_version,
        );
    };

    // ---- The entry points. ----
    ($factory:expr $(,)?) => {
        $crate::conformance_tests!(@single ($factory)
            create_stores_a_new_record,
            create_on_live_key_is_already_exists,
            create_ignores_the_given_version,
            create_after_delete_succeeds,
            get_missing_key_is_not_found,
            get_many_is_positional,
            put_stores_and_returns_the_record,
            writes_answer_with_the_record_as_stored,
            put_replaces_value_and_expiry,
            put_many_stores_every_record,
            put_many_later_duplicates_win,
            put_many_with_an_invalid_key_stores_nothing,
            concurrent_writes_of_one_key_leave_the_last_visible,
            cas_on_missing_key_is_not_found,
            cas_with_wrong_version_is_conflict,
            cas_matching_version_stores_with_a_new_version,
            delete_removes_the_record,
            versions_change_on_every_write,
            versions_are_never_reused_for_a_key,
            expired_record_is_invisible_to_get,
            expired_record_is_invisible_to_get_many,
            cas_on_expired_record_is_not_found,
            delete_on_expired_record_is_not_found,
            create_over_expired_record_succeeds,
            write_with_past_expiry_is_invisible,
            list_keys_leaves_out_expired_and_deleted_keys,
            concurrent_cas_exactly_one_wins,
            concurrent_cas_counter_is_exact,
            wait_on_missing_key_is_not_found_at_once,
            wait_with_differing_version_returns_at_once,
            wait_is_woken_by_put,
            wait_is_woken_by_put_many,
            wait_is_woken_by_cas,
            wait_is_woken_by_delete_with_not_found,
            wait_is_woken_by_expiry_with_not_found,
            many_waiters_are_all_woken_by_one_put,
            cancelled_wait_leaves_the_store_working,
            many_cancelled_waits_then_a_real_wait_is_woken,
            list_glob_star_matches_any_run_including_slashes,
            list_glob_question_mark_matches_one_character,
            list_glob_class_matches_listed_characters,
            list_glob_range_matches_inclusive_ranges,
            list_glob_negated_class_excludes_characters,
            list_glob_alternatives_match_any_branch,
            list_glob_escapes_match_literally,
            list_exact_pattern_matches_one_key,
            list_keys_in_ascending_byte_order,
            list_keys_streams_thousands_of_keys_in_order,
            list_keys_with_bad_pattern_is_invalid_pattern,
            empty_key_is_invalid_on_every_operation,
            too_long_key_is_invalid_on_every_operation,
            key_of_1024_bytes_works_everywhere,
            unicode_keys_round_trip,
            unusual_keys_round_trip,
            binary_values_round_trip,
            empty_value_round_trips,
            large_value_round_trips,
            close_makes_every_call_closed,
            close_makes_empty_batches_closed,
            close_releases_a_blocked_waiter,
            close_releases_concurrent_callers,
            list_stream_opened_before_close_completes_or_fails,
            a_woken_waiter_reads_the_write_that_woke_it,
            a_waiter_woken_by_a_delete_reads_not_found,
            a_write_signalled_to_another_task_is_read_there,
            get_many_is_never_torn_by_put_many,
            get_many_sees_puts_in_the_order_they_returned,
            a_get_after_a_listing_agrees_with_it,
            concurrent_histories_are_linearizable,
        );
    };
    ($factory:expr, $($option:tt)+) => {
        $crate::conformance_tests!($factory);
        $crate::conformance_tests!(@option ($factory) () () () $($option)+);
    };
}
