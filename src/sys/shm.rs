//! Shared memory: anonymous mappings that every process forked after them shares.
//!
//! A [`Shm`] is an anonymous `MAP_SHARED` mapping made before `fork`, so every child
//! inherits the same physical pages: an atomic written by one process is seen by all.
//! Blocking waits on it use futexes without `FUTEX_PRIVATE_FLAG`, which the kernel keys by
//! the physical page, so a wake in one process reaches a waiter in another. The waiting
//! itself is [`super::wait::word`].

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
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

/// Where one scattered read (`readv`) puts its bytes, in order: private buffers, each
/// borrowed mutably for as long as the list lives, and places in shared mappings, each
/// checked to lie inside its mapping. At most `N` places.
pub(crate) struct Scatter<'a, const N: usize> {
    places: [libc::iovec; N],
    len: usize,
    borrows: PhantomData<(&'a mut [u8], &'a Shm)>,
}

impl<'a, const N: usize> Scatter<'a, N> {
    /// An empty list.
    pub(crate) fn new() -> Self {
        Self {
            places: [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; N],
            len: 0,
            borrows: PhantomData,
        }
    }

    fn push(&mut self, place: libc::iovec) {
        assert!(self.len < N, "a scattered read of more than {N} places");
        self.places[self.len] = place;
        self.len += 1;
    }

    /// Bytes go into `buf` next.
    pub(crate) fn private(&mut self, buf: &'a mut [u8]) {
        self.push(libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        });
    }

    /// Bytes go into `len` bytes of `shm` from byte `offset` next.
    ///
    /// # Panics
    /// If they are not all inside the mapping (a bug in the caller's layout).
    pub(crate) fn shared(&mut self, shm: &'a Shm, offset: usize, len: usize) {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= shm.size()),
            "shared bytes {offset}+{len} out of the mapping"
        );
        self.push(libc::iovec {
            iov_base: shm.ptr.as_ptr().wrapping_add(offset).cast(),
            iov_len: len,
        });
    }

    /// One `readv` from `fd` into the places, in order: how many bytes it read.
    pub(crate) fn read(&mut self, fd: BorrowedFd<'_>) -> nix::Result<usize> {
        // SAFETY: every iovec points into a buffer borrowed mutably for `'a` (so live, and
        // written by nothing else meanwhile) or into a mapping borrowed for `'a` whose bounds
        // were checked; each is at least as long as its iov_len.
        let n = unsafe { libc::readv(fd.as_raw_fd(), self.places.as_ptr(), self.len as i32) };
        Errno::result(n).map(|n| n as usize)
    }
}

/// `count` zeroed 64-bit words of shared memory that live as long as the process (the
/// mapping is never unmapped) and are shared with every process forked after it. Pages are
/// only reserved as they are touched (`MAP_NORESERVE`), so a large table costs nothing
/// until used.
pub(crate) fn lifelong_words(count: usize) -> std::result::Result<&'static [AtomicU64], Errno> {
    let len = count.max(1) * std::mem::size_of::<AtomicU64>();
    // SAFETY: an anonymous mapping with no address hint touches no existing memory; the
    // result is checked against MAP_FAILED before use.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    // SAFETY: the mapping is `len` bytes, page-aligned (so 8-aligned), zero-filled, never
    // unmapped (it lives as long as the process, as the `'static` says), and only ever
    // accessed through atomics, from this and the forked processes.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<AtomicU64>(), count) })
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
