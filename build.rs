//! Links `chat-supervisor` with packed relative relocations (`-z pack-relative-relocs`, DT_RELR)
//! where the C library can load them (glibc 2.36 and later).
//!
//! Every one of the system's processes runs this binary, a position-independent executable. Its
//! table of relocations, 310 KB in the usual form, is read at each start and stays in each
//! process's memory; packed, it takes 4 KB. Measured on six empty processes: 370 KB less each
//! (see BENCHMARKS.md). Built for another machine (`--target` not the host), or on an older
//! glibc, the binary links as before.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    if target == host && target.ends_with("-linux-gnu") && glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether this machine's glibc is `major.minor` or later, by `getconf GNU_LIBC_VERSION`
/// ("glibc 2.36"); false if that cannot be told.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(output) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(version) = text.split_whitespace().nth(1) else {
        return false;
    };
    let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(have_major), Some(have_minor)) => (have_major, have_minor) >= (major, minor),
        _ => false,
    }
}
