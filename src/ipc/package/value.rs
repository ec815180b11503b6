//! Shared values: `Value`, `RawValue`, `Array`, `RawArray`.

use super::*;
use crate::convert::type_error;

#[export_module]
#[allow(unreachable_pub)]
pub(super) mod value_functions {
    use super::*;

    /// An int or float in shared memory.
    pub type SharedValue = super::SharedValue;
    /// Ints or floats in shared memory.
    pub type SharedArray = super::SharedArray;

    /// A shared int or float (the kind of `init` fixes it: a 64-bit int, typecode `"q"`, or
    /// a double, `"d"`), seen by every process forked after it was made, with an `RLock`
    /// for longer updates (`get_lock()`).
    ///
    /// ```rhai
    /// let hits = Value(0);
    /// let ps = [];
    /// for i in 0..4 { ps.push(spawn { for j in 0..100 { hits.add(1); } }); }
    /// for p in ps { p.join(); }
    /// print(hits.value);   // 400
    /// ```
    #[rhai_fn(name = "Value", return_raw, volatile)]
    pub fn value_new(init: Dynamic) -> RhaiResult<SharedValue> {
        value_with(init, None, None, true)
    }

    /// `Value(typecode, init)`: a value of one of Python's typecodes (`"c"` a byte, `"b"`,
    /// `"B"`, `"h"`, `"H"`, `"i"`, `"I"`, `"l"`, `"L"`, `"q"`, `"Q"` ints of 1 to 8 bytes,
    /// `"f"`, `"d"` floats); or `Value(init, options)`. Options: `#{ lock: false }` for no
    /// lock, `#{ lock: l }` to use the `Lock` or `RLock` `l`.
    ///
    /// ```rhai
    /// let v = Value("i", 7);
    /// let c = Value("c", "x");
    /// let d = Value(1.5, #{ lock: false });
    /// print(v.value);   // 7
    /// print(c.value == "x".to_blob());   // true
    /// print(d.typecode);   // d
    /// ```
    #[rhai_fn(name = "Value", return_raw, volatile)]
    pub fn value_new_2(first: Dynamic, second: Dynamic) -> RhaiResult<SharedValue> {
        if second.is_map() {
            return value_with(first, None, Some(second), true);
        }
        value_with(first, Some(second), None, true)
    }

    /// `Value(typecode, init, options)`.
    ///
    /// ```rhai
    /// let my_lock = Lock();
    /// let v = Value("d", 0.5, #{ lock: my_lock });
    /// with v.get_lock() { v.value *= 4; }
    /// print(v.value);   // 2.0
    /// ```
    #[rhai_fn(name = "Value", return_raw, volatile)]
    pub fn value_new_3(code: Dynamic, init: Dynamic, options: Dynamic) -> RhaiResult<SharedValue> {
        value_with(code, Some(init), Some(options), true)
    }

    /// `RawValue(typecode)`: a shared value of that typecode, zero, with no lock (as
    /// `Value(..., #{ lock: false })`).
    ///
    /// ```rhai
    /// let v = RawValue("h");
    /// v.value = -3;
    /// print(v.value);   // -3
    /// try { v.get_lock(); } catch (e) { print(e.kind); }   // AttributeError
    /// ```
    #[rhai_fn(name = "RawValue", return_raw, volatile)]
    pub fn raw_value_new(code: Dynamic) -> RhaiResult<SharedValue> {
        value_with(code, None, None, false)
    }

    /// `RawValue(typecode, init)`: a shared value with no lock.
    #[rhai_fn(name = "RawValue", return_raw, volatile)]
    pub fn raw_value_new_init(code: Dynamic, init: Dynamic) -> RhaiResult<SharedValue> {
        value_with(code, Some(init), None, false)
    }

    /// The current value (for typecode `"c"`, a one-byte blob).
    #[rhai_fn(get = "value", pure, volatile)]
    pub fn value_get(v: &mut SharedValue) -> Dynamic {
        v.get()
    }

    /// Stores a value: an int into an int typecode, an int or a float into a float one, a
    /// one-byte blob or string, a char or an int 0-255 into `"c"`. Outside the typecode's
    /// range it is a `ValueError`.
    ///
    /// ```rhai
    /// let v = Value("B", 0);
    /// try { v.value = 256; } catch (e) { print(e.kind); }   // ValueError
    /// ```
    #[rhai_fn(set = "value", return_raw, pure, volatile)]
    pub fn value_set(v: &mut SharedValue, value: Dynamic) -> RhaiResult<()> {
        Ok(v.set(&value)?)
    }

