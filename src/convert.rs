//! Script values into what natives need: the one place a `Dynamic` a script passed is
//! checked and converted, and the one place a wrong one becomes a `TypeError` that names
//! the type as scripts know it (`i64`, `string`, `Process`), never by a Rust path.

use std::time::Duration;

use rhai::{Array, Dynamic, Map, NativeCallContext, INT};

use crate::error::{Error, ErrorKind, Result};

/// Rhai's `a..b` and `range(a, b)`.
pub(crate) type ExclusiveRange = std::ops::Range<INT>;
/// Rhai's `a..=b`.
pub(crate) type InclusiveRange = std::ops::RangeInclusive<INT>;

/// A `TypeError` with `message`: the one way a native says a value has the wrong type.
pub(crate) fn type_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::TypeError, message)
}

/// `TypeError: {what} must be {expected}, not {type}`, the type named as scripts know it.
pub(crate) fn must_be(what: impl std::fmt::Display, expected: &str, value: &Dynamic) -> Error {
    type_error(format!(
        "{what} must be {expected}, not {}",
        type_name(value)
    ))
}

/// A number of seconds (an int or a float, not negative), `()` meaning "no limit".
pub(crate) fn seconds(value: &Dynamic, what: &str) -> Result<Option<Duration>> {
    let secs = if value.is_unit() {
        return Ok(None);
    } else if let Ok(i) = value.as_int() {
        i as f64
    } else if let Ok(f) = value.as_float() {
        f
    } else {
        return Err(must_be(what, "a number of seconds", value));
    };
    if secs.is_nan() || secs < 0.0 {
        return Err(Error::value(format!(
            "{what} must be a non-negative number of seconds, not {secs}"
        )));
    }
    Ok(Some(
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX),
    ))
}

/// A timeout that may also be Python's `block` flag: seconds, `()` for none, `true` (wait
/// without limit) or `false` (do not wait at all).
pub(crate) fn flag_or_seconds(value: &Dynamic, what: &str) -> Result<Option<Duration>> {
    match value.as_bool() {
        Ok(true) => Ok(None),
        Ok(false) => Ok(Some(Duration::ZERO)),
        Err(_) => seconds(value, what),
    }
}

/// A map of options, `()` meaning an empty one.
pub(crate) fn map_or_empty(value: Dynamic, what: &str) -> Result<Map> {
    if value.is_unit() {
        return Ok(Map::new());
    }
    let error = must_be(what, "a map", &value);
    value.try_cast::<Map>().ok_or(error)
}

/// Takes the option `key` of type `T` out of `map` (`()` counts as absent); `expected`
/// names the type in the error (`"a string"`).
pub(crate) fn take_typed<T: rhai::Variant + Clone>(
    map: &mut Map,
    key: &str,
    expected: &str,
) -> Result<Option<T>> {
    match map.remove(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) => {
            let error = must_be(format_args!("`{key}`"), expected, &v);
            v.try_cast::<T>().map(Some).ok_or(error)
        }
    }
}

/// The items of a list-like value without running script code: an array (copied), a range
/// (`range(a, b)`, `a..b`, `a..=b`). `None` for anything else.
///
/// Natives that take a list use this, so that `Process(task, range(0, 3))` works as it
/// would with `[0, 1, 2]`.
pub(crate) fn as_array(value: &Dynamic) -> Option<Array> {
    if let Some(array) = value.read_lock::<Array>() {
        return Some(array.clone());
    }
    if let Some(range) = value.read_lock::<ExclusiveRange>() {
        return Some(range.clone().map(Dynamic::from_int).collect());
    }
    if let Some(range) = value.read_lock::<InclusiveRange>() {
        return Some(range.clone().map(Dynamic::from_int).collect());
    }
    None
}

