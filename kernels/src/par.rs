//! The task runner shared by every parallel kernel, and the thread team that
//! lets a whole inference hand out work without waking threads.
//!
//! A kernel splits its output into `tasks` disjoint pieces whose arithmetic
//! does not depend on who computes them, so results are identical whatever
//! the scheduling. `workers` workers each own one scratch slot and one
//! contiguous range of the tasks (worker `w` of `W`: tasks
//! `[tasks·w/W, tasks·(w+1)/W)`), which it runs front to back; a worker whose
//! range is spent takes tasks from the back of the others' ranges.
//!
//! **Why ranges.** Kernels number their tasks so that neighbouring tasks
//! touch neighbouring data (Winograd tile blocks in image order), and the
//! GEMMs around a Winograd layer give each worker one contiguous band of
//! pixel rows. With a shared counter a layer's tile blocks alternated
//! between the cores, so each core read half its input from the other
//! core's caches and left half its output there; with ranges each core
//! works on the rows it wrote, and reads them back in the next layer.
//! Measured on the 2-core Zen 4 VM by alternating the two schedules per
//! inference in one process (v1 and v1.5, batch 1, 2 threads, 40 + 40
//! inferences per run; each run classed by the core-to-core latency measured
//! before and after it): 1.4 % faster when the two vCPUs sat on different
//! core complexes (≈ 170 ns one way; 5 runs), unchanged when they shared one
//! (≈ 30 ns; 31 runs). Stealing from the back keeps the shared counter's
//! balance when a worker starts late or is preempted.
//!
//! **Why a team.** A ResNet50 inference calls about 55 parallel kernels of
//! 0.2–3 ms each. Started as rayon jobs, each kernel's second worker must be
//! woken from sleep (rayon parks idle threads after a few µs): measured on a
//! 2-core VM, 16–49 µs before it takes its first task, each time — 2–5 % of a
//! 2-thread batch-1 inference. Inside a team the other `threads − 1`
//! workers are started once and spin between kernels; a kernel run on the
//! team's thread publishes its tasks and the spinning helpers join within a
//! few hundred nanoseconds. [`Helpers::with_team_stats`] runs the team on the
//! calling thread with threads of its own (what a model uses, see there for
//! why); [`with_team`] runs it on a thread of the current rayon pool with
//! rayon jobs as helpers (kernel benches and tests). Outside a team (or a
//! kernel called from another thread) `run_tasks` falls back to plain rayon
//! jobs.
//!
//! **Splits in proportion.** A GEMM split into one row range per worker
//! (each range streams all the weights, so finer tasks cost more than they
//! balance: `gemm::loops::split`), or into one range of column tiles per
//! worker (each streams its part of the weights and reads all of A), cannot
//! be rebalanced by stealing when one core runs slower. `run_split` sizes
//! the owner's range of such a job to the two threads' speeds measured on
//! the previous ones (a two-thread team only; equal ranges elsewhere).
//!
//! **Protocol.** One control word holds the job generation, an OPEN bit, how
//! many helpers joined this job (their slot numbers) and how many are still
//! inside it. The owner writes the job, then opens it (release); a helper joins
//! by a compare-exchange that requires OPEN and a free slot (acquire), works,
//! and leaves with a release decrement. The owner, once every task range is
//! spent, clears OPEN — no one can join after that — and waits until no helper
//! is inside before it returns (or unwinds): the job borrows the kernel's
//! closure and scratch, which must outlive every helper that uses them.

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

// Control word: active helpers (bits 0..12), joined helpers = next slot
// (12..24), helper cap for this job (24..36), OPEN (36), generation (37..).
const ACTIVE_ONE: u64 = 1;
const JOINED_SHIFT: u32 = 12;
const CAP_SHIFT: u32 = 24;
const FIELD: u64 = (1 << 12) - 1;
const OPEN: u64 = 1 << 36;
const GEN_SHIFT: u32 = 37;

/// Most helpers a team starts (the field width of the control word).
const MAX_HELPERS: usize = FIELD as usize;

/// Task ranges per job: workers beyond this share ranges (worker `w` starts
/// on range `w % MAX_RANGES`), still each task once.
const MAX_RANGES: usize = 64;

/// One worker's remaining tasks `[lo, hi)`, packed as `lo | hi << 32` so that
/// taking from the front (the worker itself) and from the back (a thief) are
/// single compare-exchanges on one word. One cache line each: the owner of a
/// range updates it once per task without disturbing the others.
#[repr(align(64))]
struct TaskRange(AtomicU64);

impl TaskRange {
    fn set(&self, lo: usize, hi: usize) {
        self.0.store(lo as u64 | (hi as u64) << 32, Ordering::Relaxed);
    }

    /// Takes the first remaining task (`front`) or the last.
    fn take(&self, front: bool) -> Option<usize> {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let (lo, hi) = (cur & 0xffff_ffff, cur >> 32);
            if lo >= hi {
                return None;
            }
            let (next, t) = if front { (cur + 1, lo) } else { (cur - (1 << 32), hi - 1) };
            match self.0.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(t as usize),
                Err(c) => cur = c,
            }
        }
    }
}

/// The task ranges of one job.
struct TaskRanges {
    r: [TaskRange; MAX_RANGES],
}

impl TaskRanges {
    const fn new() -> Self {
        TaskRanges { r: [const { TaskRange(AtomicU64::new(0)) }; MAX_RANGES] }
    }

    /// Deals `tasks` out to `workers` contiguous ranges (at most
    /// [`MAX_RANGES`]); returns how many ranges are in use.
    fn deal(&self, tasks: usize, workers: usize) -> usize {
        assert!(tasks < 1 << 32, "par: {tasks} tasks");
        let n = workers.clamp(1, MAX_RANGES);
        for (w, r) in self.r[..n].iter().enumerate() {
            r.set(tasks * w / n, tasks * (w + 1) / n);
        }
        n
    }

    /// Worker `w`'s loop over `n` ranges: its own range front to back, then
    /// the others' from the back, until every range is spent.
    fn work(&self, n: usize, w: usize, body: &Body<'_>, slot: &mut [f32]) {
        self.work_own(n, w, body, slot);
        self.steal(n, w, body, slot);
    }

