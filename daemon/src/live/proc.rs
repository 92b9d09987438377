//! Facts about processes from /proc.

/// The start time of process `pid` in clock ticks since boot (`/proc/PID/stat` field 22), or
/// `None` when there is no such process. Together with the pid it names one process: a later
/// process given the same pid has another start time.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (comm) is in parentheses and may contain spaces or ')': split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // rest starts at field 3 (state); field 22 is the 20th from there.
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None; // a zombie has exited already
    }
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::start_ticks;

    #[test]
    fn own_process_has_a_start_time() {
        let t = start_ticks(std::process::id()).expect("we exist");
        assert_eq!(start_ticks(std::process::id()), Some(t));
        assert_eq!(start_ticks(u32::MAX), None);
    }
}
