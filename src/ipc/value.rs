//! `Value` and `Array`: numbers and bytes in shared memory, with Python's typecodes.
//!
//! Each element has the size of its C type (`"b"` one byte, `"i"` four, `"d"` eight, ...)
//! in an anonymous shared mapping, and every read and write of an element is one atomic
//! operation of that size. `add` and `compare_exchange` are single atomic steps too, so
//! increments from many processes are never lost; `v.value = v.value + 1` is two steps,
//! and is. `Value(x)` without a typecode is a 64-bit int (`"q"`) or a double (`"d"`).
//!
//! A value stored outside its typecode's range is a `ValueError` (Python's ctypes would
//! keep only the low bits without a word).

use std::rc::Rc;
use std::sync::atomic::Ordering::SeqCst;

use rhai::{Blob, Dynamic, FLOAT, INT};

use super::sync::{AnyLock, RLock};
use crate::convert::type_error;
use crate::error::{Error, ErrorKind, Result};
use crate::sys::shm::Shm;

/// The most elements an `Array` may have.
const MAX_LEN: usize = 1 << 28;

/// A typecode of Python's `array`/`ctypes`: what one element holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Code(u8);

impl Code {
    /// The default for script ints: a 64-bit signed int.
    pub(crate) const INT: Self = Self(b'q');
    /// The default for script floats: a double.
    pub(crate) const FLOAT: Self = Self(b'd');

    /// The typecode named by `name` (`"i"`, `"d"`, `"c"`, ...); `TypeError` for others.
    pub(crate) fn parse(name: &str) -> Result<Self> {
        match name.as_bytes() {
            [c @ (b'c' | b'b' | b'B' | b'h' | b'H' | b'i' | b'I' | b'l' | b'L' | b'q' | b'Q'
            | b'f' | b'd')] => Ok(Self(*c)),
            _ => Err(type_error(format!(
                "bad typecode {name:?} (must be one of c, b, B, h, H, i, I, l, L, q, Q, f, d)"
            ))),
        }
    }

    /// The typecode as a string.
    pub(crate) fn name(self) -> char {
        self.0 as char
    }

    fn size(self) -> usize {
        match self.0 {
            b'c' | b'b' | b'B' => 1,
            b'h' | b'H' => 2,
            b'i' | b'I' | b'f' => 4,
            _ => 8,
        }
    }

    /// Whether elements are bytes (`"c"`, Python's `c_char`).
    pub(crate) fn is_char(self) -> bool {
        self.0 == b'c'
    }

    fn is_float(self) -> bool {
        matches!(self.0, b'f' | b'd')
    }

    /// The ints an int typecode holds, as a script sees them (a script int is 64-bit
    /// signed, so `"Q"` and `"L"` stop at 2^63 - 1).
    fn range(self) -> (INT, INT) {
        match self.0 {
            b'b' => (i8::MIN.into(), i8::MAX.into()),
            b'B' => (0, u8::MAX.into()),
            b'h' => (i16::MIN.into(), i16::MAX.into()),
            b'H' => (0, u16::MAX.into()),
            b'i' => (i32::MIN.into(), i32::MAX.into()),
            b'I' => (0, u32::MAX.into()),
            b'L' | b'Q' => (0, INT::MAX),
            _ => (INT::MIN, INT::MAX),
        }
    }

    fn int_bits(self, n: INT) -> Result<u64> {
        let (min, max) = self.range();
        if n < min || n > max {
            return Err(Error::value(format!(
                "{n} is out of range for typecode '{}' ({min} to {max})",
                self.name()
            )));
        }
        Ok(n as u64 & self.mask())
    }

    fn mask(self) -> u64 {
        match self.size() {
            8 => u64::MAX,
            n => (1u64 << (8 * n)) - 1,
        }
    }

