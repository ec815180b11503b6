//! Python's names for the everyday things a tutorial's reader types first: `print(a, b)`,
//! `str`, `int`, `float`, `len`, `range`, `list`, `time`, `strip`, `", ".join(...)`, and
//! Python's text for bytes (`b'hi\xff'`) and for `()` (`None`).
//!
//! Glue only: conversions between script values, no system calls beyond the clocks.

pub(crate) mod format;

use rhai::def_package;
use rhai::plugin::*;
use rhai::FuncRegistration;
use rhai::{Array, Blob, Dynamic, ImmutableString, NativeCallContext, FLOAT, INT};

use crate::convert::{as_array, type_error, type_name, ExclusiveRange, InclusiveRange};
use crate::error::{Error, ErrorKind, RhaiResult};

def_package! {
    /// Python's builtins that a tutorial's reader types first: `print(a, b, ...)`, `str`,
    /// `int`, `float`, `len`, `range`, `list`, `time`, `monotonic`, `strip`, `join`; blobs
    /// print as Python's bytes (`b'hi'`) and `()` as `None`.
    pub BuiltinsPackage(lib) {
        combine_with_exported_module!(lib, "builtins", builtin_functions);
        register_print(lib);
    }
}

/// Python's `repr()` of bytes: `b'hello'`, with `\n`, `\r`, `\t`, `\\`, `\xNN` escapes, in
/// single quotes unless the bytes hold a `'` and no `"` (then in double quotes, as Python).
pub(crate) fn bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(bytes.len() + 3);
    out.push('b');
    out.push(quote);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\'' if quote == '\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

/// What `()` prints as: Python's `None`.
pub(crate) const NONE_TEXT: &str = "None";

/// A value as `print` and `str()` show it: strings as they are, everything else through the
/// script-visible `to_string` (so a process prints as `<Process ...>`, a blob as `b'...'`).
pub(crate) fn to_text(ctx: &NativeCallContext, value: &mut Dynamic) -> String {
    if let Some(text) = value.read_lock::<ImmutableString>() {
        return text.to_string();
    }
    match ctx.call_native_fn_raw("to_string", true, &mut [value]) {
        Ok(text) if text.is_string() => text.into_string().unwrap_or_default(),
        _ => crate::convert::without_rust_paths(&value.to_string()).into_owned(),
    }
}

/// The items of anything a `for` loop can walk (arrays, ranges, stepped ranges, strings,
/// blobs), or the keys of a map, as Python's `list()` gives them.
pub(crate) fn list_of(ctx: &NativeCallContext, value: Dynamic) -> Result<Array, Error> {
    let shown = type_name(&value);
    crate::convert::items(ctx, value, u64::MAX, true).map_err(|_| {
        type_error(format!(
            "list() takes something a `for` loop can walk (an array, a range, a \
             string, a blob) or a map, not {shown}"
        ))
    })
}

/// The length of a range, 0 when empty.
fn range_len(start: INT, end: INT) -> INT {
    end.saturating_sub(start).max(0)
}

/// Python's indexing of a range: negative indices count from the end.
fn range_item(start: INT, len: INT, index: INT) -> Result<INT, Error> {
    let at = if index < 0 { len + index } else { index };
    if at < 0 || at >= len {
        return Err(Error::new(
            ErrorKind::IndexError,
            format!("range index {index} out of range (length {len})"),
        ));
    }
    Ok(start + at)
}