    /// Adds `n` in one atomic step and returns the new value; a result outside the
    /// typecode's range is a `ValueError` (and nothing changes).
    #[rhai_fn(name = "add", return_raw, pure, volatile)]
    pub fn value_add(v: &mut SharedValue, n: Dynamic) -> RhaiResult<Dynamic> {
        Ok(v.add(&n)?)
    }

    /// Stores `new` if the value is `old`, in one atomic step; returns whether it did.
    #[rhai_fn(name = "compare_exchange", return_raw, pure, volatile)]
    pub fn value_compare_exchange(
        v: &mut SharedValue,
        old: Dynamic,
        new: Dynamic,
    ) -> RhaiResult<bool> {
        Ok(v.compare_exchange(&old, &new)?)
    }

    /// The typecode, such as `"i"` (`"q"` for `Value(1)`, `"d"` for `Value(1.0)`).
    ///
    /// ```rhai
    /// print(Value(1).typecode);        // q
    /// print(Value("H", 1).typecode);   // H
    /// ```
    #[rhai_fn(get = "typecode", pure)]
    pub fn value_typecode(v: &mut SharedValue) -> String {
        v.code().name().to_string()
    }

    /// The lock that goes with this value (an `RLock`, or the `Lock` given as the `lock`
    /// option), for updates of more than one step. `AttributeError` for a value with no
    /// lock.
    ///
    /// ```rhai
    /// let v = Value(0);
    /// let p = spawn { with v.get_lock() { v.value += 1; } };
    /// p.join();
    /// print(v.value);   // 1
    /// ```
    #[rhai_fn(name = "get_lock", return_raw, pure)]
    pub fn value_get_lock(v: &mut SharedValue) -> RhaiResult<Dynamic> {
        Ok(any_lock(v.lock()?))
    }

    /// The same shared memory without its lock (Python's `get_obj()`): a raw value.
    ///
    /// ```rhai
    /// let v = Value("i", 5);
    /// let raw = v.get_obj();
    /// raw.value = 6;
    /// print(v.value);   // 6
    /// ```
    #[rhai_fn(name = "get_obj", return_raw, pure)]
    pub fn value_get_obj(v: &mut SharedValue) -> RhaiResult<SharedValue> {
        Ok(v.obj()?)
    }

