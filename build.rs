//! Links the `procscript` binary with its segments aligned to 2 MiB, so that its code and
//! read-only data can move onto transparent huge pages whole (see `src/process/hugetext.rs`:
//! a forked child then takes no page faults on procscript's code). `separate-code` starts
//! the code segment on its own 2 MiB boundary; the file grows by the padding (under 1 MiB).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,max-page-size=0x200000");
        println!("cargo:rustc-link-arg-bins=-Wl,-z,separate-code");
    }
}
