//! The program's code on transparent huge pages, so that a forked child does not fault its
//! way through it.
//!
//! `fork` does not copy the page-table entries of file-backed mappings: a child that runs
//! procscript's code (the fork glue, Rhai's evaluator, the exit path) takes a page fault for
//! every 64 KiB window of the binary's code and read-only data it touches, about 30 per
//! child. Anonymous memory backed by a 2 MiB transparent huge page is different: fork copies
//! one entry per 2 MiB, and the child faults no more on it. So, once a process has forked a
//! few times, each read-only segment of the program (code, read-only data) is copied into
//! anonymous memory marked `MADV_HUGEPAGE`, and the copy is moved over the original with
//! `mremap(MREMAP_FIXED)`: one system call that swaps the pages under the same virtual
//! addresses, so the code that makes it (which may well lie in the range) runs on, byte for
//! byte the same. HHVM, Chromium (`hugepage_text`) and Facebook's `hugify` do the same for
//! the same reason.
//!
//! - Whole huge pages only. procscript's binary is linked with its segments 2 MiB-aligned
//!   (see `build.rs`), so the copy covers them entirely (the widening goes into the holes
//!   the linker leaves between segments). In a host built without that alignment, only the
//!   2 MiB-aligned middle of each segment moves: anonymous 4 KiB pages at the ends would
//!   cost more at each fork (their page-table entries are copied) than they save.
//! - Lazily: only a process that forks a few times (16) pays for the
//!   copy (about 2 ms), so a script that never forks, or forks a handful of times, starts
//!   and runs as before.
//! - Silently optional: nothing happens where transparent huge pages are off, or where the
//!   kernel did not back the copy with huge pages (checked in `/proc/self/smaps` before the
//!   copy replaces anything). `PROCSCRIPT_HUGE_TEXT=0` turns it off, and so does
//!   [`set_enabled`] for a host.
//! - Debuggable: the addresses do not change, so backtraces symbolize as before, and a
//!   profiler that was recording when the program started (`perf record procscript ...`)
//!   keeps its map of the file (`mremap` reports no new mapping). One attached later
//!   (`perf record -p`) sees the range as anonymous memory: run with
//!   `PROCSCRIPT_HUGE_TEXT=0` to profile that way.
//! - The price: the process holds its own copy of the code (8 MiB for procscript's binary),
//!   shared copy-on-write with its children, instead of the page cache's.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};

/// 2 MiB: the size of a transparent huge page on x86-64 and (with 4 KiB pages) arm64.
const HUGE: usize = 2 << 20;

/// Not tried yet, done (remapped or given up), or turned off.
static STATE: AtomicU8 = AtomicU8::new(0);
const UNTRIED: u8 = 0;
const SETTLED: u8 = 1;

/// Forks made before the remapping is tried. The copy costs about 2 ms (8 MiB copied onto
/// freshly zeroed huge pages) and saves about 40 µs per fork, so it pays for itself after
/// some 50 forks: a script that starts a handful of processes never pays for it, and one
/// that starts hundreds pays once, early.
const FORKS_BEFORE_REMAP: u32 = 16;

/// Forks seen while [`UNTRIED`].
static FORKS: AtomicU32 = AtomicU32::new(0);

/// Whether the text was moved to huge pages (for `procscript` diagnostics and benchmarks).
static REMAPPED: AtomicBool = AtomicBool::new(false);

/// Turns the remapping off (or back on, if it has not happened yet): a host that embeds
/// procscript and would rather keep its text file-backed calls this before the first fork.
pub(crate) fn set_enabled(enabled: bool) {
    if !enabled {
        STATE.store(SETTLED, Ordering::Relaxed);
    } else if !REMAPPED.load(Ordering::Relaxed) {
        STATE.store(UNTRIED, Ordering::Relaxed);
    }
}

/// Whether the executable's code now runs from huge pages.
pub(crate) fn remapped() -> bool {
    REMAPPED.load(Ordering::Relaxed)
}

/// Moves the program's code (and read-only data) onto huge pages, once per program (a
/// child inherits the result), before its 16th fork. Called before
/// each fork; it costs an atomic load or two.
pub(crate) fn prepare_for_fork() {
    if STATE.load(Ordering::Relaxed) != UNTRIED
        || FORKS.fetch_add(1, Ordering::Relaxed) + 1 < FORKS_BEFORE_REMAP
    {
        return;
    }
    remap_now();
}

/// Moves the program's code (and read-only data) onto huge pages now, if it has not been
/// tried yet (see the module docs for when it gives up). Returns whether the code runs from
/// huge pages.
pub(crate) fn remap_now() -> bool {
    if STATE.load(Ordering::Relaxed) != UNTRIED {
        return remapped();
    }
    STATE.store(SETTLED, Ordering::Relaxed);
    if std::env::var_os("PROCSCRIPT_HUGE_TEXT").is_some_and(|v| v == "0") || !thp_available() {
        return false;
    }
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return false;
    };
    let mapped: Vec<(usize, usize)> = maps.lines().filter_map(parse_range).collect();
    for segment in read_only_segments() {
        if let Some(range) = huge_range(segment, &mapped) {
            if remap(range, segment) {
                REMAPPED.store(true, Ordering::Relaxed);
            }
        }
    }
    remapped()
}

/// The `start-end` range at the head of a line of /proc/self/maps.
fn parse_range(line: &str) -> Option<(usize, usize)> {
    let (range, _) = line.split_once(' ')?;
    let (start, end) = range.split_once('-')?;
    Some((
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    ))
}