    /// The bits of a script value for this typecode: an int for an int code; an int or a
    /// float for a float code; a one-byte blob, a char or an int 0-255 for `"c"`.
    fn to_bits(self, value: &Dynamic) -> Result<u64> {
        let type_error = |what: &str| {
            type_error(format!(
                "typecode '{}' holds {what}, not {}",
                self.name(),
                crate::convert::type_name(value)
            ))
        };
        if self.is_char() {
            if let Ok(n) = value.as_int() {
                return u8::try_from(n).map(u64::from).map_err(|_| {
                    Error::value(format!("{n} is out of range for typecode 'c' (0 to 255)"))
                });
            }
            if let Ok(c) = value.as_char() {
                return u8::try_from(u32::from(c)).map(u64::from).map_err(|_| {
                    Error::value(format!("{c:?} does not fit in one byte (typecode 'c')"))
                });
            }
            let bytes = bytes_of(value).ok_or_else(|| type_error("one byte"))?;
            return match bytes.as_slice() {
                [b] => Ok(u64::from(*b)),
                _ => Err(Error::value(format!(
                    "typecode 'c' holds one byte, not {}",
                    bytes.len()
                ))),
            };
        }
        if self.is_float() {
            let f = value
                .as_float()
                .or_else(|_| value.as_int().map(|i| i as FLOAT))
                .map_err(|_| type_error("numbers"))?;
            if self.0 == b'd' {
                return Ok(f.to_bits());
            }
            if f.is_finite() && f.abs() > f32::MAX as FLOAT {
                return Err(Error::value(format!(
                    "{f} is out of range for typecode 'f' (a 32-bit float)"
                )));
            }
            return Ok(u64::from((f as f32).to_bits()));
        }
        let n = value.as_int().map_err(|_| type_error("ints"))?;
        self.int_bits(n)
    }

    fn int_of(self, bits: u64) -> INT {
        match self.0 {
            b'b' => bits as u8 as i8 as INT,
            b'h' => bits as u16 as i16 as INT,
            b'i' => bits as u32 as i32 as INT,
            _ => bits as INT,
        }
    }

    fn float_of(self, bits: u64) -> FLOAT {
        if self.0 == b'f' {
            f32::from_bits(bits as u32) as FLOAT
        } else {
            FLOAT::from_bits(bits)
        }
    }

    fn value_of(self, bits: u64) -> Dynamic {
        if self.is_char() {
            Dynamic::from_blob(vec![bits as u8])
        } else if self.is_float() {
            Dynamic::from_float(self.float_of(bits))
        } else {
            Dynamic::from_int(self.int_of(bits))
        }
    }
}

/// Python's repr of bytes: `b'hi\xff'`.
fn bytes_repr(bytes: &[u8]) -> String {
    let mut out = String::from("b'");
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('\'');
    out
}

/// How a value shows inside a `Value(...)` or `Array(...)`.
fn repr(value: &Dynamic) -> String {
    match value.read_lock::<Blob>() {
        Some(bytes) => bytes_repr(&bytes),
        None => value.to_string(),
    }
}

/// The bytes of a blob or a string.
fn bytes_of(value: &Dynamic) -> Option<Blob> {
    if value.is_blob() {
        return value.clone().into_blob().ok();
    }
    value
        .clone()
        .into_immutable_string()
        .ok()
        .map(|s| s.as_bytes().to_vec())
}

/// Elements in shared memory, all of one typecode.
#[derive(Clone)]
struct Words {
    shm: Rc<Shm>,
    code: Code,
    len: usize,
}

impl Words {
    fn new(code: Code, len: usize) -> Result<Self> {
        if len > MAX_LEN {
            return Err(Error::value(format!(
                "a shared Array's length must be from 0 to 2^28, not {len}"
            )));
        }
        Ok(Self {
            shm: Shm::new(len.max(1) * code.size())?,
            code,
            len,
        })
    }

    fn load(&self, i: usize) -> u64 {
        match self.code.size() {
            1 => self.shm.u8(i).load(SeqCst).into(),
            2 => self.shm.u16(i).load(SeqCst).into(),
            4 => self.shm.u32(i).load(SeqCst).into(),
            _ => self.shm.u64(i).load(SeqCst),
        }
    }

