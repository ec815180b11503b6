//! `Value(x)` and `Array(...)`: ints or floats in shared memory.
//!
//! Each element is one 64-bit word of an anonymous shared mapping, read and written with
//! atomic operations: an int as itself, a float as its IEEE bits. `add` and
//! `compare_exchange` are single atomic steps, so increments from many processes are never
//! lost; `v.value = v.value + 1` is two steps, and is.

use std::rc::Rc;
use std::sync::atomic::{AtomicI64, Ordering::SeqCst};

use rhai::{Dynamic, FLOAT, INT};

use super::shm::Shm;
use super::sync::RLock;
use crate::error::{Error, ErrorKind, Result};

/// What the words hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 64-bit signed integers.
    Int,
    /// 64-bit floats.
    Float,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Int => "int",
            Self::Float => "float",
        }
    }

    /// The word for a script value: an int for an int array, an int or a float for a float
    /// array (as Python's ctypes converts).
    fn to_word(self, value: &Dynamic) -> Result<i64> {
        match self {
            Self::Int => value.as_int().map_err(|t| {
                Error::new(
                    ErrorKind::TypeError,
                    format!("a shared int holds only ints, not {t}"),
                )
            }),
            Self::Float => {
                let f = value
                    .as_float()
                    .or_else(|_| value.as_int().map(|i| i as FLOAT))
                    .map_err(|t| {
                        Error::new(
                            ErrorKind::TypeError,
                            format!("a shared float holds only numbers, not {t}"),
                        )
                    })?;
                Ok(f.to_bits() as i64)
            }
        }
    }

    fn word_value(self, word: i64) -> Dynamic {
        match self {
            Self::Int => Dynamic::from_int(word as INT),
            Self::Float => Dynamic::from_float(FLOAT::from_bits(word as u64)),
        }
    }

    /// The kind of a script number.
    fn of(value: &Dynamic, what: &str) -> Result<Self> {
        if value.is_int() {
            Ok(Self::Int)
        } else if value.is_float() {
            Ok(Self::Float)
        } else {
            Err(Error::new(
                ErrorKind::TypeError,
                format!(
                    "{what} must be an int or a float, not {}",
                    crate::error::type_name(value)
                ),
            ))
        }
    }
}

/// Words in shared memory, all of one kind.
#[derive(Clone)]
struct Words {
    shm: Rc<Shm>,
    kind: Kind,
    len: usize,
}

impl Words {
    fn new(kind: Kind, len: usize) -> Result<Self> {
        Ok(Self {
            shm: Shm::new(len.max(1) * 8)?,
            kind,
            len,
        })
    }

    fn word(&self, i: usize) -> &AtomicI64 {
        self.shm.i64(i)
    }

    fn get(&self, i: usize) -> Dynamic {
        self.kind.word_value(self.word(i).load(SeqCst))
    }

    fn set(&self, i: usize, value: &Dynamic) -> Result<()> {
        self.word(i).store(self.kind.to_word(value)?, SeqCst);
        Ok(())
    }

    fn add(&self, i: usize, n: &Dynamic) -> Result<Dynamic> {
        let word = self.word(i);
        match self.kind {
            Kind::Int => {
                let n = self.kind.to_word(n)?;
                Ok(Dynamic::from_int(word.fetch_add(n, SeqCst).wrapping_add(n)))
            }
            Kind::Float => {
                let n = FLOAT::from_bits(self.kind.to_word(n)? as u64);
                let mut old = word.load(SeqCst);
                loop {
                    let new = (FLOAT::from_bits(old as u64) + n).to_bits() as i64;
                    match word.compare_exchange(old, new, SeqCst, SeqCst) {
                        Ok(_) => return Ok(Dynamic::from_float(FLOAT::from_bits(new as u64))),
                        Err(now) => old = now,
                    }
                }
            }
        }
    }

    fn compare_exchange(&self, i: usize, old: &Dynamic, new: &Dynamic) -> Result<bool> {
        let old = self.kind.to_word(old)?;
        let new = self.kind.to_word(new)?;
        Ok(self
            .word(i)
            .compare_exchange(old, new, SeqCst, SeqCst)
            .is_ok())
    }
}