/// Puts keyword arguments in the positions of the parameters they name: `args`, then the
/// named ones in the order of the script definition of `name` (with `curried` arguments
/// bound already) that takes that many in all. `shown` names the function in the errors.
pub(crate) fn place_kwargs(
    ctx: &NativeCallContext,
    (name, curried, shown): (&str, usize, &str),
    mut args: Array,
    mut kwargs: Map,
) -> Result<Array> {
    if kwargs.is_empty() {
        return Ok(args);
    }
    let total = curried + args.len() + kwargs.len();
    let definition = ctx
        .iter_namespaces()
        .flat_map(|m| m.iter_script_fn_info())
        .find(|f| f.2 == name && f.3 == total)
        .map(|f| f.4.params.clone());
    let Some(params) = definition else {
        return Err(type_error(format!(
            "{shown} has no script definition taking {} positional and {} keyword arguments",
            args.len(),
            kwargs.len()
        )));
    };
    let wanted = &params[(curried + args.len()).min(params.len())..];
    if let Some(extra) = kwargs
        .keys()
        .find(|k| !wanted.iter().any(|p| p.as_str() == k.as_str()))
    {
        return Err(type_error(format!(
            "{shown} got an unexpected keyword argument `{extra}`"
        )));
    }
    for param in wanted {
        match kwargs.remove(param.as_str()) {
            Some(value) => args.push(value),
            None => {
                return Err(type_error(format!(
                    "{shown} is missing its argument `{param}`"
                )))
            }
        }
    }
    Ok(args)
}

/// Why [`items`] has no list for a value.
pub(crate) enum NotItems {
    /// A `for` loop cannot walk it.
    NotIterable,
    /// It has more than the limit; how many, as said in a message.
    TooMany(String),
    /// Walking it failed (an error in its iterator, Ctrl-C).
    Failed(Box<rhai::EvalAltResult>),
}

/// The items of anything a `for` loop can walk (arrays, ranges, stepped ranges, strings,
/// blobs, and types with iterators of their own), at most `limit` of them; with
/// `map_keys`, a map's keys as Python's `list(d)` gives them.
pub(crate) fn items(
    ctx: &NativeCallContext,
    value: Dynamic,
    limit: u64,
    map_keys: bool,
) -> std::result::Result<Array, NotItems> {
    let int_range = |start: INT, end_inclusive: INT| {
        if end_inclusive < start {
            return Ok(Array::new());
        }
        let count = (end_inclusive as i128 - start as i128 + 1) as u128;
        if count > u128::from(limit) {
            return Err(NotItems::TooMany(count.to_string()));
        }
        Ok((start..=end_inclusive).map(Dynamic::from_int).collect())
    };
    let value = value.flatten();
    if value.is_array() {
        return Ok(value.cast::<Array>());
    }
    if let Some(r) = value.read_lock::<ExclusiveRange>().map(|r| r.clone()) {
        return if r.start >= r.end {
            Ok(Array::new())
        } else {
            int_range(r.start, r.end - 1)
        };
    }
    if let Some(r) = value.read_lock::<InclusiveRange>().map(|r| r.clone()) {
        return int_range(*r.start(), *r.end());
    }
    if map_keys {
        if let Some(map) = value.read_lock::<Map>() {
            return Ok(map.keys().map(|k| Dynamic::from(k.to_string())).collect());
        }
    }
    if value.is_unit() || value.is_int() || value.is_float() || value.is_bool() {
        return Err(NotItems::NotIterable);
    }
    if value.is_string() {
        let text = value.into_immutable_string().unwrap_or_default();
        return Ok(text.chars().map(Dynamic::from_char).collect());
    }
    if value.is_blob() {
        let bytes = value.cast::<rhai::Blob>();
        return Ok(bytes
            .into_iter()
            .map(|b| Dynamic::from_int(b.into()))
            .collect());
    }
    // Anything else that a `for` loop can walk (a stepped range, a PoolIterator): walk it
    // with the engine's own iterator for the type.
    let mut scope = rhai::Scope::new();
    scope.push("items", value);
    scope.push("limit", limit.min(INT::MAX as u64) as INT);
    let walked = ctx.engine().eval_with_scope::<Dynamic>(
        &mut scope,
        "let out = []; for item in items { if out.len() == limit { return (); } out.push(item); } out",
    );
    match walked {
        Ok(items) if items.is_unit() => Err(NotItems::TooMany(format!("more than {limit}"))),
        Ok(items) => Ok(items.cast::<Array>()),
        Err(e) if matches!(*e, rhai::EvalAltResult::ErrorFor(..)) => Err(NotItems::NotIterable),
        Err(e) => Err(NotItems::Failed(e)),
    }
}

/// The name a script sees for the type of `value`: what `type_of()` says (`i64`, `string`,
/// `Process`, `range`), never a Rust path. Use it in every message that names a type.
pub(crate) fn type_name(value: &Dynamic) -> String {
    script_type_name(value.type_name())
}