    fn store(&self, i: usize, bits: u64) {
        match self.code.size() {
            1 => self.shm.u8(i).store(bits as u8, SeqCst),
            2 => self.shm.u16(i).store(bits as u16, SeqCst),
            4 => self.shm.u32(i).store(bits as u32, SeqCst),
            _ => self.shm.u64(i).store(bits, SeqCst),
        }
    }

    /// Stores `new` if the element holds `old`; the bits found otherwise.
    fn compare_exchange(&self, i: usize, old: u64, new: u64) -> std::result::Result<(), u64> {
        let result = match self.code.size() {
            1 => self
                .shm
                .u8(i)
                .compare_exchange(old as u8, new as u8, SeqCst, SeqCst)
                .map(drop)
                .map_err(u64::from),
            2 => self
                .shm
                .u16(i)
                .compare_exchange(old as u16, new as u16, SeqCst, SeqCst)
                .map(drop)
                .map_err(u64::from),
            4 => self
                .shm
                .u32(i)
                .compare_exchange(old as u32, new as u32, SeqCst, SeqCst)
                .map(drop)
                .map_err(u64::from),
            _ => self
                .shm
                .u64(i)
                .compare_exchange(old, new, SeqCst, SeqCst)
                .map(drop),
        };
        result
    }

    fn get(&self, i: usize) -> Dynamic {
        self.code.value_of(self.load(i))
    }

    fn set(&self, i: usize, value: &Dynamic) -> Result<()> {
        self.store(i, self.code.to_bits(value)?);
        Ok(())
    }

    /// Adds `n` in one atomic step (a compare-and-swap loop); the new value.
    fn add(&self, i: usize, n: &Dynamic) -> Result<Dynamic> {
        let code = self.code;
        if code.is_char() {
            return Err(type_error("add needs a number typecode, not 'c'"));
        }
        let mut old = self.load(i);
        loop {
            let new = if code.is_float() {
                let n = n
                    .as_float()
                    .or_else(|_| n.as_int().map(|i| i as FLOAT))
                    .map_err(|_| {
                        type_error(format!(
                            "add needs a number, not {}",
                            crate::convert::type_name(n)
                        ))
                    })?;
                code.to_bits(&Dynamic::from_float(code.float_of(old) + n))?
            } else {
                let step = n.as_int().map_err(|_| {
                    type_error(format!(
                        "typecode '{}' adds only ints, not {}",
                        code.name(),
                        crate::convert::type_name(n)
                    ))
                })?;
                let sum = code.int_of(old).checked_add(step).ok_or_else(|| {
                    Error::value(format!(
                        "{} + {step} is out of range for typecode '{}'",
                        code.int_of(old),
                        code.name()
                    ))
                })?;
                code.int_bits(sum)?
            };
            match self.compare_exchange(i, old, new) {
                Ok(()) => return Ok(code.value_of(new)),
                Err(now) => old = now,
            }
        }
    }

    fn cas(&self, i: usize, old: &Dynamic, new: &Dynamic) -> Result<bool> {
        let old = self.code.to_bits(old)?;
        let new = self.code.to_bits(new)?;
        Ok(self.compare_exchange(i, old, new).is_ok())
    }
}

/// The lock a synchronized value comes with, from a `lock` option: `true` or `()` for a
/// new `RLock` (the default), `false` for none, or a given `Lock` or `RLock`.
pub(crate) fn lock_option(lock: Option<&Dynamic>) -> Result<Option<AnyLock>> {
    let Some(lock) = lock else {
        return Ok(Some(AnyLock::RLock(RLock::new()?)));
    };
    if lock.is_unit() || lock.as_bool() == Ok(true) {
        return Ok(Some(AnyLock::RLock(RLock::new()?)));
    }
    if lock.as_bool() == Ok(false) {
        return Ok(None);
    }
    if let Some(l) = lock.clone().try_cast::<super::sync::Lock>() {
        return Ok(Some(AnyLock::Lock(l)));
    }
    if let Some(l) = lock.clone().try_cast::<RLock>() {
        return Ok(Some(AnyLock::RLock(l)));
    }
    Err(Error::new(
        ErrorKind::AttributeError,
        format!(
            "the lock option must be true, false, () or a Lock or RLock, not {} (it has no method 'acquire')",
            crate::convert::type_name(lock)
        ),
    ))
}

