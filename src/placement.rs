//! Core-to-core latency: how far apart the CPUs the threads run on are, from
//! two threads handing a cache line back and forth.
//!
//! `resnet50 bench` reports it before and after its timed loop (and
//! `bench/compare/compare.py` for every round of ours): on a shared VM it tells
//! apart the host's placements of the virtual CPUs, which [`crate::steal`]
//! does not see. Measured on the 2-vCPU Zen 3 VM these benchmarks run on
//! (stop 45): 30–60 ns one way while both vCPUs sat on one core complex, and
//! 190–260 ns for stretches of seconds to minutes when the second one ran
//! elsewhere, during which one thread on the second vCPU took 73 ms for a v1
//! inference against 62 ms on the first, and two threads 33–35 ms against
//! 30–31 ms: a two-thread round is only comparable with rounds of the same
//! placement.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a probe may take, at most: on two CPUs of one machine it takes
/// 1–5 ms; where its two threads share one CPU (a single CPU, or a busy
/// machine) each handoff waits for a time slice, and it gives up.
const PROBE_WITHIN: Duration = Duration::from_millis(250);

/// The one-way latency of a handoff between two threads, in nanoseconds:
/// the median over `batches` batches of `round_trips` round trips through
/// one atomic (half a round trip each). The threads are not pinned, so it
/// measures wherever the OS runs them: on an idle machine with two CPUs,
/// one on each. `None` when the second thread cannot be started, or the
/// probe does not end within 250 ms (its threads did not run side by side:
/// one CPU, or a busy machine, where no figure is meaningful).
pub fn core_to_core_ns(round_trips: u32, batches: u32) -> Option<f64> {
    let (round_trips, batches) = (round_trips.max(1), batches.max(1));
    let flag = Arc::new(AtomicU32::new(0));
    let total = round_trips.checked_mul(batches)?.checked_mul(2)?;
    let deadline = Instant::now() + PROBE_WITHIN;
    let other = {
        let flag = flag.clone();
        // The answering side: every odd value is answered with the next even
        // one, until the last; it gives up when the asker stops (u32::MAX)
        // or the time is up.
        std::thread::Builder::new()
            .name("core-to-core".into())
            .spawn(move || {
                let mut want = 1;
                while want < total {
                    match wait_for(&flag, want, deadline) {
                        Some(()) => flag.store(want + 1, Ordering::Release),
                        None => return,
                    }
                    want += 2;
                }
            })
            .ok()?
    };
    let mut per_batch = Vec::with_capacity(batches as usize);
    let mut next = 1;
    let result = (|| {
        for _ in 0..batches {
            let t = Instant::now();
            for _ in 0..round_trips {
                flag.store(next, Ordering::Release);
                wait_for(&flag, next + 1, deadline)?;
                next += 2;
            }
            per_batch.push(t.elapsed().as_nanos() as f64 / f64::from(round_trips) / 2.0);
        }
        per_batch.sort_by(f64::total_cmp);
        Some(per_batch[per_batch.len() / 2])
    })();
    if result.is_none() {
        flag.store(u32::MAX, Ordering::Release);
    }
    let _ = other.join();
    result
}

/// Spins until `flag` holds `want` (`Some`), or gives up at `deadline` or
/// when it holds `u32::MAX` (`None`).
fn wait_for(flag: &AtomicU32, want: u32, deadline: Instant) -> Option<()> {
    let mut spins = 0u32;
    loop {
        let v = flag.load(Ordering::Acquire);
        if v == want {
            return Some(());
        }
        if v == u32::MAX {
            return None;
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        // Read the clock only now and then: a probe that answers in
        // nanoseconds must not be timed by the deadline's own checks.
        if spins.is_multiple_of(1 << 10) && Instant::now() > deadline {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_measures_a_positive_latency_or_says_it_cannot() {
        // On a machine with one CPU (or a busy one) the second thread may not
        // answer in time; then there is no figure, never a made-up one.
        if let Some(ns) = core_to_core_ns(2000, 3) {
            assert!(ns.is_finite() && ns > 0.0 && ns < 1e6, "{ns} ns");
        }
    }

    #[test]
    fn an_asker_whose_partner_never_answers_gives_up() {
        let flag = AtomicU32::new(0);
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(wait_for(&flag, 1, deadline), None);
        assert!(Instant::now() >= deadline);
        let later = Instant::now() + PROBE_WITHIN;
        flag.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(wait_for(&flag, 3, later), None);
        flag.store(3, Ordering::Relaxed);
        assert_eq!(wait_for(&flag, 3, later), Some(()));
    }

    #[test]
    fn a_probe_whose_threads_share_one_cpu_ends_in_time() {
        // One round trip per time slice at best when the two threads share a
        // CPU; on two idle CPUs it is over in milliseconds. Either way it
        // returns by the deadline (plus a slice or two).
        let t = Instant::now();
        let _ = core_to_core_ns(1_000_000, 5);
        assert!(t.elapsed() < PROBE_WITHIN + Duration::from_millis(200), "{:?}", t.elapsed());
    }
}