/// `text` with every Rust type path in it (`procscript::net::Socket`,
/// `core::ops::range::Range<i64>`) replaced by the name scripts know (`Socket`, `range`): the
/// last line of defence that keeps Rust's names out of messages.
pub(crate) fn without_rust_paths(text: &str) -> std::borrow::Cow<'_, str> {
    const ROOTS: [&str; 5] = ["procscript::", "core::", "alloc::", "std::", "rhai::"];
    if !ROOTS.iter().any(|root| text.contains(root)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, _)) = ROOTS
        .iter()
        .filter_map(|root| rest.find(root).map(|i| (i, root)))
        .filter(|(i, _)| !rest[..*i].ends_with(is_ident))
        .min()
    {
        out.push_str(&rest[..at]);
        // The path: identifiers and `::`, then balanced generic arguments.
        let bytes = rest.as_bytes();
        let mut end = at;
        let mut depth = 0usize;
        while end < rest.len() {
            let c = rest[end..].chars().next().unwrap_or(' ');
            if is_ident(c) || rest[end..].starts_with("::") && depth == 0 {
                end += if c == ':' { 2 } else { c.len_utf8() };
            } else if c == '<' {
                depth += 1;
                end += 1;
            } else if c == '>' && depth > 0 {
                depth -= 1;
                end += 1;
            } else if depth > 0 && bytes[end] != b'\n' {
                end += c.len_utf8();
            } else {
                break;
            }
        }
        out.push_str(&script_type_name(&rest[at..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// A Rust type name as scripts know it: `procscript::process::Process` → `Process`,
/// `core::ops::range::Range<i64>` → `range`, `alloc::string::String` → `string`. Names
/// without a path (`i64`, `blob`, `()`) are kept.
pub(crate) fn script_type_name(rust: &str) -> String {
    let rust = rust.trim();
    // The outer type's path, without generic arguments.
    let (path, generics) = match rust.find('<') {
        Some(i) => (&rust[..i], &rust[i..]),
        None => (rust, ""),
    };
    let last = path.rsplit("::").next().unwrap_or(path);
    match last {
        "Range" | "StepRange" | "BitRange" | "CharsStream" => "range".into(),
        "RangeInclusive" => "range=".into(),
        "String" | "ImmutableString" | "str" | "&str" => "string".into(),
        "Dynamic" => "any".into(),
        "FnPtr" => "Fn".into(),
        "Instant" => "timestamp".into(),
        "Vec" if generics.starts_with("<u8") => "blob".into(),
        "Vec" => "array".into(),
        "BTreeMap" => "map".into(),
        "Rc" | "Arc" | "RefCell" | "Box" if generics.len() > 2 => {
            script_type_name(&generics[1..generics.len() - 1])
        }
        _ => last.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_never_show_rust_paths() {
        assert_eq!(script_type_name("procscript::process::Process"), "Process");
        assert_eq!(script_type_name("core::ops::range::Range<i64>"), "range");
        assert_eq!(
            script_type_name("core::ops::range::RangeInclusive<i64>"),
            "range="
        );
        assert_eq!(script_type_name("alloc::string::String"), "string");
        assert_eq!(script_type_name("alloc::vec::Vec<u8>"), "blob");
        assert_eq!(
            script_type_name("alloc::rc::Rc<procscript::net::Socket>"),
            "Socket"
        );
        assert_eq!(script_type_name("i64"), "i64");
        assert_eq!(script_type_name("()"), "()");
        assert_eq!(
            type_name(&Dynamic::from(std::time::Duration::ZERO)),
            "Duration"
        );
        assert_eq!(type_name(&Dynamic::from_blob(vec![1])), "blob");
    }

    #[test]
    fn rust_paths_are_scrubbed_from_text() {
        assert_eq!(
            without_rust_paths(
                "not procscript::process::Process, nor core::ops::range::Range<i64>."
            ),
            "not Process, nor range."
        );
        assert_eq!(
            without_rust_paths("global::x and Process-1:2 stay"),
            "global::x and Process-1:2 stay"
        );
        assert_eq!(
            without_rust_paths("(alloc::rc::Rc<procscript::net::Socket>)"),
            "(Socket)"
        );
    }
}