    /// `Value(42)`, `Value('i', 42)`, `RawValue('i', 42)`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn value_to_string(v: &mut SharedValue) -> String {
        v.repr()
    }

    /// A shared array: `Array(n)` is `n` int zeros; `Array(list)` holds the numbers of
    /// `list` (doubles if any is a float, else 64-bit ints).
    ///
    /// ```rhai
    /// let a = Array([1, 2, 3]);
    /// let p = spawn { a[0] = 10; };
    /// p.join();
    /// print(a.to_array());   // [10, 2, 3]
    /// ```
    #[rhai_fn(name = "Array", return_raw, volatile)]
    pub fn array_new(init: Dynamic) -> RhaiResult<SharedArray> {
        array_with(None, init, None, true)
    }

    /// `Array(typecode, size_or_items)`: `size` zeros, or the items of an array, a range,
    /// or (for `"c"`) a blob or string; or `Array(size_or_list, options)`. Options:
    /// `#{ lock: false }`, `#{ lock: l }`.
    ///
    /// ```rhai
    /// let a = Array("i", 5);
    /// let d = Array("d", [0.5, 1, 2]);
    /// let s = Array("c", "hello");
    /// a[1..3] = [7, 8];
    /// print(a[0..4]);   // [0, 7, 8, 0]
    /// print(d[-1]);     // 2.0
    /// print(s.value == "hello".to_blob());   // true
    /// ```
    #[rhai_fn(name = "Array", return_raw, volatile)]
    pub fn array_new_2(first: Dynamic, second: Dynamic) -> RhaiResult<SharedArray> {
        if second.is_map() {
            return array_with(None, first, Some(second), true);
        }
        array_with(Some(first), second, None, true)
    }

    /// `Array(typecode, size_or_items, options)`.
    ///
    /// ```rhai
    /// let a = Array("b", [1, -2, 3], #{ lock: false });
    /// print(a);   // RawArray('b', [1, -2, 3])
    /// ```
    #[rhai_fn(name = "Array", return_raw, volatile)]
    pub fn array_new_3(code: Dynamic, init: Dynamic, options: Dynamic) -> RhaiResult<SharedArray> {
        array_with(Some(code), init, Some(options), true)
    }

    /// `RawArray(typecode, size_or_items)`: a shared array with no lock.
    ///
    /// ```rhai
    /// let a = RawArray("H", [1, 2, 3]);
    /// print(a[1..3]);   // [2, 3]
    /// ```
    #[rhai_fn(name = "RawArray", return_raw, volatile)]
    pub fn raw_array_new(code: Dynamic, init: Dynamic) -> RhaiResult<SharedArray> {
        array_with(Some(code), init, None, false)
    }

    /// Item `i` (negative counts from the end); out of range is an `IndexError`.
    #[rhai_fn(index_get, return_raw, pure, volatile)]
    pub fn array_get(a: &mut SharedArray, i: INT) -> RhaiResult<Dynamic> {
        Ok(a.get(i)?)
    }

    /// Stores item `i`.
    #[rhai_fn(index_set, return_raw, volatile)]
    pub fn array_set(a: &mut SharedArray, i: INT, value: Dynamic) -> RhaiResult<()> {
        Ok(a.set(i, &value)?)
    }

    /// The items `start..end` as Python's `a[start:end]`: negative bounds count from the
    /// end, bounds past the ends are clipped. An array (a blob for `"c"`), read holding
    /// the lock.
    ///
    /// ```rhai
    /// let a = Array("i", [1, 2, 3, 4, 5]);
    /// print(a[1..3]);    // [2, 3]
    /// print(a[-2..5]);   // [4, 5]
    /// ```
    #[rhai_fn(index_get, return_raw, pure, volatile)]
    pub fn array_get_range(a: &mut SharedArray, range: ExclusiveRange) -> RhaiResult<Dynamic> {
        Ok(a.slice(range.start, range.end)?)
    }

    /// The items `start..=end` (a negative `end` counts from the end, `-1` the last).
    ///
    /// ```rhai
    /// let a = Array("i", [1, 2, 3, 4]);
    /// print(a[1..=2]);     // [2, 3]
    /// print(a[-2..=-1]);   // [3, 4]
    /// ```
    #[rhai_fn(index_get, return_raw, pure, volatile)]
    pub fn array_get_range_inclusive(
        a: &mut SharedArray,
        range: InclusiveRange,
    ) -> RhaiResult<Dynamic> {
        Ok(a.slice(*range.start(), inclusive_end(*range.end(), a.len()))?)
    }

    /// Stores as many values as the slice `start..end` has items (else `ValueError`), in
    /// one step under the lock.
    ///
    /// ```rhai
    /// let a = Array("i", 4);
    /// a[0..2] = [5, 6];
    /// a[-2..4] = [7, 8];
    /// print(a.to_array());   // [5, 6, 7, 8]
    /// ```
    #[rhai_fn(index_set, return_raw, volatile)]
    pub fn array_set_range(
        a: &mut SharedArray,
        range: ExclusiveRange,
        values: Dynamic,
    ) -> RhaiResult<()> {
        Ok(a.set_slice(range.start, range.end, &values)?)
    }

    /// Stores the slice `start..=end`.
    ///
    /// ```rhai
    /// let a = Array("i", 3);
    /// a[0..=1] = [4, 5];
    /// print(a.to_array());   // [4, 5, 0]
    /// ```
    #[rhai_fn(index_set, return_raw, volatile)]
    pub fn array_set_range_inclusive(
        a: &mut SharedArray,
        range: InclusiveRange,
        values: Dynamic,
    ) -> RhaiResult<()> {
        let end = inclusive_end(*range.end(), a.len());
        Ok(a.set_slice(*range.start(), end, &values)?)
    }

    /// Adds `n` to item `i` in one atomic step; returns the new value.
    #[rhai_fn(name = "add", return_raw, pure, volatile)]
    pub fn array_add(a: &mut SharedArray, i: INT, n: Dynamic) -> RhaiResult<Dynamic> {
        Ok(a.add(i, &n)?)
    }

    /// The number of items.
    #[rhai_fn(name = "len", pure)]
    pub fn array_len(a: &mut SharedArray) -> INT {
        a.len() as INT
    }

    /// The typecode, such as `"i"`.
    ///
    /// ```rhai
    /// print(Array("f", 2).typecode);   // f
    /// ```
    #[rhai_fn(get = "typecode", pure)]
    pub fn array_typecode(a: &mut SharedArray) -> String {
        a.code().name().to_string()
    }

    /// A plain (unshared) array with the items' current values.
    #[rhai_fn(name = "to_array", pure, volatile)]
    pub fn array_to_array(a: &mut SharedArray) -> Array {
        a.to_vec()
    }

    /// A char array's bytes up to the first zero byte (Python's `.value`).
    ///
    /// ```rhai
    /// let s = Array("c", 8);
    /// s.value = "hi";
    /// print(s.value.len());   // 2
    /// print(s.raw.len());     // 8
    /// ```
    #[rhai_fn(get = "value", return_raw, pure, volatile)]
    pub fn array_value(a: &mut SharedArray) -> RhaiResult<Blob> {
        Ok(a.bytes_value()?)
    }

    /// Stores bytes (a blob or a string) at the start of a char array, then a zero byte if
    /// there is room; more bytes than the array holds is a `ValueError`.
    #[rhai_fn(set = "value", return_raw, pure, volatile)]
    pub fn array_set_value(a: &mut SharedArray, value: Dynamic) -> RhaiResult<()> {
        Ok(a.set_bytes(&value, true)?)
    }

    /// All the bytes of a char array (Python's `.raw`).
    #[rhai_fn(get = "raw", return_raw, pure, volatile)]
    pub fn array_raw(a: &mut SharedArray) -> RhaiResult<Blob> {
        Ok(a.bytes_raw()?)
    }

    /// Stores bytes at the start of a char array, without a zero byte after them.
    #[rhai_fn(set = "raw", return_raw, pure, volatile)]
    pub fn array_set_raw(a: &mut SharedArray, value: Dynamic) -> RhaiResult<()> {
        Ok(a.set_bytes(&value, false)?)
    }

    /// The lock that goes with this array (`AttributeError` for one with no lock).
    #[rhai_fn(name = "get_lock", return_raw, pure)]
    pub fn array_get_lock(a: &mut SharedArray) -> RhaiResult<Dynamic> {
        Ok(any_lock(a.lock()?))
    }

    /// The same shared memory without its lock (Python's `get_obj()`).
    ///
    /// ```rhai
    /// let a = Array("i", 3);
    /// let raw = a.get_obj();
    /// raw[0] = 9;
    /// print(a[0]);   // 9
    /// ```
    #[rhai_fn(name = "get_obj", return_raw, pure)]
    pub fn array_get_obj(a: &mut SharedArray) -> RhaiResult<SharedArray> {
        Ok(a.obj()?)
    }

    /// `Array([1, 2, 3])`, `Array('i', [1, 2, 3])`, `Array('c', b'hi')`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn array_to_string(a: &mut SharedArray) -> String {
        a.repr()
    }
}

