//! A number for one run of a process, told apart from every other run on any host: a frontend's
//! instance, a kernel's epoch, a cluster node's run of `up`.

/// The time in nanoseconds mixed with the pid, odd (never 0).
pub fn new() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ (u64::from(std::process::id()) << 40)) | 1
}
