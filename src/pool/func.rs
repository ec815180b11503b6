//! A task's function as it travels, and the checks the parent makes before sending it: the
//! number of arguments (a `TypeError` here, not a puzzling failure in a worker) and keyword
//! arguments put in their places.

use rhai::{Array, Dynamic, FnPtr, Map, NativeCallContext};

use crate::convert::{must_be, type_error};
use crate::error::Result;

/// A function as it travels: its name (workers find the body in the code they inherited)
/// and its curried arguments (a closure's captured values).
#[derive(Debug, Clone)]
pub(crate) struct Func {
    /// The script function's name (`anon$...` for a closure).
    pub name: String,
    /// The closure's captured values, or `Fn("f").curry(x)`'s arguments.
    pub curry: Array,
}

impl Func {
    /// Reads a function value (`square`, `Fn("square")`, a closure).
    pub(crate) fn from_value(value: Dynamic, what: &str) -> Result<Self> {
        if !value.is::<FnPtr>() {
            return Err(must_be(
                what,
                "a function (a name, `Fn(\"name\")` or a closure)",
                &value,
            ));
        }
        let ptr = value.cast::<FnPtr>();
        Ok(Self {
            name: ptr.fn_name().to_string(),
            curry: ptr.curry().to_vec(),
        })
    }

    /// How messages name it: `square`, or "the closure".
    pub(crate) fn shown(&self) -> String {
        if self.name.starts_with("anon$") {
            "the closure".into()
        } else {
            self.name.clone()
        }
    }

    /// The parameter lists of the script definitions of this name, without the curried
    /// ones; empty for a function the script does not define (a native, or a missing one:
    /// the worker reports that).
    fn definitions(&self, ctx: &NativeCallContext) -> Vec<Vec<String>> {
        let curried = self.curry.len();
        ctx.iter_namespaces()
            .flat_map(|m| m.iter_script_fn_info())
            .filter(|f| f.2 == self.name && f.3 >= curried)
            .map(|f| {
                f.4.params[curried..]
                    .iter()
                    .map(|p| p.to_string())
                    .collect()
            })
            .collect()
    }

    /// Checks that the script's definition takes each count of arguments in `given` (the
    /// number of arguments each call will pass, with the item it comes from for a message):
    /// `TypeError: square takes 1 argument, 2 given`.
    pub(crate) fn check_arity(
        &self,
        ctx: &NativeCallContext,
        given: impl IntoIterator<Item = (usize, Option<usize>)>,
    ) -> Result<()> {
        let definitions = self.definitions(ctx);
        if definitions.is_empty() {
            return Ok(());
        }
        let mut takes: Vec<usize> = definitions.iter().map(Vec::len).collect();
        takes.sort_unstable();
        takes.dedup();
        for (count, item) in given {
            if takes.contains(&count) {
                continue;
            }
            let last = *takes.last().expect("one definition at least");
            let counts: Vec<String> = takes.iter().map(usize::to_string).collect();
            let counts = match counts.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            };
            let noun = if last == 1 { "argument" } else { "arguments" };
            let place = item.map_or(String::new(), |i| format!(" (item {i})"));
            return Err(type_error(format!(
                "{} takes {counts} {noun}, {count} given{place}",
                self.shown()
            )));
        }
        Ok(())
    }

    /// Appends keyword arguments to `args` in the order of the parameters they name.
    pub(crate) fn place_kwargs(
        &self,
        ctx: &NativeCallContext,
        args: Array,
        kwargs: Map,
    ) -> Result<Array> {
        let shown = self.shown();
        let call = (self.name.as_str(), self.curry.len(), shown.as_str());
        crate::convert::place_kwargs(ctx, call, args, kwargs)
    }
}