/// A `Lock` or `RLock` as a script value.
fn any_lock(lock: &AnyLock) -> Dynamic {
    match lock {
        AnyLock::Lock(l) => Dynamic::from(l.clone()),
        AnyLock::RLock(l) => Dynamic::from(l.clone()),
    }
}

/// A typecode argument.
fn typecode(code: &Dynamic) -> Result<Code, Error> {
    match code.clone().into_immutable_string() {
        Ok(name) => Code::parse(&name),
        Err(_) => Err(type_error(format!(
            "a typecode is a string such as \"i\" or \"d\", not {}",
            crate::convert::type_name(code)
        ))),
    }
}

/// The lock of a synchronized value from its options map (`None`: no options); `raw`
/// values take no options and have no lock.
fn lock_from(options: Option<Dynamic>, raw: bool) -> Result<Option<AnyLock>, Error> {
    if raw {
        return Ok(None);
    }
    let Some(options) = options else {
        return lock_option(None);
    };
    let type_name = crate::convert::type_name(&options);
    let map = options.try_cast::<rhai::Map>().ok_or_else(|| {
        type_error(format!(
            "the options of a Value or Array are a map such as #{{ lock: false }}, not {type_name}"
        ))
    })?;
    if let Some(key) = map.keys().find(|k| k.as_str() != "lock") {
        return Err(type_error(format!(
            "unknown option `{key}` (a Value or Array takes `lock`)"
        )));
    }
    lock_option(map.get("lock"))
}