/// A read-only segment of the program: its page-aligned range and whether it is code.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: usize,
    end: usize,
    exec: bool,
}

/// The whole huge pages that may stand in for `segment`: its range widened to 2 MiB
/// boundaries where nothing else is mapped in the widening (the holes a linker leaves
/// between segments aligned to 2 MiB, as procscript's own build asks for), else narrowed
/// to them. `None` if no whole huge page is left.
fn huge_range(segment: Segment, mapped: &[(usize, usize)]) -> Option<(usize, usize)> {
    let free = |lo: usize, hi: usize| {
        lo >= hi
            || mapped
                .iter()
                .all(|&(s, e)| e <= lo || s >= hi || (s >= segment.start && e <= segment.end))
    };
    let down = segment.start - segment.start % HUGE;
    let lo = if free(down, segment.start) {
        down
    } else {
        segment.start.next_multiple_of(HUGE)
    };
    let up = segment.end.next_multiple_of(HUGE);
    let hi = if free(segment.end, up) {
        up
    } else {
        segment.end - segment.end % HUGE
    };
    (hi > lo).then_some((lo, hi))
}

/// Whether anonymous memory can get transparent huge pages when asked (`madvise` or
/// `always` mode).
fn thp_available() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|mode| !mode.contains("[never]"))
}

/// The loaded segments of the main program that are not writable (code, read-only data).
fn read_only_segments() -> Vec<Segment> {
    let mut found: Vec<Segment> = Vec::new();
    extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid info for the duration of the call, and `data`
        // is the vector that `read_only_segments` passed in, alive until dl_iterate_phdr
        // returns.
        let (info, found) = unsafe { (&*info, &mut *data.cast::<Vec<Segment>>()) };
        if info.dlpi_phdr.is_null() {
            return 1;
        }
        // SAFETY: `dlpi_phdr` points at `dlpi_phnum` program headers of this object.
        let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
        for header in headers {
            if header.p_type == libc::PT_LOAD && header.p_flags & libc::PF_W == 0 {
                let start = info.dlpi_addr as usize + header.p_vaddr as usize;
                let end = start + header.p_memsz as usize;
                found.push(Segment {
                    start: start - start % PAGE,
                    end: end.next_multiple_of(PAGE),
                    exec: header.p_flags & libc::PF_X != 0,
                });
            }
        }
        // The first object is the main program: stop there.
        1
    }
    // SAFETY: the callback only reads the headers it is given and writes to `found`.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut found as *mut Vec<Segment>).cast()) };
    found
}

/// The page size the segments are rounded to.
const PAGE: usize = 4096;

/// Replaces `[lo, hi)` (2 MiB-aligned) with an anonymous copy of what `segment` has there
/// (zeros in the holes around it), on huge pages, with the segment's protection. Returns
/// whether it did; on `false` nothing changed.
fn remap((lo, hi): (usize, usize), segment: Segment) -> bool {
    let len = hi - lo;
    // An aligned scratch area: over-allocate by one huge page and trim.
    // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len + HUGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return false;
    }
    let raw = raw as usize;
    let copy = raw.next_multiple_of(HUGE);
    // SAFETY: both trimmed pieces lie inside the mapping just made, which nothing else uses.
    unsafe {
        if copy > raw {
            libc::munmap(raw as *mut libc::c_void, copy - raw);
        }
        let tail = raw + len + HUGE - (copy + len);
        if tail > 0 {
            libc::munmap((copy + len) as *mut libc::c_void, tail);
        }
    }
    let discard = || {
        // SAFETY: the scratch area is ours and nothing points into it.
        unsafe { libc::munmap(copy as *mut libc::c_void, len) };
        false
    };
    // SAFETY: advice on our own scratch mapping.
    if unsafe { libc::madvise(copy as *mut libc::c_void, len, libc::MADV_HUGEPAGE) } != 0 {
        return discard();
    }
    let from = lo.max(segment.start);
    let to = hi.min(segment.end);
    // SAFETY: the source is mapped, readable memory of this program's segment, and the
    // destination the writable scratch area at the same offset; they do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            from as *const u8,
            (copy + (from - lo)) as *mut u8,
            to - from,
        )
    };
    if huge_kib(copy) < len / 1024 {
        return discard();
    }
    let protection = if segment.exec {
        libc::PROT_READ | libc::PROT_EXEC
    } else {
        libc::PROT_READ
    };
    // SAFETY: gives our scratch copy the segment's protection.
    if unsafe { libc::mprotect(copy as *mut libc::c_void, len, protection) } != 0 {
        return discard();
    }
    // SAFETY: moves the copy over the text in one step. The bytes at every address stay the
    // same (the copy is exact and read-only), so the code running this call, wherever it
    // lies, continues unchanged; both ranges are 2 MiB-aligned, so the huge pages move as
    // they are.
    let moved = unsafe {
        libc::mremap(
            copy as *mut libc::c_void,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            lo as *mut libc::c_void,
        )
    };
    if moved == libc::MAP_FAILED {
        return discard();
    }
    true
}

/// KiB of anonymous huge pages in the mapping that starts at `addr`, from /proc/self/smaps.
fn huge_kib(addr: usize) -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let prefix = format!("{addr:x}-");
    let mut lines = smaps.lines().skip_while(|line| !line.starts_with(&prefix));
    lines.next();
    for line in lines {
        if let Some(rest) = line.strip_prefix("AnonHugePages:") {
            return rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
        }
        if line
            .split_whitespace()
            .next()
            .is_some_and(|t| t.contains('-'))
        {
            break;
        }
    }
    0
}