/// Python's `int()` of a string: surrounding whitespace and `_` between digits allowed.
fn parse_int(text: &str, base: u32) -> Result<INT, Error> {
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let digits = match base {
        16 => digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
            .unwrap_or(digits),
        8 => digits
            .strip_prefix("0o")
            .or_else(|| digits.strip_prefix("0O"))
            .unwrap_or(digits),
        2 => digits
            .strip_prefix("0b")
            .or_else(|| digits.strip_prefix("0B"))
            .unwrap_or(digits),
        _ => digits,
    };
    let bad = || {
        Error::value(format!(
            "invalid literal for int() with base {base}: {trimmed:?}"
        ))
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || digits.starts_with(['+', '-'])
    {
        return Err(bad());
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let magnitude = u64::from_str_radix(&clean, base).map_err(|_| bad())?;
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        INT::try_from(magnitude).ok()
    };
    value.ok_or_else(|| Error::value(format!("int({trimmed:?}) does not fit in a 64-bit integer")))
}

/// Python's `float()` of a string: also `inf`, `-inf`, `nan`, `infinity`.
fn parse_float(text: &str) -> Result<FLOAT, Error> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let sign = if lower.starts_with('-') { -1.0 } else { 1.0 };
    match unsigned {
        "inf" | "infinity" => return Ok(sign * FLOAT::INFINITY),
        "nan" => return Ok(FLOAT::NAN),
        _ => {}
    }
    if unsigned.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(Error::value(format!(
            "could not convert string to float: {trimmed:?}"
        )));
    }
    trimmed
        .replace('_', "")
        .parse::<FLOAT>()
        .map_err(|_| Error::value(format!("could not convert string to float: {trimmed:?}")))
}

fn seconds_since(clock: nix::time::ClockId) -> FLOAT {
    nix::time::clock_gettime(clock).map_or(0.0, |t| {
        t.tv_sec() as FLOAT + t.tv_nsec() as FLOAT / 1_000_000_000.0
    })
}

/// `values` on one line, joined by one space, as Python's `print(a, b)` shows them.
fn join_texts<const N: usize>(ctx: &NativeCallContext, mut values: [Dynamic; N]) -> String {
    let texts: Vec<String> = values.iter_mut().map(|v| to_text(ctx, v)).collect();
    texts.join(" ")
}

/// The documentation of `print(a, b)`; the overloads with more values say how many.
const PRINT_DOC: &str = "\
/// Prints the values on one line, joined by one space, as Python's `print(a, b)`.
/// Strings print as they are; other values as `str(x)` shows them (a blob as `b'...'`,
/// `()` as `None`). Up to 8 values; one value prints as Rhai's own `print(x)`.
///
/// ```rhai
/// print(getpid(), getppid());       // 4242 4241
/// print(\"got\", \"hi\".encode().len(), \"bytes\");   // got 2 bytes
/// ```";

/// `print(a, b, ...)` with 2 to 8 values (Rhai's own takes one), as Python's `print`: one
/// registration per count, each the same function of its values.
fn register_print(lib: &mut Module) {
    const NAMES: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
    const COUNTS: [&str; 7] = ["two", "three", "four", "five", "six", "seven", "eight"];
    let print = |n: usize| {
        let mut params: Vec<String> = NAMES[..n].iter().map(|p| format!("{p}: Dynamic")).collect();
        params.push("String".into());
        let doc = match n {
            2 => PRINT_DOC.to_string(),
            _ => format!("/// `print` with {} values.", COUNTS[n - 2]),
        };
        FuncRegistration::new("print")
            .with_params_info(params)
            .with_comments([doc])
    };
    type D = Dynamic;
    type C<'a> = NativeCallContext<'a>;
    print(2).set_into_module(lib, |x: C, a: D, b: D| join_texts(&x, [a, b]));
    print(3).set_into_module(lib, |x: C, a: D, b: D, c: D| join_texts(&x, [a, b, c]));
    print(4).set_into_module(lib, |x: C, a: D, b: D, c: D, d: D| {
        join_texts(&x, [a, b, c, d])
    });
    print(5).set_into_module(lib, |x: C, a: D, b: D, c: D, d: D, e: D| {
        join_texts(&x, [a, b, c, d, e])
    });
    print(6).set_into_module(lib, |x: C, a: D, b: D, c: D, d: D, e: D, f: D| {
        join_texts(&x, [a, b, c, d, e, f])
    });
    print(7).set_into_module(lib, |x: C, a: D, b: D, c: D, d: D, e: D, f: D, g: D| {
        join_texts(&x, [a, b, c, d, e, f, g])
    });
    print(8).set_into_module(
        lib,
        |x: C, a: D, b: D, c: D, d: D, e: D, f: D, g: D, h: D| {
            join_texts(&x, [a, b, c, d, e, f, g, h])
        },
    );
}

