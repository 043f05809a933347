//! Every `unsafe` of the crate, each behind a small safe function. The rest of the crate denies
//! `unsafe_code` (see `lib.rs`); here each block says why it is sound in a `// SAFETY:` comment,
//! which clippy's `undocumented_unsafe_blocks` (denied crate-wide) enforces.
//!
//! - [`exec`]: what a child inherits, set up between `fork` and `exec`.
//! - [`fd`]: descriptors: registered with the event loop, passed with `SCM_RIGHTS`, inherited.
//! - [`shared`]: a file mapped as shared atomic words (the position file).
//! - [`tcp`]: what a TCP socket knows of the bytes ever written to it and read from it.
//! - [`take_env`] and [`trim_heap`]: the environment at start-up, and glibc's heap.
#![allow(unsafe_code)]

pub(crate) mod exec;
pub(crate) mod fd;
pub(crate) mod shared;
pub(crate) mod tcp;

/// The environment variable `name`, removed from the environment so that nothing this process
/// starts inherits it. Removed only while this process runs one thread (checked): another could
/// be reading the environment meanwhile. So call it at start-up, before any thread starts.
pub fn take_env(name: &str) -> Option<String> {
    let value = std::env::var(name).ok()?;
    if one_thread() {
        // SAFETY: this process runs one thread (checked just now, and only this thread could
        // start another), so no other thread reads or writes the environment meanwhile.
        unsafe { std::env::remove_var(name) };
    } else {
        tracing::debug!(name, "not removed from the environment: other threads run");
    }
    Some(value)
}

/// Whether this process runs a single thread.
fn one_thread() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// Hands the heap's free pages back to the system (glibc's `malloc_trim`; elsewhere, nothing).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a plain integer and only walks glibc's own heap, under its lock.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_variable_is_taken_and_left_in_place_while_other_threads_run() {
        // The test harness runs threads: the variable stays (removing it would not be sound).
        // SAFETY: a name no other test uses; set before anything reads it.
        unsafe { std::env::set_var("CHAT_SYS_TEST_VARIABLE", "7") };
        assert_eq!(super::take_env("CHAT_SYS_TEST_VARIABLE").as_deref(), Some("7"));
        assert_eq!(super::take_env("CHAT_SYS_NO_SUCH_VARIABLE"), None);
        super::trim_heap();
    }
}
