//! Printing arrays and object maps without recursion.
//!
//! Rhai prints `[[[...]]]` by calling `to_debug` on each element in turn, several stack
//! frames per level of nesting, so printing a value nested 10,000 deep overflowed the stack
//! and aborted the process (`let y = []; for i in 0..10000 { y = [y]; } print(`${y}`)`).
//! These overrides walk nested arrays and maps with an explicit stack instead, so printing
//! costs no stack however deep the value. They produce exactly Rhai's text: elements are
//! shown with `to_debug` (strings quoted), maps as `#{"key": value}`, and any other value
//! through the engine's own `to_debug`, so custom types print as they always did.

use std::fmt::Write;

use rhai::def_package;
use rhai::plugin::*;
use rhai::{Array, Dynamic, ImmutableString, Map};

/// One container being printed: the elements still to show, and those shown, moved back
/// into a new container of the same kind so that the value is rebuilt as it is walked.
enum Frame {
    Array {
        rest: std::vec::IntoIter<Dynamic>,
        done: Array,
    },
    Map {
        rest: std::collections::btree_map::IntoIter<rhai::Identifier, Dynamic>,
        done: Map,
        /// The key of the element being shown.
        key: rhai::Identifier,
    },
}

impl Frame {
    fn shown_any(&self) -> bool {
        match self {
            Self::Array { done, .. } => !done.is_empty(),
            Self::Map { done, .. } => !done.is_empty(),
        }
    }

    /// Puts a shown element back.
    fn keep(&mut self, value: Dynamic) {
        match self {
            Self::Array { done, .. } => done.push(value),
            Self::Map { done, key, .. } => {
                done.insert(std::mem::take(key), value);
            }
        }
    }
}

/// Opens `value` if it is a container (not shared): writes its opening bracket and returns
/// its frame; otherwise gives the value back.
fn open(value: Dynamic, out: &mut String) -> Result<Frame, Dynamic> {
    if value.is_shared() {
        return Err(value);
    }
    if value.is_array() {
        let array = value.cast::<Array>();
        out.push('[');
        let done = Array::with_capacity(array.len());
        return Ok(Frame::Array {
            rest: array.into_iter(),
            done,
        });
    }
    if value.is_map() {
        out.push_str("#{");
        return Ok(Frame::Map {
            rest: value.cast::<Map>().into_iter(),
            done: Map::new(),
            key: rhai::Identifier::default(),
        });
    }
    Err(value)
}

/// A leaf value as `to_debug` shows it (through the engine, so overloads apply).
fn leaf(ctx: &NativeCallContext, value: &mut Dynamic, out: &mut String) {
    match ctx.call_native_fn_raw("to_debug", true, &mut [value]) {
        Ok(text) if text.is_string() => {
            out.push_str(&text.into_immutable_string().unwrap_or_default())
        }
        Ok(other) => out.push_str(ctx.engine().map_type_name(other.type_name())),
        Err(_) => {
            let text = format!("{value:?}");
            out.push_str(ctx.engine().map_type_name(&text));
        }
    }
}

/// `value` as Rhai's `to_debug` shows it, and the value itself, rebuilt.
fn format(ctx: &NativeCallContext, value: Dynamic) -> (ImmutableString, Dynamic) {
    let mut out = String::new();
    let mut stack = match open(value, &mut out) {
        Ok(frame) => vec![frame],
        Err(mut value) => {
            leaf(ctx, &mut value, &mut out);
            return (out.into(), value);
        }
    };
    loop {
        let Some(frame) = stack.last_mut() else {
            unreachable!("the loop returns when the outermost frame closes");
        };
        let separator = frame.shown_any();
        let next = match frame {
            Frame::Array { rest, .. } => rest.next(),
            Frame::Map { rest, key, .. } => rest.next().map(|(k, v)| {
                *key = k;
                v
            }),
        };
        let Some(item) = next else {
            // The container is done: close it and hand it, rebuilt, to its parent.
            let value = match stack.pop() {
                Some(Frame::Array { done, .. }) => {
                    out.push(']');
                    Dynamic::from_array(done)
                }
                Some(Frame::Map { done, .. }) => {
                    out.push('}');
                    Dynamic::from_map(done)
                }
                None => unreachable!("a frame was just looked at"),
            };
            match stack.last_mut() {
                Some(parent) => parent.keep(value),
                None => return (out.into(), value),
            }
            continue;
        };
        if separator {
            out.push_str(", ");
        }
        if let Frame::Map { key, .. } = &*frame {
            let _ = write!(out, "{key:?}: ");
        }
        match open(item, &mut out) {
            Ok(child) => stack.push(child),
            Err(mut item) => {
                leaf(ctx, &mut item, &mut out);
                frame.keep(item);
            }
        }
    }
}

def_package! {
    /// `print`, `to_string`, `debug` and `to_debug` of arrays and maps, without recursion:
    /// the same text as Rhai's own, which they replace.
    pub FormatPackage(lib) {
        combine_with_exported_module!(lib, "format", format_functions);
    }
}

#[export_module]
#[allow(unreachable_pub)]
mod format_functions {
    /// Shows an array as `[1, "two", [3]]`, however deeply it nests.
    #[rhai_fn(
        name = "print",
        name = "to_string",
        name = "debug",
        name = "to_debug",
        pure
    )]
    pub fn format_array(ctx: NativeCallContext, array: &mut Array) -> ImmutableString {
        let (text, value) = super::format(&ctx, Dynamic::from_array(std::mem::take(array)));
        *array = value.cast::<Array>();
        text
    }

    /// Shows an object map as `#{"a": 1, "b": [2]}`, however deeply it nests.
    #[rhai_fn(
        name = "print",
        name = "to_string",
        name = "debug",
        name = "to_debug",
        pure
    )]
    pub fn format_map(ctx: NativeCallContext, map: &mut Map) -> ImmutableString {
        let (text, value) = super::format(&ctx, Dynamic::from_map(std::mem::take(map)));
        *map = value.cast::<Map>();
        text
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn output_matches_rhai_and_deep_values_print() {
        let mut engine = rhai::Engine::new();
        let rhai_text: String = engine
            .eval(r#"let m = #{b: [1, "x", 'c', 2.5, (), true, #{}], a: []}; `${[m, [[]], "s"]}`"#)
            .unwrap();
        rhai::packages::Package::register_into_engine(&super::FormatPackage::new(), &mut engine);
        let ours: String = engine
            .eval(r#"let m = #{b: [1, "x", 'c', 2.5, (), true, #{}], a: []}; `${[m, [[]], "s"]}`"#)
            .unwrap();
        assert_eq!(ours, rhai_text);
        let deep: String = engine
            .eval("let y = []; for i in 0..2000 { y = [take(y)]; } y.to_string()")
            .unwrap();
        assert_eq!(deep, format!("{}{}", "[".repeat(2001), "]".repeat(2001)));
        let kept: bool = engine
            .eval(r#"let a = [[1, #{k: [2]}], "s"]; let t = a.to_string(); a == [[1, #{k: [2]}], "s"] && t.len() > 0"#)
            .unwrap();
        assert!(kept, "printing leaves the value as it was");
    }
}
