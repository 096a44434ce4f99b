//! `conformance_tests!`: one `#[test]` per case, for any backend or layer.

/// Expands into one `#[test]` function per conformance case, each running that case (through
/// [`testkit::run`](crate::testkit::run)) on a fresh store from `factory`.
///
/// `factory` is any expression callable as `(factory)().await` that yields a [`Storage`](crate::Storage):
/// a closure such as `|| async { MemoryStorage::new() }`, or the path of an `async fn`. It is
/// called once per test, inside that test's tokio runtime. Put each invocation in its own
/// module, since the generated functions are named after the cases.
///
/// ```
/// /// The backend under test (here: a tiny engine run by the store-core actor runtime).
/// async fn new_store() -> store_core::runtime::ActorHandle {
///     store_core::runtime::spawn(store_core::__private::DocEngine::default(), Default::default())
/// }
///
/// // In tests/conformance.rs: one #[test] per case, e.g. `plain::put_many_later_duplicates_win`.
/// mod plain {
///     store_core::conformance_tests!(super::new_store);
/// }
/// mod namespaced {
///     store_core::conformance_tests!(|| async {
///         store_core::Namespaced::new(super::new_store().await, "tenant").unwrap()
///     });
/// }
///
/// # fn main() {
/// // A single case can also be run by hand:
/// store_core::testkit::run(|| async {
///     store_core::testkit::cas_matching_version_stores_with_a_new_version(new_store().await).await;
/// });
/// # }
/// ```
#[macro_export]
macro_rules! conformance_tests {
    (@single ($factory:expr) $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::run(|| async {
                    let store = ($factory)().await;
                    $crate::testkit::$case(store).await;
                });
            }
        )*
    };
    ($factory:expr $(,)?) => {
        $crate::conformance_tests!(@single ($factory)
            create_stores_a_new_record,
            create_on_live_key_is_already_exists,
            create_ignores_the_given_version,
            create_after_delete_succeeds,
            get_missing_key_is_not_found,
            get_many_is_positional,
            put_stores_and_returns_the_record,
            put_replaces_value_and_expiry,
            put_many_stores_every_record,
            put_many_later_duplicates_win,
            put_many_with_an_invalid_key_stores_nothing,
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
        );
    };
}