    /// Worker `w`'s own range, front to back.
    fn work_own(&self, n: usize, w: usize, body: &Body<'_>, slot: &mut [f32]) {
        while let Some(t) = self.r[w % n].take(true) {
            body(t, slot);
        }
    }

    /// Worker `w` takes the others' tasks from the back until every range is
    /// spent; returns how many it took.
    fn steal(&self, n: usize, w: usize, body: &Body<'_>, slot: &mut [f32]) -> usize {
        let own = w % n;
        let mut stolen = 0;
        // Each pass steals one task from the first range (after ours) that
        // still has some; done when a pass finds them all empty.
        'steal: loop {
            for i in 1..n {
                if let Some(t) = self.r[(own + i) % n].take(false) {
                    body(t, slot);
                    stolen += 1;
                    continue 'steal;
                }
            }
            return stolen;
        }
    }
}

/// A kernel closure; the team stores it as `Body<'static>`, its lifetime
/// erased (see [`Team::run`]).
type Body<'a> = dyn Fn(usize, &mut [f32]) + Sync + 'a;

/// One published job: read by helpers only while they are counted active.
#[derive(Clone, Copy)]
struct Job {
    body: *const Body<'static>,
    /// Task ranges in use (see [`TaskRanges::deal`]).
    ranges: usize,
    scratch: *mut f32,
    per: usize,
    /// Time each worker's own range ([`run_split`]): helpers record theirs.
    timed: bool,
}

/// The shared state of one [`with_team`] call.
struct Team {
    ctl: AtomicU64,
    ranges: TaskRanges,
    shutdown: AtomicBool,
    job: UnsafeCell<Job>,
    /// What the owner saw ([`TeamStats`]; only the owner touches them).
    jobs: AtomicU32,
    helped: AtomicU32,
    waited_ns: AtomicU64,
    longest_ns: AtomicU64,
    /// For a timed job: when the helper joined and when it finished its own
    /// range (nanoseconds since `epoch`), and whether it then took tasks of
    /// the owner's range.
    epoch: std::time::Instant,
    helper_join_ns: AtomicU64,
    helper_own_ns: AtomicU64,
    helper_stole: AtomicBool,
}

/// What the owner of a [`with_team`] call saw: how many jobs it published and
/// how long it waited, after its own tasks were spent, for helpers still
/// inside a task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TeamStats {
    /// Jobs published on the team.
    pub jobs: u32,
    /// Of those, the jobs at least one helper joined (the others the owner
    /// ran alone: its helpers were not on a core, or every task was taken
    /// before they looked).
    pub helped: u32,
    /// Total time the owner waited at the end of jobs, in nanoseconds.
    pub waited_ns: u64,
    /// The longest of those waits, in nanoseconds.
    pub longest_wait_ns: u64,
}

// SAFETY: `job` is written only by the owner while the job is closed and no
// helper is active, and read by helpers only between a successful join and
// their leave (the control word orders both); the pointers it holds are used
// under the same rule (see `Team::run`).
unsafe impl Sync for Team {}

