//! Recovery over store directories built from the input: well-formed frames then damage,
//! or a valid header followed by raw bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    store_file::fuzzing::recover(data);
});