fn no_lock(what: &str) -> Error {
    Error::new(
        ErrorKind::AttributeError,
        format!("this {what} has no lock (it was made raw, or with lock: false)"),
    )
}

/// Runs `f` holding `lock` (unless this process holds it already).
fn with_lock<R>(lock: Option<&AnyLock>, f: impl FnOnce() -> Result<R>) -> Result<R> {
    match lock {
        Some(lock) if !lock.is_mine() => {
            lock.acquire(None)?;
            let result = f();
            lock.release()?;
            result
        }
        _ => f(),
    }
}

/// A slice of `slice` items takes exactly as many values.
fn same_size(slice: usize, values: i128) -> Result<()> {
    if values == slice as i128 {
        return Ok(());
    }
    Err(Error::value(format!(
        "can only assign a sequence of the same size: the slice has {slice} items, the value {values}"
    )))
}

/// Python's `multiprocessing.Value` (and `RawValue`, with no lock): one shared number or
/// byte.
#[derive(Clone)]
pub(crate) struct SharedValue {
    words: Words,
    lock: Option<AnyLock>,
    /// Made without a typecode: printed as `Value(42)`.
    plain: bool,
}

impl SharedValue {
    /// A shared value starting at `init`, whose kind (int or float) fixes the typecode.
    pub(crate) fn new(init: &Dynamic, lock: Option<AnyLock>) -> Result<Self> {
        let code = if init.is_int() {
            Code::INT
        } else if init.is_float() {
            Code::FLOAT
        } else {
            return Err(type_error(format!(
                    "a shared Value must be an int or a float, not {} (or give a typecode: Value(\"c\", ...))",
                    crate::convert::type_name(init)
                )));
        };
        let mut value = Self::typed(code, Some(init), lock)?;
        value.plain = true;
        Ok(value)
    }

    /// A shared value of typecode `code`, starting at `init` (zero when `None`).
    pub(crate) fn typed(code: Code, init: Option<&Dynamic>, lock: Option<AnyLock>) -> Result<Self> {
        let words = Words::new(code, 1)?;
        if let Some(init) = init {
            words.set(0, init)?;
        }
        Ok(Self {
            words,
            lock,
            plain: false,
        })
    }

    /// The current value.
    pub(crate) fn get(&self) -> Dynamic {
        self.words.get(0)
    }

    /// Stores a new value.
    pub(crate) fn set(&self, value: &Dynamic) -> Result<()> {
        self.words.set(0, value)
    }

    /// Adds `n` in one atomic step; returns the new value.
    pub(crate) fn add(&self, n: &Dynamic) -> Result<Dynamic> {
        self.words.add(0, n)
    }

    /// Stores `new` if the value is `old`, in one atomic step; returns whether it did.
    pub(crate) fn compare_exchange(&self, old: &Dynamic, new: &Dynamic) -> Result<bool> {
        self.words.cas(0, old, new)
    }

    /// The typecode.
    pub(crate) fn code(&self) -> Code {
        self.words.code
    }

    /// The lock that goes with it (Python's `get_lock()`).
    pub(crate) fn lock(&self) -> Result<&AnyLock> {
        self.lock.as_ref().ok_or_else(|| no_lock("Value"))
    }

    /// The same memory without the lock (Python's `get_obj()`).
    pub(crate) fn obj(&self) -> Result<Self> {
        self.lock()?;
        Ok(Self {
            lock: None,
            ..self.clone()
        })
    }