fn value_with(
    first: Dynamic,
    init: Option<Dynamic>,
    options: Option<Dynamic>,
    synchronized: bool,
) -> RhaiResult<SharedValue> {
    let lock = lock_from(options, !synchronized)?;
    if first.is_string() || !synchronized {
        let code = typecode(&first)?;
        return Ok(SharedValue::typed(code, init.as_ref(), lock)?);
    }
    if init.is_some() {
        return Err(type_error(format!(
            "Value(typecode, init) takes a typecode string first, not {}",
            crate::convert::type_name(&first)
        ))
        .into());
    }
    Ok(SharedValue::new(&first, lock)?)
}

/// The items an `Array(typecode, ...)` starts with, or its size.
enum Init {
    Size(INT),
    Items(Vec<Dynamic>),
}

fn array_init(code: Code, init: Dynamic) -> Result<Init, Error> {
    if let Ok(n) = init.as_int() {
        return Ok(Init::Size(n));
    }
    let too_long = |n: i128| {
        Error::value(format!(
            "a shared Array's length must be from 0 to 2^28, not {n}"
        ))
    };
    if let Some(range) = init.clone().try_cast::<ExclusiveRange>() {
        let len = (i128::from(range.end) - i128::from(range.start)).max(0);
        if len > 1 << 28 {
            return Err(too_long(len));
        }
        return Ok(Init::Items(range.map(Dynamic::from_int).collect()));
    }
    if let Some(range) = init.clone().try_cast::<InclusiveRange>() {
        let len = (i128::from(*range.end()) - i128::from(*range.start()) + 1).max(0);
        if len > 1 << 28 {
            return Err(too_long(len));
        }
        return Ok(Init::Items(range.map(Dynamic::from_int).collect()));
    }
    if init.is_blob() || (code.is_char() && init.is_string()) {
        let bytes: Blob = if init.is_blob() {
            init.into_blob().unwrap_or_default()
        } else {
            init.into_immutable_string()
                .map(|s| s.as_bytes().to_vec())
                .unwrap_or_default()
        };
        return Ok(Init::Items(
            bytes
                .into_iter()
                .map(|b| Dynamic::from_int(b.into()))
                .collect(),
        ));
    }
    let type_name = crate::convert::type_name(&init);
    init.try_cast::<Array>().map(Init::Items).ok_or_else(|| {
        type_error(format!("Array(typecode, ...) takes a size, an array, a range, a blob or a string, not {type_name}"))
    })
}

fn array_with(
    code: Option<Dynamic>,
    init: Dynamic,
    options: Option<Dynamic>,
    synchronized: bool,
) -> RhaiResult<SharedArray> {
    let lock = lock_from(options, !synchronized)?;
    if let Some(code) = code {
        let code = typecode(&code)?;
        return Ok(match array_init(code, init)? {
            Init::Size(n) => SharedArray::zeros(code, n, lock)?,
            Init::Items(items) => SharedArray::from_items(code, &items, lock)?,
        });
    }
    let type_name = crate::convert::type_name(&init);
    if let Ok(n) = init.as_int() {
        return Ok(SharedArray::plain_zeros(n, lock)?);
    }
    if init.is_string() {
        // `Array("i")`: a typecode without a size.
        typecode(&init)?;
        return Err(
            type_error("Array(typecode) needs a size or items too: Array(\"i\", 10)").into(),
        );
    }
    match init.try_cast::<Array>() {
        Some(list) => Ok(SharedArray::from_list(&list, lock)?),
        None => Err(type_error(format!(
            "Array(...) takes a length or a list of numbers, not {type_name}"
        ))
        .into()),
    }
}

/// The exclusive end of the inclusive slice `..=end`, Python-style for a negative `end`.
fn inclusive_end(end: INT, len: usize) -> INT {
    if end < 0 {
        end.saturating_add(len as INT).saturating_add(1)
    } else {
        end.saturating_add(1)
    }
}