thread_local! {
    /// The team whose owner is this thread, while [`with_team`] runs here and
    /// no job of it is running (what `run_tasks` publishes to).
    static TEAM: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
    /// The team whose owner is this thread, for the whole [`with_team`] call.
    static OWNS: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` on the calling thread with `threads − 1` helpers (jobs of the
/// current rayon pool) spinning beside it until `f` returns: every parallel
/// kernel `f` calls on this thread shares its tasks with them without a wake-up.
/// The helpers burn their cores while `f` runs serial code, as any spinning
/// inference thread pool does; they stop when `f` returns or panics.
/// Allocates nothing. With `threads <= 1` it just calls `f`.
///
/// A helper the pool cannot start (its threads are busy) only means fewer
/// workers: no kernel waits for a helper that has not joined its job.
pub fn with_team<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    with_team_stats(threads, f).0
}

/// [`with_team`], also returning what the owner saw ([`TeamStats`]; all
/// zero when no team was started).
pub fn with_team_stats<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> (R, TeamStats) {
    let helpers = threads.saturating_sub(1).min(MAX_HELPERS);
    if helpers == 0 || !OWNS.get().is_null() {
        return (f(), TeamStats::default());
    }
    let team = Team::new();
    let (r, ()) = rayon::join(|| team.own(f), || start_helpers(&team, helpers));
    (r, team.stats())
}

/// Threads kept for one caller's teams: [`Helpers::with_team_stats`] runs
/// `f` on the *calling* thread with these threads helping, where
/// [`with_team`] moves `f` onto a rayon pool thread and starts the helpers
/// as rayon jobs.
///
/// **Why.** With a rayon pool, the caller hands the inference to a pool
/// thread and goes to sleep, and that thread wakes the other: two wake-ups
/// in a row while the caller is still on its way off its core. Linux often
/// queued the second pool thread on the first one's core (every core looked
/// busy at that instant), where it waited for the first one's time slice to
/// end before the scheduler moved it: measured on the 2-core Zen 4 VM, with
/// the caller busy for 60 ms before each inference (as an application that
/// decodes an image first), the helper joined 1–4 ms late in most
/// inferences, and stage 1–2 ran at one thread's speed (v1.5: 37.9 ms
/// instead of 32.0); even back to back, one inference in 20 lost ~3.5 ms.
/// Here the caller, already on its core, stays there as the owner and only
/// the helpers are woken — onto the other, idle cores.
///
/// Between teams a helper spins for [`Helpers::LINGER`] (so back-to-back
/// inferences wake no one), then parks until the next team opens. One team
/// at a time: a caller that finds another caller's team open runs its own
/// kernels alone (as a rayon pool whose threads are all busy would). Dropping
/// the `Helpers` stops and joins its threads. Nothing is allocated per team.
pub struct Helpers {
    door: Arc<Door>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What the owner of a [`Helpers`] team and its helpers share.
struct Door {
    /// The open team, or null: helpers use the team only while counted in
    /// `inside` *and* after seeing it still open (see `Helpers::with_team_stats`).
    team: AtomicPtr<Team>,
    /// Helpers counted in (some only until they see they are not needed).
    inside: AtomicUsize,
    /// Helpers the open team wants (its `threads − 1`).
    wanted: AtomicUsize,
    /// Teams opened so far: a helper does not re-enter a team it has left.
    generation: AtomicU64,
    /// Held by the caller whose team uses the door.
    busy: AtomicBool,
    /// Set when the `Helpers` is dropped.
    quit: AtomicBool,
    /// A kernel panicked on a helper during the open team.
    panicked: AtomicBool,
    /// Helper threads that have started (see `Helpers::new`).
    started: AtomicUsize,
}

impl std::fmt::Debug for Helpers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helpers").field("threads", &self.threads.len()).finish()
    }
}

impl Helpers {
    /// How long a helper spins after a team before it parks: back-to-back
    /// inferences (a few µs apart) keep their helpers on their cores; a
    /// caller that works for longer between them finds the helpers parked
    /// and wakes them (tens of µs on an idle vCPU).
    pub const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

    /// Starts `n` helper threads named `{name}-1`, `{name}-2`, …
    pub fn new(n: usize, name: &str) -> std::io::Result<Helpers> {
        let door = Arc::new(Door {
            team: AtomicPtr::new(std::ptr::null_mut()),
            inside: AtomicUsize::new(0),
            wanted: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            quit: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            started: AtomicUsize::new(0),
        });
        let mut helpers = Helpers { door, threads: Vec::with_capacity(n) };
        for i in 1..=n.min(MAX_HELPERS) {
            let door = helpers.door.clone();
            // On an error, `helpers` drops here and stops those already started.
            let t = std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || helper_main(&door))?;
            helpers.threads.push(t);
        }
        // Return only once every thread runs its loop: a thread's start-up
        // in std allocates (its handle, thread-local destructors), and a
        // helper first scheduled during an inference would do that inside
        // `predict` (a loaded CI machine once showed 2 allocations there).
        while helpers.door.started.load(Ordering::Acquire) < helpers.threads.len() {
            std::thread::yield_now();
        }
        Ok(helpers)
    }

    /// Helper threads.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Whether there are no helper threads.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// [`with_team_stats`] with `f` on the calling thread and up to
    /// `threads − 1` of these helpers. With `threads <= 1`, on a thread that
    /// already owns a team, or without helpers, just calls `f`.
    pub fn with_team_stats<R>(&self, threads: usize, f: impl FnOnce() -> R) -> (R, TeamStats) {
        let wanted = threads.saturating_sub(1).min(self.threads.len());
        if wanted == 0 || !OWNS.get().is_null() {
            return (f(), TeamStats::default());
        }
        let team = Team::new();
        let door = &*self.door;
        if door.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            // Another caller's team holds the helpers: this one runs alone
            // (its kernels still publish to its team, which no one joins).
            let r = team.own(f);
            return (r, team.stats());
        }
        /// Closes the door and waits until no helper is inside (they then
        /// no longer touch `team`), also when `f` panics; then frees it.
        struct Close<'a>(&'a Door);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                self.0.team.store(std::ptr::null_mut(), Ordering::SeqCst);
                while self.0.inside.load(Ordering::SeqCst) != 0 {
                    std::hint::spin_loop();
                }
                self.0.busy.store(false, Ordering::Release);
            }
        }
        door.wanted.store(wanted, Ordering::Relaxed);
        door.generation.fetch_add(1, Ordering::Relaxed);
        door.team.store(std::ptr::from_ref(&team).cast_mut(), Ordering::SeqCst);
        let close = Close(door);
        for t in &self.threads[..wanted] {
            t.thread().unpark();
        }
        // `own` tells the helpers inside to leave (shutdown) when `f` ends;
        // `close` then waits for them before `team` goes out of scope.
        let r = team.own(f);
        drop(close);
        // The helpers' stores happened before their `inside` decrements,
        // which the close's wait read.
        if door.panicked.swap(false, Ordering::Relaxed) {
            panic!("par: a kernel panicked on a helper thread");
        }
        (r, team.stats())
    }
}

impl Drop for Helpers {
    fn drop(&mut self) {
        self.door.quit.store(true, Ordering::SeqCst);
        for t in &self.threads {
            t.thread().unpark();
        }
        for t in self.threads.drain(..) {
            // A helper that panicked has nothing more to say here.
            let _ = t.join();
        }
    }
}

/// A [`Helpers`] thread: helps each team it is let into, spins
/// [`Helpers::LINGER`] after it, then parks until the door changes.
fn helper_main(door: &Door) {
    // The handle that `park` needs, fetched before counting as started.
    let _ = std::thread::current();
    door.started.fetch_add(1, Ordering::Release);
    let mut left = u64::MAX; // the generation of the team last seen through
    let mut since = std::time::Instant::now();
    let mut spins = 0u32;
    while !door.quit.load(Ordering::Acquire) {
        let p = door.team.load(Ordering::SeqCst);
        let generation = door.generation.load(Ordering::Relaxed);
        if p.is_null() || generation == left {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && since.elapsed() >= Helpers::LINGER {
                std::thread::park();
                since = std::time::Instant::now();
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        let n = door.inside.fetch_add(1, Ordering::SeqCst) + 1;
        // Counted in before checking the door again (both SeqCst): either
        // the owner's close sees us counted and waits, or we see it closed.
        let entered = door.team.load(Ordering::SeqCst) == p;
        if entered && n <= door.wanted.load(Ordering::Relaxed) {
            // SAFETY: the team is open and we are counted in: its owner
            // does not return from `with_team_stats` (and `team` stays alive)
            // until we have decremented `inside` below.
            let team = unsafe { &*p };
            // A kernel that panics on this thread: the owner re-raises it
            // once the team is closed (as `rayon::join` would); this thread
            // stays for the next teams.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| team.help())).is_err() {
                door.panicked.store(true, Ordering::Relaxed);
            }
        }
        door.inside.fetch_sub(1, Ordering::SeqCst);
        // Done with this team (or not wanted in it); a door that changed
        // meanwhile is looked at again.
        if entered {
            left = generation;
        }
        since = std::time::Instant::now();
    }
}

/// How long, in nanoseconds, the owner of the [`with_team`] call running on
/// this thread has waited so far for helpers still inside a task (the running
/// total of [`TeamStats::waited_ns`]); 0 outside a team. Read it before and
/// after a kernel to see how long that kernel's threads waited for each other.
pub fn team_waited_ns() -> u64 {
    let team = OWNS.get();
    if team.is_null() {
        return 0;
    }
    // SAFETY: OWNS is set only by `with_team` on this thread, to a team on its
    // stack, and cleared (by `Owner`'s drop) before that team is dropped.
    unsafe { (*team).waited_ns.load(Ordering::Relaxed) }
}

/// Runs `n` helper loops as rayon jobs: a join tree, so nothing is allocated.
fn start_helpers(team: &Team, n: usize) {
    if n <= 1 {
        team.help();
    } else {
        rayon::join(|| start_helpers(team, n / 2), || start_helpers(team, n - n / 2));
    }
}

impl Team {
    fn new() -> Team {
        Team {
            ctl: AtomicU64::new(0),
            ranges: TaskRanges::new(),
            shutdown: AtomicBool::new(false),
            job: UnsafeCell::new(Job {
                body: &|_: usize, _: &mut [f32]| {},
                ranges: 0,
                scratch: std::ptr::null_mut(),
                per: 0,
                timed: false,
            }),
            jobs: AtomicU32::new(0),
            helped: AtomicU32::new(0),
            waited_ns: AtomicU64::new(0),
            longest_ns: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            helper_join_ns: AtomicU64::new(0),
            helper_own_ns: AtomicU64::new(0),
            helper_stole: AtomicBool::new(false),
        }
    }

    /// Runs `f` on this thread as the team's owner: the kernels it calls
    /// publish their tasks to the team. Tells the helpers to stop when `f`
    /// returns or panics.
    fn own<R>(&self, f: impl FnOnce() -> R) -> R {
        /// Stops the helpers and unregisters the team, also when `f` panics.
        struct Owner<'a>(&'a Team);
        impl Drop for Owner<'_> {
            fn drop(&mut self) {
                TEAM.set(std::ptr::null());
                OWNS.set(std::ptr::null());
                self.0.shutdown.store(true, Ordering::Release);
            }
        }
        TEAM.set(self);
        OWNS.set(self);
        let _owner = Owner(self);
        f()
    }

    /// What the owner saw (once every helper has left).
    fn stats(&self) -> TeamStats {
        TeamStats {
            jobs: self.jobs.load(Ordering::Relaxed),
            helped: self.helped.load(Ordering::Relaxed),
            waited_ns: self.waited_ns.load(Ordering::Relaxed),
            longest_wait_ns: self.longest_ns.load(Ordering::Relaxed),
        }
    }
}

impl Team {
    /// A helper: joins each published job it sees, until shutdown.
    fn help(&self) {
        if std::ptr::eq(OWNS.get(), self) {
            // The owner itself popped a helper job nobody stole (it waits in
            // rayon only inside a job body, or once `f` is done): spinning
            // here would wait for itself.
            return;
        }
        let mut seen = u64::MAX;
        let mut idle = 0u32;
        while !self.shutdown.load(Ordering::Acquire) {
            let c = self.ctl.load(Ordering::Relaxed);
            let generation = c >> GEN_SHIFT;
            if c & OPEN == 0 || generation == seen {
                idle = idle.saturating_add(1);
                // Pure spinning for roughly the gap between two kernels, then
                // give the core away between checks (an oversubscribed
                // machine, or a long serial stretch of the owner).
                if idle < 1 << 14 {
                    for _ in 0..16 {
                        std::hint::spin_loop();
                    }
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            let joined = (c >> JOINED_SHIFT) & FIELD;
            if joined >= (c >> CAP_SHIFT) & FIELD {
                seen = generation; // every slot of this job is taken
                continue;
            }
            let joined_c = c + ACTIVE_ONE + (1 << JOINED_SHIFT);
            if self.ctl.compare_exchange_weak(c, joined_c, Ordering::Acquire, Ordering::Relaxed).is_err() {
                continue;
            }
            seen = generation;
            idle = 0;
            /// Leaves the job, also when the kernel body panics.
            struct Leave<'a>(&'a AtomicU64);
            impl Drop for Leave<'_> {
                fn drop(&mut self) {
                    self.0.fetch_sub(ACTIVE_ONE, Ordering::Release);
                }
            }
            let _leave = Leave(&self.ctl);
            // SAFETY: joined while OPEN with generation `gen`: the owner wrote
            // `job` before opening (release, paired with our acquire CAS) and
            // will not touch it, nor let `body` or `scratch` die, until we
            // leave (it waits for the active count to reach zero).
            let job = unsafe { *self.job.get() };
            let slot = joined as usize + 1;
            // SAFETY: slot numbers are unique within a job (the CAS counted
            // us) and below the job's worker count (cap = workers − 1), so
            // this `per`-float piece of the owner's `workers · per` scratch is
            // ours alone until we leave.
            let scratch = unsafe { std::slice::from_raw_parts_mut(job.scratch.add(slot * job.per), job.per) };
            // SAFETY: `body` outlives the job (above).
            let body = unsafe { &*job.body };
            // A timed job's records are stored before `_leave`'s release
            // decrement, which the owner's wait acquires.
            if job.timed {
                self.helper_join_ns.store(self.now_ns(), Ordering::Relaxed);
            }
            self.ranges.work_own(job.ranges, slot, body, scratch);
            if job.timed {
                self.helper_own_ns.store(self.now_ns(), Ordering::Relaxed);
            }
            let stolen = self.ranges.steal(job.ranges, slot, body, scratch);
            if job.timed {
                self.helper_stole.store(stolen > 0, Ordering::Relaxed);
            }
        }
    }

    /// Nanoseconds since the team started.
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Runs `body` over `tasks` on the owner thread (slot 0) and every helper
    /// that joins (slots 1..workers), returning once all of them are done.
    /// When `timed`, also returns how long the owner and the one helper took
    /// over their own ranges, `(owner_ns, helper_ns)` — when exactly one
    /// helper joined and neither took tasks of the other's range.
    fn run(
        &self,
        tasks: usize,
        workers: usize,
        scratch: &mut [f32],
        per: usize,
        body: &Body<'_>,
        timed: bool,
    ) -> Option<(u64, u64)> {
        debug_assert!(scratch.len() >= workers * per);
        // SAFETY (lifetime erasure): helpers use `body` and `scratch` only
        // while counted active, and `Close` below waits for that count to
        // reach zero before this function returns or unwinds.
        let body_static: *const Body<'static> =
            unsafe { std::mem::transmute::<&Body<'_>, &'static Body<'static>>(body) };
        // The previous job is closed and no helper is active (the previous
        // `run` waited), so no one reads the ranges or `job` now.
        let ranges = self.ranges.deal(tasks, workers);
        // SAFETY: as just said, no one reads `job` now.
        unsafe {
            *self.job.get() = Job { body: body_static, ranges, scratch: scratch.as_mut_ptr(), per, timed };
        }
        let generation = (self.ctl.load(Ordering::Relaxed) >> GEN_SHIFT) + 1;
        let cap = (workers - 1).min(MAX_HELPERS) as u64;
        self.ctl.store((generation << GEN_SHIFT) | OPEN | (cap << CAP_SHIFT), Ordering::Release);

        /// Closes the job and waits out its helpers, also on unwind.
        struct Close<'a>(&'a Team);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                let team = self.0;
                team.jobs.fetch_add(1, Ordering::Relaxed);
                // Acquire: the helpers' writes (their tasks' outputs) happen
                // before their release decrement.
                let c = team.ctl.fetch_and(!OPEN, Ordering::Acquire);
                if (c >> JOINED_SHIFT) & FIELD != 0 {
                    team.helped.fetch_add(1, Ordering::Relaxed);
                }
                if c & FIELD == 0 {
                    return;
                }
                // A helper is still inside a task: time the wait (the clock is
                // read only here, so an inference whose helpers are done in
                // time pays nothing for the statistics).
                let start = std::time::Instant::now();
                while team.ctl.load(Ordering::Acquire) & FIELD != 0 {
                    std::hint::spin_loop();
                }
                let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                team.waited_ns.fetch_add(ns, Ordering::Relaxed);
                team.longest_ns.fetch_max(ns, Ordering::Relaxed);
            }
        }
        let close = Close(self);
        let slot = &mut scratch[..per];
        let start = timed.then(|| self.now_ns());
        self.ranges.work_own(ranges, 0, body, slot);
        let owner_ns = start.map(|t| self.now_ns().saturating_sub(t));
        let stolen = self.ranges.steal(ranges, 0, body, slot);
        drop(close);
        let owner_ns = owner_ns?;
        // After the wait: the helper's records, stored before it left, are
        // visible (the wait acquired its release); the closed job's word
        // still counts the helpers that joined it.
        let joined = (self.ctl.load(Ordering::Relaxed) >> JOINED_SHIFT) & FIELD;
        if joined != 1 || stolen > 0 || self.helper_stole.load(Ordering::Relaxed) {
            return None;
        }
        let helper_ns =
            self.helper_own_ns.load(Ordering::Relaxed).saturating_sub(self.helper_join_ns.load(Ordering::Relaxed));
        Some((owner_ns, helper_ns))
    }
}

/// Runs `body(t, slot)` for every task `t < tasks`, each exactly once, on
/// `workers` workers; `slot` is the worker's own `per` floats of `scratch`
/// (empty when `per == 0`). One worker (or one task) runs inline on the
/// calling thread, in task order. On the owner thread of a [`with_team`] the
/// team's spinning helpers are the other workers; elsewhere, rayon jobs.
///
/// # Panics
/// If `scratch` is shorter than `workers · per` floats.
pub(crate) fn run_tasks<F>(tasks: usize, workers: usize, scratch: &mut [f32], per: usize, body: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    run_tasks_timed(tasks, workers, scratch, per, body, false);
}

/// [`run_tasks`]; with `timed`, on a team, also the owner's and the helper's
/// times over their own ranges (see `Team::run`).
fn run_tasks_timed<F>(
    tasks: usize,
    workers: usize,
    scratch: &mut [f32],
    per: usize,
    body: F,
    timed: bool,
) -> Option<(u64, u64)>
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let workers = workers.max(1).min(tasks.max(1));
    let need = workers * per;
    assert!(scratch.len() >= need, "par: scratch has {} floats, {workers} workers need {need}", scratch.len());
    let scratch = &mut scratch[..need];
    if workers == 1 {
        for t in 0..tasks {
            body(t, &mut scratch[..]);
        }
        return None;
    }
    let team = TEAM.get();
    if !team.is_null() {
        // Unregister while the job runs, so a nested call from `body` on this
        // thread takes the rayon path instead of re-publishing.
        TEAM.set(std::ptr::null());
        /// Re-registers the team, also on unwind.
        struct Restore(*const Team);
        impl Drop for Restore {
            fn drop(&mut self) {
                TEAM.set(self.0);
            }
        }
        let _restore = Restore(team);
        // SAFETY: TEAM is set only by `with_team` on this thread, to a team on
        // its stack, and cleared before that team is dropped.
        let team = unsafe { &*team };
        return team.run(tasks, workers, scratch, per, &body, timed);
    }
    let ranges = TaskRanges::new();
    let n = ranges.deal(tasks, workers);
    let worker = |w: usize, slot: &mut [f32]| ranges.work(n, w, &body, slot);
    if per == 0 {
        (0..workers).into_par_iter().for_each(|w| worker(w, &mut []));
    } else {
        scratch.par_chunks_mut(per).enumerate().for_each(|(w, slot)| worker(w, slot));
    }
    None
}

thread_local! {
    /// The owner's share of a two-worker [`run_split`], kept per thread across
    /// teams: a model's team is owned by the thread that calls predict, which
    /// keeps the ratio it measured against the helper.
    static OWNER_SHARE: Cell<f64> = const { Cell::new(0.5) };
}

/// Bounds of the owner's share of a [`run_split`].
const SHARE_MIN: f64 = 0.2;
const SHARE_MAX: f64 = 0.8;
/// How far one measurement moves the share: a quarter of the way to what
/// it measured, at most [`SHARE_STEP_MAX`] (a helper preempted in the middle
/// of one job must not hand the owner the next ones).
const SHARE_GAIN: f64 = 0.25;
const SHARE_STEP_MAX: f64 = 0.05;

/// The owner's share after a two-worker [`run_split`] in which the owner
/// took `owner_ns` over `owner_rows` and the helper `helper_ns` over the rest.
fn next_share(share: f64, owner_rows: usize, owner_ns: u64, helper_rows: usize, helper_ns: u64) -> f64 {
    if owner_ns == 0 || helper_ns == 0 || owner_rows == 0 || helper_rows == 0 {
        return share;
    }
    let owner_speed = owner_rows as f64 / owner_ns as f64;
    let helper_speed = helper_rows as f64 / helper_ns as f64;
    let target = owner_speed / (owner_speed + helper_speed);
    let step = (SHARE_GAIN * (target - share)).clamp(-SHARE_STEP_MAX, SHARE_STEP_MAX);
    (share + step).clamp(SHARE_MIN, SHARE_MAX)
}

/// Runs `body(rows, slot)` on one contiguous range of `0..m` per worker (the
/// ranges partition `0..m` in order; some may be empty), for kernels whose
/// `m` units cost the same and whose tasks stay one per worker
/// (`gemm::loops::split`'s row splits, where each task streams all the
/// weights, and its column splits, in units of column tiles).
///
/// With one range per worker, a slower core cannot be rebalanced by
/// stealing, and the layer waits for it: measured on the 2-core Zen 4 VM, in
/// runs where the host gave one vCPU less of a core, the owner waited 7–14 %
/// of each row-split 1×1 layer for the helper. So on the owner of a team of
/// two workers the ranges follow the threads' measured speeds: each such job
/// times the owner's and the helper's own ranges and moves the owner's share
/// towards what they did ([`next_share`]); the share lives on across the
/// thread's later teams. Elsewhere the ranges are equal. Which rows a worker
/// computes never changes a row's arithmetic, so results are identical
/// whatever the share.
pub(crate) fn run_split<F>(m: usize, workers: usize, scratch: &mut [f32], per: usize, body: F)
where
    F: Fn(std::ops::Range<usize>, &mut [f32]) + Sync,
{
    let workers = workers.max(1).min(m.max(1));
    let adaptive = workers == 2 && !TEAM.get().is_null();
    let share = if adaptive { OWNER_SHARE.get() } else { 1.0 / workers as f64 };
    // The owner's rows, then the rest in equal ranges.
    let first = ((m as f64 * share).round() as usize).min(m);
    let bound = |i: usize| if i == 0 { 0 } else { first + (m - first) * (i - 1) / (workers - 1).max(1) };
    let times = run_tasks_timed(workers, workers, scratch, per, |t, slot| body(bound(t)..bound(t + 1), slot), adaptive);
    if let Some((owner_ns, helper_ns)) = times {
        OWNER_SHARE.set(next_share(share, first, owner_ns, m - first, helper_ns));
    }
}

/// The owner's share of the next two-worker [`run_split`] on this thread.
#[cfg(test)]
pub(crate) fn owner_share() -> f64 {
    OWNER_SHARE.get()
}

/// Sets the owner's share of this thread's next two-worker [`run_split`]s
/// (tests: results must not depend on it).
#[cfg(test)]
pub(crate) fn set_owner_share(share: f64) {
    OWNER_SHARE.set(share.clamp(SHARE_MIN, SHARE_MAX));
}

/// Runs `body(i, chunk)` for every `chunk_len`-float chunk of `out` (the last
/// may be shorter), on `workers` workers through [`run_tasks`].
pub(crate) fn for_each_chunk<F>(out: &mut [f32], chunk_len: usize, workers: usize, body: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    assert!(chunk_len > 0, "par: chunk length 0");
    let (len, ptr) = (out.len(), SendPtr(out.as_mut_ptr()));
    run_tasks(len.div_ceil(chunk_len), workers, &mut [], 0, |i, _| {
        let start = i * chunk_len;
        let n = chunk_len.min(len - start);
        // SAFETY: task `i` runs once, and chunks of distinct `i` are disjoint
        // ranges inside `out`, which is borrowed mutably for this whole call.
        let chunk = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(start), n) };
        body(i, chunk);
    });
}

/// A raw pointer into an output buffer that the workers of one [`run_tasks`]
/// call share; each task writes only its own disjoint region through it
/// ([`for_each_chunk`], the GEMM loop nest).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: the pointer is only dereferenced by tasks that own disjoint regions
// of the buffer it points into, while the caller of `run_tasks` borrows that
// buffer mutably; sharing it only copies the address.
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}
impl SendPtr {
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const CASES: [(usize, usize, usize); 6] = [(0, 3, 4), (1, 3, 4), (7, 1, 0), (17, 3, 0), (17, 3, 5), (64, 2, 1)];

    fn check_every_task_once(tasks: usize, workers: usize, per: usize) {
        let seen = Mutex::new(vec![0u32; tasks]);
        let mut scratch = vec![0.0f32; workers * per + 3];
        run_tasks(tasks, workers, &mut scratch, per, |t, slot| {
            assert_eq!(slot.len(), per);
            // A worker's slot is its own: write then read back a tag.
            slot.iter_mut().for_each(|x| *x = t as f32);
            std::hint::black_box(&slot);
            assert!(slot.iter().all(|&x| x == t as f32));
            seen.lock().unwrap()[t] += 1;
        });
        assert!(seen.into_inner().unwrap().iter().all(|&n| n == 1), "{tasks} tasks, {workers} workers");
    }

    #[test]
    fn every_task_once_with_own_slot() {
        for (tasks, workers, per) in CASES {
            check_every_task_once(tasks, workers, per);
        }
    }

    #[test]
    fn every_task_once_on_a_team() {
        for threads in [2, 3, 5] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                with_team(threads, || {
                    // Many small jobs back to back: helpers join some of them.
                    for _ in 0..200 {
                        for (tasks, workers, per) in CASES {
                            check_every_task_once(tasks, workers, per);
                        }
                    }
                })
            });
        }
    }

    #[test]
    fn team_helpers_do_join() {
        // With a slow first task the owner cannot finish alone before the
        // helper joins: the tasks must run on two distinct threads.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let ids = Mutex::new(std::collections::HashSet::new());
        pool.install(|| {
            with_team(2, || {
                run_tasks(2, 2, &mut [], 0, |_, _| {
                    ids.lock().unwrap().insert(std::thread::current().id());
                    std::thread::sleep(std::time::Duration::from_millis(50));
                });
            })
        });
        assert_eq!(ids.into_inner().unwrap().len(), 2);
    }

    #[test]
    fn team_stats_count_jobs_and_time_the_waits_for_helpers() {
        // Two tasks per job: the helper's sleeps 60 ms, the owner's 20 (long
        // enough for the helper to join), so the owner waits ~40 ms per job.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let joined = std::sync::atomic::AtomicU32::new(0);
        let ((), stats) = pool.install(|| {
            with_team_stats(2, || {
                let owner = std::thread::current().id();
                let mut seen = 0;
                for _ in 0..3 {
                    run_tasks(2, 2, &mut [], 0, |_, _| {
                        if std::thread::current().id() == owner {
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        } else {
                            joined.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(std::time::Duration::from_millis(60));
                        }
                    });
                    // The running total grows by each job's wait.
                    assert!(team_waited_ns() >= seen);
                    seen = team_waited_ns();
                }
                assert!(seen > 0);
            })
        });
        assert_eq!(stats.jobs, 3);
        assert_eq!(team_waited_ns(), 0, "outside a team");
        let joined = joined.into_inner() as u64;
        // A helper that joined after the owner took its task ran none.
        assert!(stats.helped as u64 >= joined && stats.helped <= 3, "{stats:?}, helper ran {joined} tasks");
        assert!(joined >= 1, "the helper never joined");
        assert!(stats.waited_ns >= joined * 30_000_000, "{stats:?}, helper joined {joined}");
        assert!(stats.longest_wait_ns >= 30_000_000 && stats.longest_wait_ns <= stats.waited_ns, "{stats:?}");
        // No team, no statistics.
        assert_eq!(with_team_stats(1, || ()).1, TeamStats::default());
    }

    #[test]
    fn team_survives_a_panicking_kernel() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let r = pool.install(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                with_team(2, || {
                    run_tasks(64, 2, &mut [], 0, |t, _| {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                        assert!(t != 40, "task 40 fails");
                    })
                })
            }))
        });
        assert!(r.is_err());
        // The pool and a new team still work.
        pool.install(|| with_team(2, || check_every_task_once(17, 2, 3)));
    }

    #[test]
    fn helpers_run_every_task_once_on_the_callers_team() {
        for n in [1, 2, 4] {
            let helpers = Helpers::new(n, "test").unwrap();
            assert_eq!(helpers.len(), n);
            let caller = std::thread::current().id();
            // Fewer threads than helpers, as many, and more.
            for threads in [2, n + 1, n + 3] {
                let ((), stats) = helpers.with_team_stats(threads, || {
                    assert_eq!(std::thread::current().id(), caller, "the caller owns the team");
                    for _ in 0..100 {
                        for (tasks, workers, per) in CASES {
                            check_every_task_once(tasks, workers, per);
                        }
                    }
                });
                assert!(stats.jobs > 0 && stats.helped <= stats.jobs, "{stats:?}");
            }
            // One thread: no team.
            assert_eq!(helpers.with_team_stats(1, || ()).1, TeamStats::default());
        }
    }

    #[test]
    fn helpers_join_again_after_parking() {
        let helpers = Helpers::new(1, "test").unwrap();
        for round in 0..3 {
            // A slow first task: the helper must take the second one.
            let ids = Mutex::new(std::collections::HashSet::new());
            let ((), stats) = helpers.with_team_stats(2, || {
                run_tasks(2, 2, &mut [], 0, |_, _| {
                    ids.lock().unwrap().insert(std::thread::current().id());
                    std::thread::sleep(std::time::Duration::from_millis(50));
                });
            });
            assert_eq!(ids.into_inner().unwrap().len(), 2, "round {round}: {stats:?}");
            assert_eq!(stats.helped, 1);
            // Longer than the linger: the helper parks, the next team wakes it.
            std::thread::sleep(Helpers::LINGER * 5);
        }
    }

    #[test]
    fn a_second_caller_runs_alone_while_the_helpers_are_taken() {
        let helpers = Helpers::new(1, "test").unwrap();
        let (inside_tx, inside_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            let helpers = &helpers;
            let first = s.spawn(move || {
                helpers.with_team_stats(2, || {
                    inside_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    check_every_task_once(17, 2, 3);
                })
            });
            inside_rx.recv().unwrap();
            let ids = Mutex::new(std::collections::HashSet::new());
            let ((), stats) = helpers.with_team_stats(2, || {
                for (tasks, workers, per) in CASES {
                    check_every_task_once(tasks, workers, per);
                }
                run_tasks(4, 2, &mut [], 0, |_, _| {
                    ids.lock().unwrap().insert(std::thread::current().id());
                    std::thread::sleep(std::time::Duration::from_millis(5));
                });
            });
            assert_eq!(stats.helped, 0, "{stats:?}");
            assert_eq!(ids.into_inner().unwrap().len(), 1);
            go_tx.send(()).unwrap();
            first.join().unwrap();
        });
        // The door is free again.
        let ((), stats) = helpers.with_team_stats(2, || check_every_task_once(64, 2, 1));
        assert_eq!(stats.jobs, 1);
    }

    #[test]
    fn helpers_survive_panicking_kernels() {
        let helpers = Helpers::new(1, "test").unwrap();
        let panics = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
        // A task fails on whichever thread runs it.
        assert!(panics(&|| {
            helpers.with_team_stats(2, || {
                run_tasks(64, 2, &mut [], 0, |t, _| {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                    assert!(t != 40, "task 40 fails");
                })
            });
        }));
        // The helper's task fails (the owner's first one lasts long enough
        // for the helper to take the second): the owner re-raises it once
        // the team is closed. (A few tries: on a loaded machine the owner
        // may still have taken both.)
        let helper_failed = (0..5).any(|_| {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                helpers.with_team_stats(2, || {
                    run_tasks(2, 2, &mut [], 0, |t, _| {
                        std::thread::sleep(std::time::Duration::from_millis(if t == 0 { 50 } else { 0 }));
                        assert!(t != 1, "task 1 fails");
                    })
                });
            }));
            let payload = r.expect_err("task 1 failed on some thread");
            payload.downcast_ref::<&str>().is_some_and(|m| m.contains("on a helper thread"))
        });
        assert!(helper_failed, "the helper's panic was not re-raised by the owner");
        // The caller's own code fails.
        assert!(panics(&|| {
            helpers.with_team_stats(2, || panic!("the caller fails"));
        }));
        // The helper is still there.
        let ids = Mutex::new(std::collections::HashSet::new());
        helpers.with_team_stats(2, || {
            run_tasks(2, 2, &mut [], 0, |_, _| {
                ids.lock().unwrap().insert(std::thread::current().id());
                std::thread::sleep(std::time::Duration::from_millis(50));
            })
        });
        assert_eq!(ids.into_inner().unwrap().len(), 2);
    }

    /// Runs `work` for worker `w` alone on ranges dealt for `workers`,
    /// recording the task order.
    fn order_alone(tasks: usize, workers: usize, w: usize) -> Vec<usize> {
        let ranges = TaskRanges::new();
        let n = ranges.deal(tasks, workers);
        let seen = Mutex::new(Vec::new());
        ranges.work(n, w, &|t, _| seen.lock().unwrap().push(t), &mut []);
        seen.into_inner().unwrap()
    }

    #[test]
    fn a_worker_runs_its_range_then_steals_from_the_back() {
        // Ranges [0, 3), [3, 6), [6, 10): worker 0 runs its own in order,
        // then empties the others from their ends.
        assert_eq!(order_alone(10, 3, 0), [0, 1, 2, 5, 4, 3, 9, 8, 7, 6]);
        assert_eq!(order_alone(10, 3, 2), [6, 7, 8, 9, 2, 1, 0, 5, 4, 3]);
        // More workers than tasks: most ranges are empty.
        assert_eq!(order_alone(2, 5, 4), [1, 0]);
        // More workers than MAX_RANGES: worker 70 starts on range 70 % 64 = 6,
        // [1000·6/64, 1000·7/64) = [93, 109).
        let mut all = order_alone(1000, 100, 70);
        assert_eq!(all[..16], (93..109).collect::<Vec<_>>()[..]);
        all.sort_unstable();
        assert!(all.iter().copied().eq(0..1000));
    }

    /// Runs `run_split(m, workers)`, checking the ranges partition `0..m` in
    /// order; returns them.
    fn split_ranges(m: usize, workers: usize) -> Vec<std::ops::Range<usize>> {
        let seen = Mutex::new(Vec::new());
        run_split(m, workers, &mut [], 0, |r, _| seen.lock().unwrap().push(r));
        let mut v = seen.into_inner().unwrap();
        v.sort_by_key(|r| (r.start, r.end));
        assert_eq!(v.len(), workers.max(1).min(m.max(1)), "{m} rows, {workers} workers");
        assert_eq!(v.first().map_or(0, |r| r.start), 0);
        assert!(v.windows(2).all(|w| w[0].end == w[1].start), "{v:?}");
        assert_eq!(v.last().map_or(0, |r| r.end), m);
        v
    }

    #[test]
    fn split_ranges_partition_the_rows() {
        // Outside a team: equal ranges.
        for (m, w) in [(0, 2), (1, 3), (10, 2), (196, 2), (197, 3), (64, 8)] {
            let v = split_ranges(m, w);
            let (lo, hi) = v.iter().map(|r| r.len()).fold((usize::MAX, 0), |(a, b), l| (a.min(l), b.max(l)));
            assert!(hi - lo <= 1, "{m} {w}: {v:?}");
        }
        // On a team, whatever the share.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            with_team(2, || {
                for share in [0.2, 0.5, 0.8] {
                    set_owner_share(share);
                    let v = split_ranges(196, 2);
                    // The share in force when the job started sized the owner's range.
                    assert_eq!(v[0].len(), (196.0 * share).round() as usize);
                    split_ranges(3, 2);
                }
            })
        });
    }

    #[test]
    fn the_share_follows_the_measured_speeds() {
        // Equal speeds: stays. A helper twice as slow per row: the owner's
        // share moves towards 2/3, at most SHARE_STEP_MAX per job.
        assert_eq!(next_share(0.5, 100, 1000, 100, 1000), 0.5);
        let s = next_share(0.5, 100, 1000, 100, 2000);
        assert!((s - (0.5 + SHARE_GAIN * (2.0 / 3.0 - 0.5))).abs() < 1e-12, "{s}");
        assert_eq!(next_share(0.5, 100, 1000, 100, 100_000), 0.5 + SHARE_STEP_MAX);
        assert_eq!(next_share(SHARE_MIN, 100, 100_000, 100, 1000), SHARE_MIN);
        assert_eq!(next_share(0.6, 0, 0, 100, 1000), 0.6);
        let mut s = 0.5;
        for _ in 0..40 {
            s = next_share(
                s,
                (200.0 * s) as usize,
                (200.0 * s) as u64 * 10,
                200 - (200.0 * s) as usize,
                (200.0 * (1.0 - s)) as u64 * 20,
            );
        }
        assert!((s - 2.0 / 3.0).abs() < 0.02, "{s}");
    }

    #[test]
    fn a_slower_helper_gets_fewer_rows() {
        // Each row costs the helper three times what it costs the owner
        // (sleeps): after a few jobs the owner takes most rows (3/4 at
        // equilibrium). Rows of 0.1 and 0.3 ms, so that what a busy machine
        // adds to every sleep (a fixed delay per call, which pulls the
        // measured speeds together) stays small beside them: with 20 and
        // 60 µs the share fell to 0.60 in 1 of 20 runs beside two busy
        // processes on two cores.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let share = pool.install(|| {
            with_team(2, || {
                set_owner_share(0.5);
                let owner = std::thread::current().id();
                for _ in 0..30 {
                    run_split(40, 2, &mut [], 0, |rows, _| {
                        let per_row = if std::thread::current().id() == owner { 100 } else { 300 };
                        std::thread::sleep(std::time::Duration::from_micros(per_row * rows.len() as u64));
                    });
                }
                owner_share()
            })
        });
        assert!(share > 0.62, "owner share {share}");
    }

    #[test]
    fn chunks_cover_the_output_once() {
        for (len, chunk, workers) in [(0, 3, 2), (10, 3, 2), (10, 10, 3), (64, 7, 4)] {
            let mut out = vec![0.0f32; len];
            for_each_chunk(&mut out, chunk, workers, |i, c| {
                assert!(c.len() <= chunk);
                c.iter_mut().enumerate().for_each(|(j, v)| *v += (i * chunk + j) as f32);
            });
            assert!(out.iter().enumerate().all(|(j, &v)| v == j as f32), "{len} {chunk}");
        }
    }
}
