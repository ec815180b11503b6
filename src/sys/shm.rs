//! Shared memory: anonymous mappings that every process forked after them shares.
//!
//! A [`Shm`] is an anonymous `MAP_SHARED` mapping made before `fork`, so every child
//! inherits the same physical pages: an atomic written by one process is seen by all.
//! Blocking waits on it use futexes without `FUTEX_PRIVATE_FLAG`, which the kernel keys by
//! the physical page, so a wake in one process reaches a waiter in another. The waiting
//! itself is [`super::wait::word`].

use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU32, AtomicU64, AtomicU8};

use nix::errno::Errno;

use crate::error::{Error, Result};

/// An anonymous shared mapping, unmapped when the last handle in this process goes.
#[derive(Debug)]
pub(crate) struct Shm {
    ptr: NonNull<u8>,
    len: usize,
}

impl Shm {
    /// A zero-filled shared mapping of at least `len` bytes (a whole number of pages).
    pub(crate) fn new(len: usize) -> Result<Rc<Self>> {
        let len = len.max(1).next_multiple_of(4096);
        // SAFETY: an anonymous mapping with no address hint touches no existing memory;
        // the result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::os(
                format_args!("mmap of {len} bytes of shared memory"),
                Errno::last(),
            ));
        }
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| Error::value("mmap returned a null pointer"))?;
        Ok(Rc::new(Self { ptr, len }))
    }

    /// The 32-bit word at `index` (byte offset `4 * index`).
    ///
    /// # Panics
    /// If the word lies outside the mapping (a bug in the caller's layout).
    pub(crate) fn u32(&self, index: usize) -> &AtomicU32 {
        assert!(
            4 * index + 4 <= self.len,
            "shared word {index} out of the mapping"
        );
        // SAFETY: the offset is inside the mapping (checked), the base is page-aligned so the
        // word is 4-aligned, the memory is zero-initialised and lives as long as `self`, and
        // it is only ever accessed through atomics.
        unsafe { &*self.ptr.as_ptr().add(4 * index).cast::<AtomicU32>() }
    }

    /// The byte at `index`.
    ///
    /// # Panics
    /// If it lies outside the mapping.
    pub(crate) fn u8(&self, index: usize) -> &AtomicU8 {
        assert!(index < self.len, "shared byte {index} out of the mapping");
        // SAFETY: the offset is inside the mapping (checked); a byte needs no alignment; the
        // memory is zero-initialised, lives as long as `self`, and is only ever accessed
        // through atomics.
        unsafe { &*self.ptr.as_ptr().add(index).cast::<AtomicU8>() }
    }

    /// The 16-bit word at `index` (byte offset `2 * index`).
    ///
    /// # Panics
    /// If it lies outside the mapping.
    pub(crate) fn u16(&self, index: usize) -> &AtomicU16 {
        assert!(
            2 * index + 2 <= self.len,
            "shared word {index} out of the mapping"
        );
        // SAFETY: as for `u32`, with 2-byte alignment from the page-aligned base.
        unsafe { &*self.ptr.as_ptr().add(2 * index).cast::<AtomicU16>() }
    }

    /// The 64-bit word at `index` (byte offset `8 * index`), unsigned.
    ///
    /// # Panics
    /// If it lies outside the mapping.
    pub(crate) fn u64(&self, index: usize) -> &AtomicU64 {
        assert!(
            8 * index + 8 <= self.len,
            "shared word {index} out of the mapping"
        );
        // SAFETY: as for `u32`, with 8-byte alignment from the page-aligned base.
        unsafe { &*self.ptr.as_ptr().add(8 * index).cast::<AtomicU64>() }
    }

    /// The address of byte `offset` in this process (the same in every process forked
    /// after the mapping was made).
    ///
    /// # Panics
    /// If it lies outside the mapping.
    pub(crate) fn address(&self, offset: usize) -> usize {
        assert!(offset < self.len, "shared byte {offset} out of the mapping");
        self.ptr.as_ptr() as usize + offset
    }

    /// The size of the mapping in bytes (a whole number of pages).
    pub(crate) fn size(&self) -> usize {
        self.len
    }

    /// The 64-bit word at `index` (byte offset `8 * index`).
    ///
    /// # Panics
    /// If the word lies outside the mapping.
    pub(crate) fn i64(&self, index: usize) -> &AtomicI64 {
        assert!(
            8 * index + 8 <= self.len,
            "shared word {index} out of the mapping"
        );
        // SAFETY: as for `u32`, with 8-byte alignment from the page-aligned base.
        unsafe { &*self.ptr.as_ptr().add(8 * index).cast::<AtomicI64>() }
    }
}

impl Drop for Shm {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; no reference into the mapping
        // outlives `self` (all accessors borrow `self`).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn mapping_is_zeroed_and_words_are_distinct() {
        let shm = Shm::new(64).unwrap();
        assert_eq!(shm.u32(0).load(Ordering::Relaxed), 0);
        shm.u32(1).store(7, Ordering::Relaxed);
        shm.i64(1).store(-3, Ordering::Relaxed);
        assert_eq!(shm.u32(0).load(Ordering::Relaxed), 0);
        assert_eq!(shm.u32(1).load(Ordering::Relaxed), 7);
        assert_eq!(shm.i64(1).load(Ordering::Relaxed), -3);
    }
}