    /// `Value(42)`, `Value('i', 42)` or `RawValue('i', 42)`.
    pub(crate) fn repr(&self) -> String {
        let value = repr(&self.get());
        match (&self.lock, self.plain) {
            (Some(_), true) => format!("Value({value})"),
            (Some(_), false) => format!("Value('{}', {value})", self.code().name()),
            (None, _) => format!("RawValue('{}', {value})", self.code().name()),
        }
    }
}

/// Python's `multiprocessing.Array` (and `RawArray`, with no lock): a fixed-length list of
/// shared numbers or bytes.
#[derive(Clone)]
pub(crate) struct SharedArray {
    words: Words,
    lock: Option<AnyLock>,
    plain: bool,
}

impl SharedArray {
    /// `n` zeros of typecode `code`.
    pub(crate) fn zeros(code: Code, n: INT, lock: Option<AnyLock>) -> Result<Self> {
        let len = usize::try_from(n)
            .ok()
            .filter(|&n| n <= MAX_LEN)
            .ok_or_else(|| {
                Error::value(format!(
                    "a shared Array's length must be from 0 to 2^28, not {n}"
                ))
            })?;
        Ok(Self {
            words: Words::new(code, len)?,
            lock,
            plain: false,
        })
    }

    /// The items of `list`, of typecode `code`.
    pub(crate) fn from_items(code: Code, list: &[Dynamic], lock: Option<AnyLock>) -> Result<Self> {
        let words = Words::new(code, list.len())?;
        for (i, item) in list.iter().enumerate() {
            words.set(i, item)?;
        }
        Ok(Self {
            words,
            lock,
            plain: false,
        })
    }

    /// The numbers of `list`: doubles if any is a float, else 64-bit ints.
    pub(crate) fn from_list(list: &[Dynamic], lock: Option<AnyLock>) -> Result<Self> {
        let mut code = Code::INT;
        for item in list {
            if item.is_float() {
                code = Code::FLOAT;
            } else if !item.is_int() {
                return Err(type_error(format!(
                        "each item of a shared Array must be an int or a float, not {} (or give a typecode)",
                        crate::convert::type_name(item)
                    )));
            }
        }
        let mut array = Self::from_items(code, list, lock)?;
        array.plain = true;
        Ok(array)
    }

    /// `n` 64-bit int zeros (`Array(n)`).
    pub(crate) fn plain_zeros(n: INT, lock: Option<AnyLock>) -> Result<Self> {
        let mut array = Self::zeros(Code::INT, n, lock)?;
        array.plain = true;
        Ok(array)
    }

    /// The number of items.
    pub(crate) fn len(&self) -> usize {
        self.words.len
    }

    /// The typecode.
    pub(crate) fn code(&self) -> Code {
        self.words.code
    }

    fn index(&self, i: INT) -> Result<usize> {
        let len = self.words.len as INT;
        let at = if i < 0 { i + len } else { i };
        if (0..len).contains(&at) {
            Ok(at as usize)
        } else {
            Err(Error::new(
                ErrorKind::IndexError,
                format!("index {i} is out of range for a shared Array of length {len}"),
            ))
        }
    }

    /// Python's slice bounds for `start..end`: negative counts from the end, and both are
    /// clipped to the array.
    fn bounds(&self, start: INT, end: INT) -> (usize, usize) {
        let len = self.words.len as INT;
        let clip = |i: INT| (if i < 0 { i + len } else { i }).clamp(0, len) as usize;
        let (start, end) = (clip(start), clip(end));
        (start, end.max(start))
    }

    /// Item `i` (negative counts from the end).
    pub(crate) fn get(&self, i: INT) -> Result<Dynamic> {
        Ok(self.words.get(self.index(i)?))
    }

    /// Stores item `i`.
    pub(crate) fn set(&self, i: INT, value: &Dynamic) -> Result<()> {
        self.words.set(self.index(i)?, value)
    }

    /// Adds `n` to item `i` atomically; returns the new value.
    pub(crate) fn add(&self, i: INT, n: &Dynamic) -> Result<Dynamic> {
        self.words.add(self.index(i)?, n)
    }