/// Python's `strip(chars)`: which characters go.
fn strip_set(chars: &str) -> impl Fn(char) -> bool + '_ {
    move |c| chars.contains(c)
}

#[export_module]
#[allow(unreachable_pub)]
mod builtin_functions {
    use super::*;

    /// A blob as Python shows bytes: `b'hello there'`, with `\xff`, `\n`, `\\` and `\'`
    /// escapes. `print(b)`, `` `${b}` `` and `b.to_string()` all show it so.
    ///
    /// ```rhai
    /// let b = "hello there\n".encode();
    /// print(b);                 // b'hello there\n'
    /// print(`got ${b.upper()}`); // got b'HELLO THERE\n'
    /// ```
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn blob_to_string(blob: &mut Blob) -> String {
        bytes_repr(blob)
    }

    /// `()` is Python's `None`, and prints as `None`: `print(())`, `print("x", ())`,
    /// `` `${x}` `` when `x` is `()`, `str(())`, and inside arrays and maps. (Joining with
    /// `+` keeps Rhai's rule: `"a" + ()` is `"a"`.)
    ///
    /// ```rhai
    /// let p = Process(|| 0);
    /// print(p.pid);            // None: not started yet
    /// print([1, ()]);          // [1, None]
    /// ```
    #[rhai_fn(name = "to_string", name = "print", name = "to_debug", name = "debug")]
    pub fn unit_to_string(unit: ()) -> String {
        let () = unit;
        NONE_TEXT.into()
    }

    /// Seconds since the Unix epoch, as a float (Python's `time.time()`).
    ///
    /// ```rhai
    /// print(time() > 1.7e9);   // true
    /// ```
    #[rhai_fn(volatile)]
    pub fn time() -> FLOAT {
        seconds_since(nix::time::ClockId::CLOCK_REALTIME)
    }

    /// Seconds on a clock that never goes back, from an unspecified start (Python's
    /// `time.monotonic()`): subtract two readings to time something.
    ///
    /// ```rhai
    /// let t0 = monotonic();
    /// sleep(0.05);
    /// print(monotonic() - t0 >= 0.05);   // true
    /// ```
    #[rhai_fn(volatile)]
    pub fn monotonic() -> FLOAT {
        seconds_since(nix::time::ClockId::CLOCK_MONOTONIC)
    }

    /// The same clock as `monotonic()` (Python's `time.perf_counter()`, which on Linux
    /// reads it too), for timing code.
    ///
    /// ```rhai
    /// let t0 = perf_counter();
    /// let p = spawn exit(0);
    /// p.join();
    /// print(`a spawn and join took ${perf_counter() - t0} s`);
    /// ```
    #[rhai_fn(volatile)]
    pub fn perf_counter() -> FLOAT {
        seconds_since(nix::time::ClockId::CLOCK_MONOTONIC)
    }

    /// A copy without leading and trailing whitespace (Python's `s.strip()`). Rhai's own
    /// `trim()` changes the string in place and returns `()`.
    ///
    /// ```rhai
    /// let line = "  hello \n";
    /// print(`[${line.strip()}]`);   // [hello]
    /// ```
    #[rhai_fn(name = "strip", pure)]
    pub fn strip(s: &mut ImmutableString) -> String {
        s.trim().to_string()
    }

    /// A copy without any of the characters in `chars` at either end.
    ///
    /// ```rhai
    /// print("xxhixx".strip("x"));   // hi
    /// ```
    #[rhai_fn(name = "strip", pure)]
    pub fn strip_chars(s: &mut ImmutableString, chars: &str) -> String {
        s.trim_matches(strip_set(chars)).to_string()
    }

    /// A copy without leading whitespace (Python's `s.lstrip()`).
    #[rhai_fn(name = "lstrip", pure)]
    pub fn lstrip(s: &mut ImmutableString) -> String {
        s.trim_start().to_string()
    }

    /// A copy without any of the characters in `chars` at the start.
    #[rhai_fn(name = "lstrip", pure)]
    pub fn lstrip_chars(s: &mut ImmutableString, chars: &str) -> String {
        s.trim_start_matches(strip_set(chars)).to_string()
    }