/// Python's `multiprocessing.Value`: one shared int or float, with an `RLock` of its own
/// for updates longer than one step (`get_lock()`).
#[derive(Clone)]
pub struct SharedValue(Words, RLock);

impl SharedValue {
    /// A shared value starting at `init` (an int or a float, which fixes its kind).
    pub fn new(init: &Dynamic) -> Result<Self> {
        let words = Words::new(Kind::of(init, "a shared Value")?, 1)?;
        words.set(0, init)?;
        Ok(Self(words, RLock::new()?))
    }

    /// The current value.
    pub fn get(&self) -> Dynamic {
        self.0.get(0)
    }

    /// Stores a new value.
    pub fn set(&self, value: &Dynamic) -> Result<()> {
        self.0.set(0, value)
    }

    /// Adds `n` in one atomic step; returns the new value.
    pub fn add(&self, n: &Dynamic) -> Result<Dynamic> {
        self.0.add(0, n)
    }

    /// Stores `new` if the value is `old`, in one atomic step; returns whether it did.
    pub fn compare_exchange(&self, old: &Dynamic, new: &Dynamic) -> Result<bool> {
        self.0.compare_exchange(0, old, new)
    }

    /// `"int"` or `"float"`.
    pub fn kind(&self) -> &'static str {
        self.0.kind.name()
    }

    /// The lock that goes with it (Python's `get_lock()`).
    pub fn lock(&self) -> &RLock {
        &self.1
    }
}

/// Python's `multiprocessing.Array`: a fixed-length list of shared ints or floats, with an
/// `RLock` of its own (`get_lock()`).
#[derive(Clone)]
pub struct SharedArray(Words, RLock);

impl SharedArray {
    /// `n` zeros (ints).
    pub fn zeros(n: INT) -> Result<Self> {
        let len = usize::try_from(n)
            .ok()
            .filter(|&n| n <= 1 << 28)
            .ok_or_else(|| {
                Error::value(format!(
                    "a shared Array's length must be from 0 to 2^28, not {n}"
                ))
            })?;
        Ok(Self(Words::new(Kind::Int, len)?, RLock::new()?))
    }

    /// The values of `list`: floats if any is a float, else ints.
    pub fn from_list(list: &[Dynamic]) -> Result<Self> {
        let mut kind = Kind::Int;
        for item in list {
            if Kind::of(item, "each item of a shared Array")? == Kind::Float {
                kind = Kind::Float;
            }
        }
        let words = Words::new(kind, list.len())?;
        for (i, item) in list.iter().enumerate() {
            words.set(i, item)?;
        }
        Ok(Self(words, RLock::new()?))
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.0.len
    }

    /// Whether it has no items.
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    fn index(&self, i: INT) -> Result<usize> {
        let len = self.0.len as INT;
        let at = if i < 0 { i + len } else { i };
        if (0..len).contains(&at) {
            Ok(at as usize)
        } else {
            Err(Error::value(format!(
                "index {i} is out of range for a shared Array of length {len}"
            )))
        }
    }

    /// Item `i` (negative counts from the end).
    pub fn get(&self, i: INT) -> Result<Dynamic> {
        Ok(self.0.get(self.index(i)?))
    }

    /// Stores item `i`.
    pub fn set(&self, i: INT, value: &Dynamic) -> Result<()> {
        self.0.set(self.index(i)?, value)
    }

    /// Adds `n` to item `i` atomically; returns the new value.
    pub fn add(&self, i: INT, n: &Dynamic) -> Result<Dynamic> {
        self.0.add(self.index(i)?, n)
    }

    /// A plain (unshared) copy of the items.
    pub fn to_vec(&self) -> Vec<Dynamic> {
        (0..self.0.len).map(|i| self.0.get(i)).collect()
    }

    /// `"int"` or `"float"`.
    pub fn kind(&self) -> &'static str {
        self.0.kind.name()
    }

    /// The lock that goes with it (Python's `get_lock()`).
    pub fn lock(&self) -> &RLock {
        &self.1
    }
}