    /// The items `start..end` (Python's `a[start:end]`), read holding the lock: an array,
    /// or a blob for `"c"`.
    pub(crate) fn slice(&self, start: INT, end: INT) -> Result<Dynamic> {
        let (start, end) = self.bounds(start, end);
        with_lock(self.lock.as_ref(), || {
            if self.code().is_char() {
                let bytes: Blob = (start..end).map(|i| self.words.load(i) as u8).collect();
                Ok(Dynamic::from_blob(bytes))
            } else {
                let items: rhai::Array = (start..end).map(|i| self.words.get(i)).collect();
                Ok(Dynamic::from_array(items))
            }
        })
    }

    /// Stores `values` (as many as the slice has items) into `start..end`, holding the lock.
    pub(crate) fn set_slice(&self, start: INT, end: INT, values: &Dynamic) -> Result<()> {
        let (start, end) = self.bounds(start, end);
        let items: Vec<Dynamic> = if values.is_array() {
            values.clone().into_array().unwrap_or_default()
        } else if let Some(range) = values.read_lock::<std::ops::Range<INT>>() {
            let count = (i128::from(range.end) - i128::from(range.start)).max(0);
            same_size(end - start, count)?;
            range.clone().map(Dynamic::from_int).collect()
        } else if let Some(range) = values.read_lock::<std::ops::RangeInclusive<INT>>() {
            let count = (i128::from(*range.end()) - i128::from(*range.start()) + 1).max(0);
            same_size(end - start, count)?;
            range.clone().map(Dynamic::from_int).collect()
        } else if let (true, Some(bytes)) = (self.code().is_char(), bytes_of(values)) {
            bytes
                .into_iter()
                .map(|b| Dynamic::from_int(b.into()))
                .collect()
        } else {
            return Err(type_error(format!(
                "a slice of a shared Array takes an array{}, not {}",
                if self.code().is_char() {
                    ", a blob or a string"
                } else {
                    ""
                },
                crate::convert::type_name(values)
            )));
        };
        same_size(end - start, items.len() as i128)?;
        let bits = items
            .iter()
            .map(|item| self.code().to_bits(item))
            .collect::<Result<Vec<u64>>>()?;
        with_lock(self.lock.as_ref(), || {
            for (i, bits) in (start..end).zip(bits) {
                self.words.store(i, bits);
            }
            Ok(())
        })
    }

    /// A plain (unshared) copy of the items.
    pub(crate) fn to_vec(&self) -> Vec<Dynamic> {
        (0..self.words.len).map(|i| self.words.get(i)).collect()
    }