    /// A copy without trailing whitespace (Python's `s.rstrip()`), such as a line's newline.
    ///
    /// ```rhai
    /// print("line\n".rstrip().len());   // 4
    /// ```
    #[rhai_fn(name = "rstrip", pure)]
    pub fn rstrip(s: &mut ImmutableString) -> String {
        s.trim_end().to_string()
    }

    /// A copy without any of the characters in `chars` at the end.
    #[rhai_fn(name = "rstrip", pure)]
    pub fn rstrip_chars(s: &mut ImmutableString, chars: &str) -> String {
        s.trim_end_matches(strip_set(chars)).to_string()
    }

    /// Whether the string starts with `prefix` (Python's name for Rhai's `starts_with`).
    #[rhai_fn(name = "startswith", pure)]
    pub fn startswith(s: &mut ImmutableString, prefix: &str) -> bool {
        s.starts_with(prefix)
    }

    /// Whether the string ends with `suffix` (Python's name for Rhai's `ends_with`).
    #[rhai_fn(name = "endswith", pure)]
    pub fn endswith(s: &mut ImmutableString, suffix: &str) -> bool {
        s.ends_with(suffix)
    }

    /// The character index of the first `sub` in the string, -1 if absent (Python's
    /// `s.find(sub)`).
    ///
    /// ```rhai
    /// print("hello".find("ll"));   // 2
    /// ```
    #[rhai_fn(name = "find", pure)]
    pub fn find(s: &mut ImmutableString, sub: &str) -> INT {
        s.find(sub)
            .map_or(-1, |byte| s[..byte].chars().count() as INT)
    }

    /// The items joined into one string with this string between them (Python's
    /// `sep.join(items)`); items that are not strings are shown as `str(x)` shows them.
    ///
    /// ```rhai
    /// print(", ".join(["alex", "wxx", "yxx"]));   // alex, wxx, yxx
    /// print("-".join(range(1, 4)));                // 1-2-3
    /// ```
    #[rhai_fn(name = "join", return_raw)]
    pub fn join(
        ctx: NativeCallContext,
        sep: &mut ImmutableString,
        items: Dynamic,
    ) -> RhaiResult<String> {
        let items = list_of(&ctx, items)?;
        let texts: Vec<String> = items
            .into_iter()
            .map(|mut item| to_text(&ctx, &mut item))
            .collect();
        Ok(texts.join(sep.as_str()))
    }

    /// The value as text, as `print` shows it (Python's `str(x)`).
    ///
    /// ```rhai
    /// print(str(42) + "!");   // 42!
    /// print(str(()));         // None
    /// ```
    #[rhai_fn(name = "str")]
    pub fn str(ctx: NativeCallContext, value: Dynamic) -> String {
        let mut value = value;
        to_text(&ctx, &mut value)
    }

    /// An integer from a number (floats are cut toward zero), a boolean, or a string of
    /// decimal digits (spaces around allowed), as Python's `int(x)`. `ValueError` for a
    /// string that is not a number, a float that is not finite, or one that does not fit.
    ///
    /// ```rhai
    /// print(int(" 42 ") + 1);   // 43
    /// print(int(-2.7));         // -2
    /// ```
    #[rhai_fn(name = "int", return_raw)]
    pub fn int(value: Dynamic) -> RhaiResult<INT> {
        if let Ok(i) = value.as_int() {
            return Ok(i);
        }
        if let Ok(b) = value.as_bool() {
            return Ok(INT::from(b));
        }
        if let Ok(f) = value.as_float() {
            let cut = f.trunc();
            if !f.is_finite() || cut < INT::MIN as FLOAT || cut >= INT::MAX as FLOAT {
                return Err(Error::value(format!("cannot convert float {f} to an integer")).into());
            }
            return Ok(cut as INT);
        }
        if let Some(text) = value.read_lock::<ImmutableString>() {
            return Ok(parse_int(&text, 10)?);
        }
        if let Ok(c) = value.as_char() {
            return Ok(parse_int(&c.to_string(), 10)?);
        }
        Err(type_error(format!(
            "int() takes a number, a boolean or a string, not {}",
            type_name(&value)
        ))
        .into())
    }

