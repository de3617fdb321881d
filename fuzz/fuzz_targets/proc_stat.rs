//! The `/proc/stat` parser behind `resnet50 bench`'s steal time on arbitrary
//! text: `None`, never a panic; a parsed reading gives a steal share in 0..=100.
#![no_main]
use libfuzzer_sys::fuzz_target;
use resnet50::steal::{parse_cpu_ticks, steal_percent};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(now) = parse_cpu_ticks(&text) {
        if let Some(p) = steal_percent(Some((0, 0)), Some(now)) {
            assert!((0.0..=100.0).contains(&p), "steal {p} % from {now:?}");
        }
    }
});
