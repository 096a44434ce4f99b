//! Compile and match times of expensive and hostile glob patterns (issue 8).
//!
//! `cargo run --release -p store-core --example glob_cost`
//!
//! Prints figures only: timing goals belong in the benchmark program, never in a test.

use std::time::{Duration, Instant};

use store_core::Pattern;

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

fn report(name: &str, pattern: &str, keys: &[String]) {
    let (compiled, compile) = time(|| Pattern::new(pattern));
    let compiled = match compiled {
        Ok(compiled) => compiled,
        Err(error) => {
            let shown: String = error.to_string().chars().take(100).collect();
            println!(
                "{name:<34} {:>9} B  rejected in {compile:>10.2?}: {shown}",
                pattern.len()
            );
            return;
        }
    };
    let bytes: usize = keys.iter().map(String::len).sum();
    let ((matched, steps), elapsed) = time(|| {
        keys.iter().fold((0usize, 0u64), |(n, s), key| {
            let (m, cost) = compiled.matches_with_steps(key);
            (n + usize::from(m), s + cost)
        })
    });
    println!(
        "{name:<34} {:>9} B  compile {compile:>10.2?}  match {} keys / {} MB in {elapsed:>10.2?} \
         ({:.2} ns/byte, {:.2} steps/byte, bound {}/byte), {matched} matched",
        pattern.len(),
        keys.len(),
        bytes / 1_000_000,
        elapsed.as_nanos() as f64 / bytes as f64,
        steps as f64 / bytes as f64,
        compiled.cost_per_byte(),
    );
}

fn main() {
    // The keys: 4,096 keys of 4,000 bytes, nearly all `a`.
    let big: Vec<String> = (0..4096u32)
        .map(|i| format!("k{}{}", "a".repeat(3998), char::from(b'a' + (i % 26) as u8)))
        .collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut random = |n: usize| -> String {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if seed & 1 == 0 {
                    'a'
                } else {
                    'b'
                }
            })
            .collect()
    };
    let random_keys: Vec<String> = (0..1024).map(|_| random(4000)).collect();

    report(
        "k*a*a*a*a*a*a*a*a*a*ab (22 B)",
        "k*a*a*a*a*a*a*a*a*a*ab",
        &big,
    );
    report("k(*a)x30 b (62 B)", &format!("k{}b", "*a".repeat(30)), &big);
    report(
        "*a + 12 ? (cache thrash)",
        &format!("*a{}", "?".repeat(12)),
        &random_keys,
    );
    report(
        "*a + 200 ? (big states)",
        &format!("*a{}", "?".repeat(200)),
        &random_keys,
    );
    report(
        "*a + 2000 ? (huge states)",
        &format!("*a{}", "?".repeat(2000)),
        &random_keys[..64],
    );
    let unit = "{[!a-z],?}*";
    report(
        "{[!a-z],?}* to the limit",
        &unit.repeat(store_core::MAX_PATTERN_LEN / unit.len()),
        &big[..256],
    );
    let facade = format!(
        "{}{}*{}",
        Pattern::escape("db/table/"),
        Pattern::escape(&"[".repeat(4096)),
        Pattern::escape(&"}".repeat(4096))
    );
    report("facade prefix*suffix, 4 KiB each", &facade, &big[..256]);
    report(
        "8,000 nested groups",
        &format!("{}x{}", "{".repeat(8000), "}".repeat(8000)),
        &big,
    );
    report("5 MB pattern", &"a*".repeat(2_500_000), &big);
}