    /// A float cut toward zero, as an integer (Python's `int(2.7)` is `2`; Rhai's own
    /// `int(x)` kept the float).
    #[rhai_fn(name = "int", return_raw)]
    pub fn int_of_float(value: FLOAT) -> RhaiResult<INT> {
        int(Dynamic::from_float(value))
    }

    /// An integer from a string of digits in `base` (2 to 36; `0x`, `0o`, `0b` prefixes
    /// allowed for 16, 8, 2), as Python's `int(s, base)`.
    ///
    /// ```rhai
    /// print(int("ff", 16));   // 255
    /// ```
    #[rhai_fn(name = "int", return_raw)]
    pub fn int_base(text: &str, base: INT) -> RhaiResult<INT> {
        let base = u32::try_from(base)
            .ok()
            .filter(|b| (2..=36).contains(b))
            .ok_or_else(|| Error::value(format!("int() base must be 2 to 36, not {base}")))?;
        Ok(parse_int(text, base)?)
    }

    /// A float from a number, a boolean, or a string (`"2.5"`, `"1e3"`, `"inf"`, `"nan"`;
    /// spaces around allowed), as Python's `float(x)`. `ValueError` for other strings.
    ///
    /// ```rhai
    /// print(float("2.5") * 2);   // 5.0
    /// print(float(3));           // 3.0
    /// ```
    #[rhai_fn(name = "float", return_raw)]
    pub fn float(value: Dynamic) -> RhaiResult<FLOAT> {
        if let Ok(f) = value.as_float() {
            return Ok(f);
        }
        if let Ok(i) = value.as_int() {
            return Ok(i as FLOAT);
        }
        if let Ok(b) = value.as_bool() {
            return Ok(FLOAT::from(u8::from(b)));
        }
        if let Some(text) = value.read_lock::<ImmutableString>() {
            return Ok(parse_float(&text)?);
        }
        Err(type_error(format!(
            "float() takes a number, a boolean or a string, not {}",
            type_name(&value)
        ))
        .into())
    }

    /// Python's truth value: `false` for `()`, `false`, `0`, `0.0`, and an empty string,
    /// array, map or blob; `true` for everything else.
    ///
    /// ```rhai
    /// print(bool(""), bool([0]));   // false true
    /// ```
    #[rhai_fn(name = "bool")]
    pub fn bool(value: Dynamic) -> bool {
        if value.is_unit() {
            return false;
        }
        if let Ok(b) = value.as_bool() {
            return b;
        }
        if let Ok(i) = value.as_int() {
            return i != 0;
        }
        if let Ok(f) = value.as_float() {
            return f != 0.0;
        }
        if let Some(s) = value.read_lock::<ImmutableString>() {
            return !s.is_empty();
        }
        if let Some(a) = value.read_lock::<Array>() {
            return !a.is_empty();
        }
        if let Some(m) = value.read_lock::<rhai::Map>() {
            return !m.is_empty();
        }
        if let Some(b) = value.read_lock::<Blob>() {
            return !b.is_empty();
        }
        if let Some(r) = as_array(&value) {
            return !r.is_empty();
        }
        true
    }

    /// The number of items of a range (Python's `len(range(a, b))`). `len(x)` also works
    /// for strings (characters), arrays, maps and blobs, as Rhai's `x.len()`.
    ///
    /// ```rhai
    /// print(len(range(2, 5)), len("主进程"), len([1, 2]));   // 3 3 2
    /// ```
    #[rhai_fn(name = "len", pure)]
    pub fn range_len(range: &mut ExclusiveRange) -> INT {
        super::range_len(range.start, range.end)
    }

    /// The number of items of an inclusive range (`a..=b`).
    #[rhai_fn(name = "len", pure)]
    pub fn range_inclusive_len(range: &mut InclusiveRange) -> INT {
        super::range_len(*range.start(), range.end().saturating_add(1))
    }