    fn ensure_char(&self, what: &str) -> Result<()> {
        if self.code().is_char() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::AttributeError,
                format!(
                    "only a char array (typecode 'c') has `{what}`, not one of typecode '{}'",
                    self.code().name()
                ),
            ))
        }
    }

    /// A char array's bytes up to the first zero byte (Python's `.value`).
    pub(crate) fn bytes_value(&self) -> Result<Blob> {
        self.ensure_char("value")?;
        let raw = self.bytes_raw()?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Ok(raw[..end].to_vec())
    }

    /// A char array's bytes, all of them (Python's `.raw`).
    pub(crate) fn bytes_raw(&self) -> Result<Blob> {
        self.ensure_char("raw")?;
        with_lock(self.lock.as_ref(), || {
            Ok((0..self.words.len)
                .map(|i| self.words.load(i) as u8)
                .collect())
        })
    }

    /// Stores `bytes` at the start of a char array, followed by a zero byte if there is
    /// room (`.value = ...`), or not (`.raw = ...`).
    pub(crate) fn set_bytes(&self, value: &Dynamic, terminate: bool) -> Result<()> {
        self.ensure_char(if terminate { "value" } else { "raw" })?;
        let bytes = bytes_of(value).ok_or_else(|| {
            type_error(format!(
                "a char array takes a blob or a string, not {}",
                crate::convert::type_name(value)
            ))
        })?;
        if bytes.len() > self.words.len {
            return Err(Error::value(format!(
                "byte string too long: {} bytes for a char array of {}",
                bytes.len(),
                self.words.len
            )));
        }
        with_lock(self.lock.as_ref(), || {
            for (i, b) in bytes.iter().enumerate() {
                self.words.store(i, u64::from(*b));
            }
            if terminate && bytes.len() < self.words.len {
                self.words.store(bytes.len(), 0);
            }
            Ok(())
        })
    }

    /// The lock that goes with it (Python's `get_lock()`).
    pub(crate) fn lock(&self) -> Result<&AnyLock> {
        self.lock.as_ref().ok_or_else(|| no_lock("Array"))
    }

    /// The same memory without the lock (Python's `get_obj()`).
    pub(crate) fn obj(&self) -> Result<Self> {
        self.lock()?;
        Ok(Self {
            lock: None,
            ..self.clone()
        })
    }

    /// `Array([1, 2, 3])`, `Array('i', [1, 2, 3])`, `Array('c', b'hi')`, `RawArray(...)`.
    pub(crate) fn repr(&self) -> String {
        let items = if self.code().is_char() {
            bytes_repr(
                &(0..self.words.len)
                    .map(|i| self.words.load(i) as u8)
                    .collect::<Blob>(),
            )
        } else {
            let items: Vec<String> = self.to_vec().iter().map(repr).collect();
            format!("[{}]", items.join(", "))
        };
        match (&self.lock, self.plain) {
            (Some(_), true) => format!("Array({items})"),
            (Some(_), false) => format!("Array('{}', {items})", self.code().name()),
            (None, _) => format!("RawArray('{}', {items})", self.code().name()),
        }
    }
}

impl IntoIterator for SharedArray {
    type Item = Dynamic;
    type IntoIter = std::vec::IntoIter<Dynamic>;

    /// A snapshot of the items, for `for x in a { ... }`.
    fn into_iter(self) -> Self::IntoIter {
        self.to_vec().into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typecodes_check_ranges_and_sizes() {
        let b = Code::parse("b").unwrap();
        assert_eq!(b.to_bits(&Dynamic::from_int(-1)).unwrap(), 0xff);
        assert_eq!(b.int_of(0xff), -1);
        assert!(b.to_bits(&Dynamic::from_int(128)).is_err());
        let big = Code::parse("Q").unwrap();
        assert!(big.to_bits(&Dynamic::from_int(-1)).is_err());
        let f = Code::parse("f").unwrap();
        assert!(f.to_bits(&Dynamic::from_float(1e300)).is_err());
        assert_eq!(
            f.float_of(f.to_bits(&Dynamic::from_float(0.5)).unwrap()),
            0.5
        );
        assert!(Code::parse("x").is_err());
        assert!(Code::parse("ii").is_err());
        let c = Code::parse("c").unwrap();
        assert_eq!(c.to_bits(&Dynamic::from_blob(vec![7])).unwrap(), 7);
        assert!(c.to_bits(&Dynamic::from_blob(vec![7, 8])).is_err());
        assert!(Code::parse("i")
            .unwrap()
            .to_bits(&Dynamic::from_float(1.5))
            .is_err());
    }

    #[test]
    fn elements_have_their_c_size_and_add_never_wraps() {
        let a = SharedArray::zeros(Code::parse("h").unwrap(), 3, None).unwrap();
        a.set(1, &Dynamic::from_int(-2)).unwrap();
        assert_eq!(a.words.shm.u16(1).load(SeqCst), 0xfffe);
        assert_eq!(a.get(-2).unwrap().as_int().unwrap(), -2);
        a.set(0, &Dynamic::from_int(32767)).unwrap();
        assert!(a.add(0, &Dynamic::from_int(1)).is_err());
        assert_eq!(a.get(0).unwrap().as_int().unwrap(), 32767);
        assert_eq!(a.bounds(-2, 100), (1, 3));
        assert_eq!(a.bounds(2, 1), (2, 2));
    }
}
