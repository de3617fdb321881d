//! The task runner shared by the GEMM and Winograd loop nests.
//!
//! A kernel splits its output into `tasks` disjoint pieces whose arithmetic
//! does not depend on who computes them. `workers` workers (rayon jobs) each
//! own one scratch slot and take task indices from a shared counter, so a
//! worker that starts late or is preempted (a shared 2-core machine) delays
//! only the task it holds, and results are identical whatever the scheduling.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

/// Runs `body(t, slot)` for every task `t < tasks`, each exactly once, on
/// `workers` workers; `slot` is the worker's own `per` floats of `scratch`
/// (empty when `per == 0`). One worker (or one task) runs inline on the
/// calling thread, in task order.
///
/// # Panics
/// If `scratch` is shorter than `workers · per` floats.
pub(crate) fn run_tasks<F>(tasks: usize, workers: usize, scratch: &mut [f32], per: usize, body: F)
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
        return;
    }
    let next = AtomicUsize::new(0);
    let worker = |slot: &mut [f32]| loop {
        let t = next.fetch_add(1, Ordering::Relaxed);
        if t >= tasks {
            break;
        }
        body(t, slot);
    };
    if per == 0 {
        (0..workers).into_par_iter().for_each(|_| worker(&mut []));
    } else {
        scratch.par_chunks_mut(per).for_each(worker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_task_once_with_own_slot() {
        for (tasks, workers, per) in [(0, 3, 4), (1, 3, 4), (7, 1, 0), (17, 3, 0), (17, 3, 5), (64, 2, 1)] {
            let seen = Mutex::new(vec![0u32; tasks]);
            let mut scratch = vec![0.0f32; workers * per + 3];
            run_tasks(tasks, workers, &mut scratch, per, |t, slot| {
                assert_eq!(slot.len(), per);
                // A worker's slot is its own: write then read back a tag.
                slot.iter_mut().for_each(|x| *x = t as f32);
                assert!(slot.iter().all(|&x| x == t as f32));
                seen.lock().unwrap()[t] += 1;
            });
            assert!(seen.into_inner().unwrap().iter().all(|&n| n == 1), "{tasks} tasks, {workers} workers");
        }
    }
}