    /// `len(x)` of a value without a length: a `TypeError`, as in Python.
    #[rhai_fn(name = "len", return_raw)]
    pub fn len_other(value: Dynamic) -> RhaiResult<INT> {
        if let Some(items) = as_array(&value) {
            return Ok(items.len() as INT);
        }
        Err(type_error(format!(
            "len() takes a string, an array, a map, a blob or a range, not {}",
            type_name(&value)
        ))
        .into())
    }

    /// The integers from 0 up to `stop`, not including it (Python's `range(stop)`).
    /// `range(start, stop)` and `range(start, stop, step)` are Rhai's own. A range works
    /// in `for`, with `len()`, `r[i]` and `list(r)`, and where procscript takes a list
    /// (`Process(task, range(0, 2))`).
    ///
    /// ```rhai
    /// for i in range(3) { print(i); }   // 0 1 2
    /// let r = range(10, 20);
    /// print(r[0], r[-1], len(r));       // 10 19 10
    /// ```
    #[rhai_fn(name = "range")]
    pub fn range_to(stop: INT) -> ExclusiveRange {
        0..stop.max(0)
    }

    /// The `index`-th number of a range (negative counts from the end); `IndexError`
    /// outside it.
    #[rhai_fn(index_get, return_raw, pure)]
    pub fn range_index(range: &mut ExclusiveRange, index: INT) -> RhaiResult<INT> {
        let len = super::range_len(range.start, range.end);
        Ok(range_item(range.start, len, index)?)
    }

    /// The `index`-th number of an inclusive range.
    #[rhai_fn(index_get, return_raw, pure)]
    pub fn range_inclusive_index(range: &mut InclusiveRange, index: INT) -> RhaiResult<INT> {
        let len = super::range_len(*range.start(), range.end().saturating_add(1));
        Ok(range_item(*range.start(), len, index)?)
    }

    /// A new array of the items of anything a `for` loop walks: a range, an array (copied),
    /// a string (its characters), a blob (its bytes); for a map, its keys (Python's
    /// `list(x)`). `TypeError` for a value that is not iterable.
    ///
    /// ```rhai
    /// print(list(range(3)));           // [0, 1, 2]
    /// print(list(range(0, 10, 4)));    // [0, 4, 8]
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list(ctx: NativeCallContext, value: Dynamic) -> RhaiResult<Array> {
        Ok(list_of(&ctx, value)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_repr_matches_python() {
        assert_eq!(bytes_repr(b"hello there"), "b'hello there'");
        assert_eq!(bytes_repr(b"a\xff\n\\"), "b'a\\xff\\n\\\\'");
        assert_eq!(bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(bytes_repr(b"'\""), "b'\\'\"'");
        assert_eq!(bytes_repr(b"\t\r\x00\x7f"), "b'\\t\\r\\x00\\x7f'");
        assert_eq!(bytes_repr(b""), "b''");
    }

    #[test]
    fn int_parses_like_python() {
        assert_eq!(parse_int(" 42\n", 10), Ok(42));
        assert_eq!(parse_int("-1_000", 10), Ok(-1000));
        assert_eq!(parse_int("0xff", 16), Ok(255));
        assert_eq!(parse_int("-9223372036854775808", 10), Ok(INT::MIN));
        assert!(parse_int("9223372036854775808", 10).is_err());
        for bad in ["", "4.5", "1__0", "_1", "--1", "0x10", "ab"] {
            assert!(parse_int(bad, 10).is_err(), "{bad}");
        }
    }

    #[test]
    fn float_parses_like_python() {
        assert_eq!(parse_float(" 2.5 "), Ok(2.5));
        assert_eq!(parse_float("1e3"), Ok(1000.0));
        assert_eq!(parse_float("-inf"), Ok(FLOAT::NEG_INFINITY));
        assert!(parse_float("nan").unwrap().is_nan());
        assert!(parse_float("abc").is_err());
        assert!(parse_float("").is_err());
    }

    #[test]
    fn range_indexing_counts_from_either_end() {
        assert_eq!(range_item(10, 10, 0), Ok(10));
        assert_eq!(range_item(10, 10, -1), Ok(19));
        assert!(range_item(10, 10, 10).is_err());
        assert!(range_item(10, 10, -11).is_err());
        assert_eq!(range_len(5, 2), 0);
    }
}
