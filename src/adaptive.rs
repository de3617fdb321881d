//! Falling back to one thread while the machine is oversubscribed.
//!
//! A parallel layer ends when its last task does. When another busy process
//! shares the cores ([`crate::ResNet50::threads`] threads plus one more
//! runnable process on as many cores), the OS preempts one of our threads for
//! a time slice (milliseconds, against layers of 0.1–3 ms) in the middle of a
//! task no one else can take over, and the others wait at the layer's end; or
//! it preempts the thread that publishes the layers, while a helper spins.
//! Measured on the 2-core Zen 4 VM with `yes > /dev/null` beside a v1 batch-1
//! inference: two threads took 43–111 ms (median 61), one thread 50–59 ms
//! (median 54); the inferences where the publishing thread waited for a helper
//! spent 15–46 ms of it waiting. One thread shares the cores with the other
//! process without waiting for anyone. Results are bit-identical at any thread
//! count (no kernel splits a reduction between threads), so a session may
//! switch between them inference by inference.
//!
//! [`ThreadChooser`] decides per inference, from what it measured, with no
//! clock or system query of its own (and nothing allocated):
//! - on the model's threads, an inference is *stalled* when the publishing
//!   thread waited at layer ends for more than [`STALL_WAIT`] of its time, or
//!   it took more than [`STALL_SLOWER`] times the fastest of the last eight;
//!   after [`STALLS_TO_PROBE`] stalled inferences among the last eight, it runs
//!   one inference on one thread (a *probe*) and stays there if that took less
//!   than [`TO_ONE`] times the mean of the last eight (the mean, because the
//!   stalls are a long tail: 60 ms typical, 100 ms one time in three);
//!   it also probes one thread after [`MIN_GAP`], then 2, 4, … times as many
//!   inferences (up to [`MAX_EXPLORE_GAP`]), stalls or not: when the load was
//!   there from the first inference, nothing is "slower than before" — two
//!   processes each running two threads on two cores took 104 ms per
//!   inference from the start, and one of them on one thread took 61;
//! - on one thread, every `gap` inferences it probes the model's threads again
//!   and goes back if they took less than [`TO_MANY`] times one thread's recent
//!   median (a single inference against a median: the margin keeps one lucky
//!   inference from switching back into the stalls).
//!
//! A probe that loses doubles the gap before the next one (from [`MIN_GAP`] up
//! to [`MAX_GAP`] inferences), so an idle machine pays for six one-thread
//! inferences in its first thousand and one per [`MAX_EXPLORE_GAP`] after, and
//! a busy one tries the threads again within [`MAX_GAP`] inferences after the
//! load goes away.

/// Waiting at layer ends for more than this fraction of an inference is a stall.
pub(crate) const STALL_WAIT: f64 = 0.2;
/// An inference this many times slower than the fastest recent one is a stall.
pub(crate) const STALL_SLOWER: f64 = 1.5;
/// Stalled inferences among the last eight before a probe of one thread.
pub(crate) const STALLS_TO_PROBE: u32 = 3;
/// A probe of one thread wins below this fraction of the threads' recent mean.
pub(crate) const TO_ONE: f64 = 0.95;
/// A probe of the model's threads wins below this fraction of one thread's
/// recent median.
pub(crate) const TO_MANY: f64 = 0.85;
/// Inferences between probes after a switch.
pub(crate) const MIN_GAP: u32 = 8;
/// Most inferences between probes triggered by stalls, or between probes of
/// the model's threads.
pub(crate) const MAX_GAP: u32 = 64;
/// Most inferences between probes of one thread without stalls.
pub(crate) const MAX_EXPLORE_GAP: u32 = 1024;

/// The last `N` latencies, in seconds.
#[derive(Clone, Debug)]
struct Window<const N: usize> {
    v: [f64; N],
    len: usize,
    next: usize,
}

impl<const N: usize> Window<N> {
    const fn new() -> Self {
        Window { v: [0.0; N], len: 0, next: 0 }
    }

    fn push(&mut self, x: f64) {
        self.v[self.next] = x;
        self.next = (self.next + 1) % N;
        self.len = (self.len + 1).min(N);
    }

    fn clear(&mut self) {
        self.len = 0;
        self.next = 0;
    }

    fn mean(&self) -> f64 {
        if self.len == 0 {
            return f64::INFINITY;
        }
        self.v[..self.len].iter().sum::<f64>() / self.len as f64
    }

