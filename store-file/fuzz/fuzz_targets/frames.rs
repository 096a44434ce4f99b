//! The frame decoder and scanner over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    store_file::fuzzing::decode(data);
});
