//! The generator's own process: its CPU time and memory (from `/proc/self`), and its limit
//! on open files, which it raises itself where it can.

/// CPU seconds (user + system) this process has used; `None` where `/proc` does not say.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_seconds_of(&stat)
}

/// utime + stime of a `/proc/PID/stat` line, in seconds.
fn cpu_seconds_of(stat: &str) -> Option<f64> {
    // Clock ticks per second: 100 on every Linux platform Rust targets (USER_HZ).
    const CLK_TCK: f64 = 100.0;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / CLK_TCK)
}

/// Peak resident memory of this process (`VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The open-files limit after trying to raise it.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct FilesLimit {
    /// The soft limit now in force.
    pub soft: u64,
    /// The hard limit (only root with `CAP_SYS_RESOURCE` can raise it).
    pub hard: u64,
    /// Files the run needs (connections plus a margin).
    pub needed: u64,
}

impl FilesLimit {
    /// Whether the run fits.
    pub fn enough(&self) -> bool {
        self.soft >= self.needed
    }
}

/// Raises the soft `RLIMIT_NOFILE` towards `needed` (up to the hard limit) and says where it
/// ended up.
pub fn raise_files_limit(needed: u64) -> FilesLimit {
    let soft = rlimit::increase_nofile_limit(needed).unwrap_or(0);
    let hard = rlimit::Resource::NOFILE
        .get()
        .map(|(_, hard)| hard)
        .unwrap_or(soft);
    FilesLimit { soft, hard, needed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_from_a_stat_line() {
        let line = "4242 (my (odd) cmd) S 1 2 3 4 5 6 7 8 9 10 250 130 0 0 20 0 1 0";
        assert_eq!(cpu_seconds_of(line), Some(3.8));
        assert_eq!(cpu_seconds_of("garbage"), None);
        assert!(cpu_seconds().is_some());
        assert!(peak_rss_bytes().is_some_and(|b| b > 0));
    }
}