    fn min(&self) -> f64 {
        self.v[..self.len].iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// The median (the upper one of an even count); `+∞` when empty.
    fn median(&self) -> f64 {
        if self.len == 0 {
            return f64::INFINITY;
        }
        let mut s = self.v;
        let s = &mut s[..self.len];
        s.sort_unstable_by(f64::total_cmp);
        s[self.len / 2]
    }
}

/// Chooses between the model's threads and one thread, inference by
/// inference (see the module documentation).
#[derive(Clone, Debug)]
pub(crate) struct ThreadChooser {
    threads: usize,
    /// Running on one thread (probing the model's threads now and then).
    on_one: bool,
    /// The inference just chosen is a probe of the other mode.
    probing: bool,
    /// Recent latencies on the model's threads, and on one.
    many: Window<8>,
    one: Window<8>,
    /// The last eight inferences on the model's threads: bit set = stalled.
    stalls: u8,
    /// Inferences before the next probe may run.
    cooldown: u32,
    /// The cooldown after a probe that lost.
    gap: u32,
    /// Inferences on the model's threads since the last probe, and how many
    /// make a probe without stalls.
    since_probe: u32,
    explore_gap: u32,
}

impl ThreadChooser {
    pub(crate) const fn new(threads: usize) -> Self {
        ThreadChooser {
            threads,
            on_one: false,
            probing: false,
            many: Window::new(),
            one: Window::new(),
            stalls: 0,
            cooldown: 0,
            gap: MIN_GAP,
            since_probe: 0,
            explore_gap: MIN_GAP,
        }
    }

    /// The thread count for the next inference.
    pub(crate) fn next(&mut self) -> usize {
        self.cooldown = self.cooldown.saturating_sub(1);
        let explore = self.since_probe >= self.explore_gap;
        self.probing = self.cooldown == 0 && (self.on_one || explore || self.stalls.count_ones() >= STALLS_TO_PROBE);
        if self.on_one != self.probing {
            1
        } else {
            self.threads
        }
    }

    /// What the inference [`next`](Self::next) chose measured: `seconds` in
    /// all, `waited` of them at layer ends for helpers.
    pub(crate) fn observe(&mut self, threads: usize, seconds: f64, waited: f64) {
        if self.threads <= 1 {
            return;
        }
        let probed = std::mem::take(&mut self.probing);
        if threads == 1 {
            self.one.push(seconds);
            if probed {
                self.decide(seconds < TO_ONE * self.many.mean());
            }
            return;
        }
        if probed {
            let won = seconds < TO_MANY * self.one.median();
            if won {
                // What the threads did before the switch says little now.
                self.many.clear();
            }
            self.many.push(seconds);
            self.decide(won);
            return;
        }
        let stalled = self.many.len >= 4 && (waited > STALL_WAIT * seconds || seconds > STALL_SLOWER * self.many.min());
        self.many.push(seconds);
        self.stalls = self.stalls << 1 | stalled as u8;
        self.since_probe = self.since_probe.saturating_add(1);
    }

    /// After a probe: switch modes when it `won`, else wait longer before the next.
    fn decide(&mut self, won: bool) {
        if won {
            self.on_one = !self.on_one;
            self.gap = MIN_GAP;
        } else {
            self.gap = (self.gap * 2).min(MAX_GAP);
            if !self.on_one {
                self.explore_gap = (self.explore_gap * 2).min(MAX_EXPLORE_GAP);
            }
        }
        self.stalls = 0;
        self.since_probe = 0;
        self.cooldown = self.gap;
    }

    /// Whether the session runs on one thread for now.
    #[cfg(test)]
    fn on_one(&self) -> bool {
        self.on_one
    }

