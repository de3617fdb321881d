//! Steal time: how much of the CPU time a virtual machine's CPUs wanted the
//! hypervisor gave to other guests, from Linux's `/proc/stat`.
//!
//! `resnet50 bench` reports it for its timed loop (and `bench/compare/compare.py`
//! for every engine's round): on a shared VM it is one reason two runs of the
//! same binary differ. A busy neighbour on the same physical core does not
//! show up in it.

/// `(steal, busy)` clock ticks summed over all CPUs since boot, from the
/// first line of `/proc/stat` (`busy` = user + nice + system + irq +
/// softirq; guest time is inside user and nice). `None` where the file is
/// absent or not in that form (not Linux).
pub fn read_cpu_ticks() -> Option<(u64, u64)> {
    parse_cpu_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// [`read_cpu_ticks`] on the text of `/proc/stat` (only its first line is
/// read): `None` unless it starts with `cpu` and eight unsigned counters whose
/// busy sum fits a `u64`.
pub fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let mut fields = stat.lines().next()?.split_ascii_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let mut v = [0u64; 8];
    for x in v.iter_mut() {
        *x = fields.next()?.parse().ok()?;
    }
    let busy = [v[0], v[1], v[2], v[5], v[6]].iter().try_fold(0u64, |a, &b| a.checked_add(b))?;
    Some((v[7], busy))
}

/// Steal between two [`read_cpu_ticks`] readings, as a percentage of the CPU
/// time the VM's CPUs wanted (busy + stolen): on a shared virtual machine, the
/// time the hypervisor ran other guests while ours were ready. `None` without
/// both readings, or with no ticks in between.
pub fn steal_percent(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<f64> {
    let ((s0, b0), (s1, b1)) = (before?, after?);
    let (steal, busy) = (s1.checked_sub(s0)?, b1.checked_sub(b0)?);
    let wanted = steal.checked_add(busy).filter(|&w| w > 0)?;
    Some(100.0 * steal as f64 / wanted as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_parse_the_first_line_of_proc_stat() {
        let stat = "cpu  100 5 20 9000 7 3 2 40 11 0\ncpu0 50 2 10 4500 3 1 1 20 5 0\n";
        assert_eq!(parse_cpu_ticks(stat), Some((40, 130)));
        // Older kernels without guest columns still have steal (8th).
        assert_eq!(parse_cpu_ticks("cpu 1 2 3 4 5 6 7 8"), Some((8, 1 + 2 + 3 + 6 + 7)));
        for bad in ["", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8", "intr 1 2 3 4 5 6 7 8"] {
            assert_eq!(parse_cpu_ticks(bad), None, "{bad:?}");
        }
        let huge = format!("cpu {m} {m} 0 0 0 0 0 0", m = u64::MAX);
        assert_eq!(parse_cpu_ticks(&huge), None);
    }

    #[test]
    fn steal_is_a_share_of_the_time_wanted() {
        assert_eq!(steal_percent(Some((10, 100)), Some((20, 190))), Some(10.0));
        assert_eq!(steal_percent(Some((10, 100)), Some((10, 100))), None);
        assert_eq!(steal_percent(None, Some((1, 1))), None);
        assert_eq!(steal_percent(Some((10, 100)), Some((5, 200))), None);
        if let Some(now) = read_cpu_ticks() {
            assert!(steal_percent(Some(now), read_cpu_ticks()).is_none_or(|p| (0.0..=100.0).contains(&p)));
        }
    }
}
