//! Processes: whether one exists and when it started, and the kernel's figures in `/proc`.

/// The start time of process `pid` in clock ticks since boot (field 22 of `/proc/PID/stat`),
/// or 0 if it cannot be read. Together with the pid it identifies a process even after the pid
/// is reused.
pub(crate) fn start_time(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    rest.split_whitespace()
        .nth(19)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The number after `key:` in `/proc` file `path` (`/proc/self/status`, `/proc/meminfo`), as
/// the kernel writes it (in KiB for sizes); `None` if the file or the line is missing.
pub(crate) fn field(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