    /// A chooser that has fallen back to one thread and never probes (tests
    /// of the fallback's outputs).
    #[cfg(test)]
    pub(crate) fn stuck_on_one(threads: usize) -> Self {
        ThreadChooser { on_one: true, cooldown: u32::MAX, ..ThreadChooser::new(threads) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `n` inferences whose time and wait on `threads` come from `cost`;
    /// returns the thread count each one ran on.
    fn drive(c: &mut ThreadChooser, n: usize, cost: impl Fn(usize, usize) -> (f64, f64)) -> Vec<usize> {
        (0..n)
            .map(|i| {
                let t = c.next();
                let (s, w) = cost(i, t);
                c.observe(t, s, w);
                t
            })
            .collect()
    }

    /// A quiet machine: two threads 30 ms (±10 %), one thread 54.
    fn quiet(i: usize, t: usize) -> (f64, f64) {
        let jitter = 1.0 + 0.1 * ((i * 7919) % 11) as f64 / 10.0;
        if t == 1 {
            (0.054 * jitter, 0.0)
        } else {
            (0.030 * jitter, 0.0015)
        }
    }

    /// Another busy process: two threads 55–110 ms with long waits, one 56.
    fn busy(i: usize, t: usize) -> (f64, f64) {
        if t == 1 {
            (0.056, 0.0)
        } else if i.is_multiple_of(3) {
            (0.105, 0.0)
        } else {
            (0.060, 0.025)
        }
    }

    #[test]
    fn a_quiet_machine_stays_on_its_threads() {
        let mut c = ThreadChooser::new(2);
        let used = drive(&mut c, 1000 + 2 * MAX_EXPLORE_GAP as usize, quiet);
        // Probes of one thread after 8, 16, 32, … 1024 inferences on two;
        // each loses.
        let ones: Vec<usize> = used.iter().enumerate().filter(|&(_, &t)| t == 1).map(|(i, _)| i).collect();
        assert_eq!(ones, [8, 25, 58, 123, 252, 509, 1022, 2047]);
        assert!(!c.on_one());
    }

    #[test]
    fn load_from_the_first_inference_is_found_by_exploring() {
        // Uniformly slow on two threads (no waits, nothing slower than the
        // first inferences), faster on one: the first exploring probe wins.
        let mut c = ThreadChooser::new(2);
        let used = drive(&mut c, 40, |_, t| if t == 1 { (0.061, 0.0) } else { (0.104, 0.002) });
        assert_eq!(used[MIN_GAP as usize], 1);
        assert!(c.on_one());
        assert!(used[MIN_GAP as usize..].iter().filter(|&&t| t == 2).count() <= 4);
    }

    #[test]
    fn an_oversubscribed_machine_falls_back_and_recovers() {
        let mut c = ThreadChooser::new(2);
        drive(&mut c, 20, quiet);
        // Load arrives: within a few inferences it runs on one thread, and
        // probes two ever more rarely.
        let used = drive(&mut c, 400, |i, t| busy(i + 20, t));
        let first_one = used.iter().position(|&t| t == 1).unwrap();
        assert!(first_one <= 8, "first probe after {first_one}");
        let switched = used.windows(4).position(|w| w.iter().all(|&t| t == 1)).unwrap();
        assert!(switched <= 40, "fell back after {switched}");
        assert!(c.on_one());
        let late_probes = used[200..].iter().filter(|&&t| t == 2).count();
        assert!(late_probes <= 200 / MAX_GAP as usize + 1, "{late_probes} probes in 200");
        // Load goes away: back on two threads within one gap, and stays.
        let used = drive(&mut c, 300, quiet);
        let back = used.iter().position(|&t| t == 2).unwrap();
        assert!(back <= MAX_GAP as usize, "back after {back}");
        assert!(!c.on_one());
        // Only the exploring probes, ever rarer, each losing.
        let ones: Vec<usize> = (back..used.len()).filter(|&i| used[i] == 1).collect();
        assert!(ones.len() <= 4 && ones.windows(2).all(|w| w[1] - w[0] > MAX_GAP as usize), "{ones:?}");
    }

    #[test]
    fn a_slow_phase_that_slows_one_thread_too_does_not_switch() {
        // Everything 2× slower for a while (the host, not our threads): probes
        // of one thread lose, and become rarer.
        let mut c = ThreadChooser::new(2);
        drive(&mut c, 20, quiet);
        let used = drive(&mut c, 500, |i, t| {
            let (s, w) = quiet(i, t);
            (2.0 * s, w)
        });
        assert!(!c.on_one());
        // The exploring probes (6 in the first 500) and at most two for stalls.
        assert!(used.iter().filter(|&&t| t == 1).count() <= 8);
        assert!(used.windows(2).all(|w| w != [1, 1]));
    }

    #[test]
    fn one_thread_models_never_change() {
        let mut c = ThreadChooser::new(1);
        assert!(drive(&mut c, 100, busy).iter().all(|&t| t == 1));
    }

    #[test]
    fn window_median_and_min() {
        let mut w = Window::<4>::new();
        assert_eq!(w.median(), f64::INFINITY);
        for x in [5.0, 1.0, 4.0, 2.0, 3.0] {
            w.push(x);
        }
        // The last four: 1, 4, 2, 3.
        assert_eq!((w.min(), w.median(), w.mean(), w.len), (1.0, 3.0, 2.5, 4));
        w.clear();
        assert_eq!(w.min(), f64::INFINITY);
    }
}
