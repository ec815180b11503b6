//! The Rhai surface of managers: `Manager()` and its `dict`, `list`, `Value`, `Lock`, `Queue`
//! and `Namespace` proxies, with Python's method names.
//!
//! Glue only: converts script values and errors; the work is in [`super`].

use std::any::TypeId;
use std::ops::{Range, RangeInclusive};

use rhai::def_package;
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, INT};

use super::{
    DictProxy, ListProxy, LockProxy, NamespaceProxy, Proxy, QueueProxy, SyncManager, ValueProxy,
};
use crate::convert::{flag_or_seconds, type_error};
use crate::error::{Error, ErrorKind, RhaiResult};

def_package! {
    /// `Manager()` and its proxies: containers held by a manager process that every process
    /// can read and change, as in Python's `multiprocessing.managers`.
    pub ManagerPackage(lib) {
        combine_with_exported_module!(lib, "manager", manager_functions);
        // `for x in list` walks the items, `for k in dict` the keys: one snapshot, taken in
        // one call when the loop starts.
        lib.set_iter_result(TypeId::of::<ListProxy>(), |list| {
            snapshot(&list.cast::<ListProxy>().0, "copy")
        });
        lib.set_iter_result(TypeId::of::<DictProxy>(), |dict| {
            snapshot(&dict.cast::<DictProxy>().0, "keys")
        });
    }
}

type Items = Box<dyn Iterator<Item = RhaiResult<Dynamic>>>;

fn snapshot(proxy: &Proxy, method: &str) -> Items {
    match proxy.call_plain(method, Array::new()) {
        Ok(items) => Box::new(items.into_array().unwrap_or_default().into_iter().map(Ok)),
        Err(e) => Box::new(std::iter::once(Err(e.into()))),
    }
}

/// A timeout argument: seconds (int or float), `()` for none, or Python's `block` flag
/// (`false`: do not wait at all, `true`: wait without limit); as it travels: `()` or seconds.
fn timeout(value: &Dynamic, what: &str) -> Result<Dynamic, Error> {
    let limit = flag_or_seconds(value, what)?;
    Ok(limit.map_or(Dynamic::UNIT, |t| Dynamic::from_float(t.as_secs_f64())))
}

/// An array from an array, a range (`0..10`, `range(0, 10)`) or another manager list, as
/// Python's `list(iterable)`.
fn items(init: Dynamic, what: &str) -> Result<Array, Error> {
    let type_name = crate::convert::type_name(&init);
    if init.is_array() {
        return Ok(init.cast::<Array>());
    }
    if let Some(list) = init.clone().try_cast::<ListProxy>() {
        return Ok(array(list.0.call_plain("copy", Array::new())?));
    }
    if let Some(r) = init.clone().try_cast::<Range<INT>>() {
        return Ok(r.map(Dynamic::from_int).collect());
    }
    if let Some(r) = init.try_cast::<RangeInclusive<INT>>() {
        return Ok(r.map(Dynamic::from_int).collect());
    }
    Err(type_error(format!(
        "{what} must be an array, a range or a manager list, not {type_name}"
    )))
}

fn array(value: Dynamic) -> Array {
    value.into_array().unwrap_or_default()
}

fn map(value: Dynamic) -> Map {
    value.try_cast::<Map>().unwrap_or_default()
}

/// Text for `print(proxy)`: the contents, or why they cannot be had.
fn shown(kind: &str, proxy: &Proxy, method: &str) -> String {
    match proxy.call_plain(method, Array::new()) {
        Ok(value) => format!("{value:?}"),
        Err(e) => format!("<{kind}: {}>", e.message),
    }
}

#[export_module]
#[allow(unreachable_pub)]
mod manager_functions {
    use super::*;

    /// A manager process and the objects it holds.
    pub type SyncManager = super::SyncManager;
    /// A dict held by a manager.
    pub type DictProxy = super::DictProxy;
    /// A list held by a manager.
    pub type ListProxy = super::ListProxy;
    /// A value held by a manager.
    pub type ValueProxy = super::ValueProxy;
    /// A lock held by a manager.
    pub type LockProxy = super::LockProxy;
    /// A queue held by a manager.
    pub type QueueProxy = super::QueueProxy;
    /// A namespace held by a manager.
    pub type NamespaceProxy = super::NamespaceProxy;

    // ---------------------------------------------------------------- Manager

    /// Starts a manager process (`SyncManager-N`) and returns it. Its `dict()`, `list()`,
    /// `Value()`, `Lock()`, `Queue()` and `Namespace()` make objects it holds, and return
    /// proxies that any process can use: the creator, and every process forked after the
    /// proxy exists. Each call on a proxy is one atomic step in the manager.
    ///
    /// The manager ends at `shutdown()`, when the creator lets go of its last handle on the
    /// manager and its proxies, or when the creator ends (even when it is killed). A proxy
    /// used after that fails with a `ConnectionRefusedError`. See docs/managers.md.
    ///
    /// ```rhai
    /// let m = Manager();
    /// let d = m.dict();
    /// let ps = [];
    /// for i in 0..3 { ps.push(spawn { d[i] = i * i; }); }
    /// for p in ps { p.join(); }
    /// print(d.len());        // 3
    /// m.shutdown();
    /// ```
    #[rhai_fn(name = "Manager", return_raw, volatile)]
    pub fn manager_new() -> RhaiResult<SyncManager> {
        Ok(super::SyncManager::start()?)
    }

    /// A new, empty shared dict. Keys may be `()`, booleans, numbers, strings, chars or
    /// blobs (compared by type and value: `1` and `1.0` are two keys); values are anything
    /// that travels between processes.
    ///
    /// ```rhai
    /// let m = Manager();
    /// let d = m.dict();
    /// d["hits"] = 0;
    /// let p = spawn { d["hits"] = d["hits"] + 1; };
    /// p.join();
    /// print(d["hits"]);      // 1
    /// ```
    #[rhai_fn(name = "dict", return_raw, pure, volatile)]
    pub fn manager_dict(m: &mut SyncManager) -> RhaiResult<DictProxy> {
        Ok(super::DictProxy(Proxy::create(
            m,
            "dict",
            Array::new(),
            &crate::convert::script_type_name,
        )?))
    }

    /// A shared dict holding the entries of `init`: a map, or an array of `[key, value]`
    /// pairs.
    ///
    /// ```rhai
    /// let d = Manager().dict([[1, "one"], [2, "two"]]);
    /// print(d[2]);           // two
    /// ```
    #[rhai_fn(name = "dict", return_raw, pure, volatile)]
    pub fn manager_dict_init(m: &mut SyncManager, init: Dynamic) -> RhaiResult<DictProxy> {
        if !init.is_map() && !init.is_array() {
            return Err(type_error(format!(
                "dict(...) takes a map or an array of [key, value] pairs, not {}",
                crate::convert::type_name(&init)
            ))
            .into());
        }
        Ok(super::DictProxy(Proxy::create(
            m,
            "dict",
            vec![init],
            &crate::convert::script_type_name,
        )?))
    }

    /// A new, empty shared list.
    ///
    /// ```rhai
    /// let l = Manager().list();
    /// let p = spawn { l.append("from the child"); };
    /// p.join();
    /// print(l[0]);           // from the child
    /// ```
    #[rhai_fn(name = "list", return_raw, pure, volatile)]
    pub fn manager_list(m: &mut SyncManager) -> RhaiResult<ListProxy> {
        Ok(super::ListProxy(Proxy::create(
            m,
            "list",
            Array::new(),
            &crate::convert::script_type_name,
        )?))
    }

    /// A shared list holding the items of `init`: an array, a range or another manager list.
    ///
    /// ```rhai
    /// let l = Manager().list(0..5);
    /// print(l.to_array());   // [0, 1, 2, 3, 4]
    /// ```
    #[rhai_fn(name = "list", return_raw, pure, volatile)]
    pub fn manager_list_init(m: &mut SyncManager, init: Dynamic) -> RhaiResult<ListProxy> {
        let init = super::items(init, "a list's initial items")?;
        Ok(super::ListProxy(Proxy::create(
            m,
            "list",
            vec![Dynamic::from_array(init)],
            &crate::convert::script_type_name,
        )?))
    }

    /// A shared value: `v.value` reads it, `v.value = x` replaces it. Any value that
    /// travels between processes, as in Python (where the typecode is not enforced either).
    ///
    /// ```rhai
    /// let v = Manager().Value(1);
    /// let p = spawn { v.value = [v.value, 2]; };
    /// p.join();
    /// print(v.value);        // [1, 2]
    /// ```
    #[rhai_fn(name = "Value", return_raw, pure, volatile)]
    pub fn manager_value(m: &mut SyncManager, value: Dynamic) -> RhaiResult<ValueProxy> {
        let args = vec![Dynamic::from(String::new()), value];
        Ok(super::ValueProxy(Proxy::create(
            m,
            "Value",
            args,
            &crate::convert::script_type_name,
        )?))
    }

    /// Python's form, `m.Value(typecode, value)`: the typecode (`"i"`, `"d"`, ...) is kept
    /// for display only.
    ///
    /// ```rhai
    /// let v = Manager().Value("i", 1);
    /// print(v);              // Value('i', 1)
    /// ```
    #[rhai_fn(name = "Value", return_raw, pure, volatile)]
    pub fn manager_value_typecode(
        m: &mut SyncManager,
        typecode: &str,
        value: Dynamic,
    ) -> RhaiResult<ValueProxy> {
        let args = vec![Dynamic::from(typecode.to_string()), value];
        Ok(super::ValueProxy(Proxy::create(
            m,
            "Value",
            args,
            &crate::convert::script_type_name,
        )?))
    }

    /// A shared lock, held in the manager: `acquire`, `release`, `locked`, and
    /// `with lock { ... }`. Any process may release it (as Python's `threading.Lock`). If
    /// the process that acquired it ends without releasing it, the manager releases it.
    ///
    /// ```rhai
    /// let m = Manager();
    /// let lock = m.Lock();
    /// let total = m.Value(0);
    /// let ps = [];
    /// for i in 0..3 { ps.push(spawn { with lock { total.value += 1; } }); }
    /// for p in ps { p.join(); }
    /// print(total.value);    // 3
    /// ```
    #[rhai_fn(name = "Lock", return_raw, pure, volatile)]
    pub fn manager_lock(m: &mut SyncManager) -> RhaiResult<LockProxy> {
        Ok(super::LockProxy(Proxy::create(
            m,
            "Lock",
            Array::new(),
            &str::to_string,
        )?))
    }

    /// A shared, unbounded queue held in the manager.
    ///
    /// ```rhai
    /// let q = Manager().Queue();
    /// let p = spawn { q.put("hello"); };
    /// p.join();
    /// print(q.get());        // hello
    /// ```
    #[rhai_fn(name = "Queue", return_raw, pure, volatile)]
    pub fn manager_queue(m: &mut SyncManager) -> RhaiResult<QueueProxy> {
        Ok(super::QueueProxy(Proxy::create(
            m,
            "Queue",
            Array::new(),
            &str::to_string,
        )?))
    }

    /// A shared queue holding at most `maxsize` values (0: unbounded); `put` waits for room.
    #[rhai_fn(name = "Queue", return_raw, pure, volatile)]
    pub fn manager_queue_bounded(m: &mut SyncManager, maxsize: INT) -> RhaiResult<QueueProxy> {
        if maxsize < 0 {
            return Err(Error::value(format!(
                "a Queue's maxsize must be 0 or more, not {maxsize}"
            ))
            .into());
        }
        Ok(super::QueueProxy(Proxy::create(
            m,
            "Queue",
            vec![Dynamic::from_int(maxsize)],
            &str::to_string,
        )?))
    }

    /// A shared namespace: set and read any attribute, `ns.name = "Bob"`, `ns.name`.
    ///
    /// ```rhai
    /// let ns = Manager().Namespace();
    /// let p = spawn { ns.name = "Bob"; ns.job = "Builder"; };
    /// p.join();
    /// print(`${ns.name} the ${ns.job}`);   // Bob the Builder
    /// ```
    #[rhai_fn(name = "Namespace", return_raw, pure, volatile)]
    pub fn manager_namespace(m: &mut SyncManager) -> RhaiResult<NamespaceProxy> {
        Ok(super::NamespaceProxy(Proxy::create(
            m,
            "Namespace",
            Array::new(),
            &str::to_string,
        )?))
    }

    /// A shared namespace with the attributes of `attrs`, as Python's `Namespace(**kwargs)`.
    ///
    /// ```rhai
    /// let ns = Manager().Namespace(#{ x: 1, y: 2 });
    /// print(ns.x + ns.y);    // 3
    /// ```
    #[rhai_fn(name = "Namespace", return_raw, pure, volatile)]
    pub fn manager_namespace_init(m: &mut SyncManager, attrs: Map) -> RhaiResult<NamespaceProxy> {
        Ok(super::NamespaceProxy(Proxy::create(
            m,
            "Namespace",
            vec![Dynamic::from_map(attrs)],
            &crate::convert::script_type_name,
        )?))
    }

    /// Shuts the manager down and (in the process that started it) waits for its process
    /// to end. Every proxy of it fails afterwards with a `ConnectionRefusedError`; a second
    /// `shutdown()` does nothing.
    ///
    /// ```rhai
    /// let m = Manager();
    /// let d = m.dict();
    /// m.shutdown();
    /// try { d["x"] = 1; } catch (e) { print(e.kind); }   // ConnectionRefusedError
    /// ```
    #[rhai_fn(name = "shutdown", return_raw, pure, volatile)]
    pub fn manager_shutdown(m: &mut SyncManager) -> RhaiResult<()> {
        Ok(m.shutdown()?)
    }

    /// The manager process's pid.
    ///
    /// ```rhai
    /// let m = Manager();
    /// print(m.pid != getpid());   // true: the manager is a process of its own
    /// ```
    #[rhai_fn(get = "pid", pure)]
    pub fn manager_pid(m: &mut SyncManager) -> INT {
        m.pid().as_raw().into()
    }

    /// `<SyncManager pid=4242 running>`.
    ///
    /// ```rhai
    /// let m = Manager();
    /// m.shutdown();
    /// print(m);                   // <SyncManager pid=... shut down>
    /// ```
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn manager_to_string(m: &mut SyncManager) -> String {
        m.to_string()
    }

    // ---------------------------------------------------------------- dict

    /// The value for `key`; a missing key is a `KeyError`.
    #[rhai_fn(index_get, return_raw, pure, volatile)]
    pub fn dict_get_item(d: &mut DictProxy, key: Dynamic) -> RhaiResult<Dynamic> {
        Ok(d.0.call("__getitem__", vec![key], &crate::convert::script_type_name)?)
    }

    /// Stores `value` under `key`.
    #[rhai_fn(index_set, return_raw, volatile)]
    pub fn dict_set_item(d: &mut DictProxy, key: Dynamic, value: Dynamic) -> RhaiResult<()> {
        d.0.call_unit(
            "__setitem__",
            vec![key, value],
            &crate::convert::script_type_name,
        )?;
        Ok(())
    }

    /// The value for `key`, or `()` if there is none.
    #[rhai_fn(name = "get", return_raw, pure, volatile)]
    pub fn dict_get(d: &mut DictProxy, key: Dynamic) -> RhaiResult<Dynamic> {
        Ok(d.0.call("get", vec![key], &crate::convert::script_type_name)?)
    }

    /// The value for `key`, or `default` if there is none.
    ///
    /// ```rhai
    /// let d = Manager().dict();
    /// print(d.get("missing", 0));   // 0
    /// ```
    #[rhai_fn(name = "get", return_raw, pure, volatile)]
    pub fn dict_get_default(
        d: &mut DictProxy,
        key: Dynamic,
        default: Dynamic,
    ) -> RhaiResult<Dynamic> {
        Ok(d.0.call("get", vec![key, default], &crate::convert::script_type_name)?)
    }

    /// The value for `key`, stored as `default` first if there is none (one atomic step).
    ///
    /// ```rhai
    /// let d = Manager().dict();
    /// d.setdefault("seen", []);
    /// print(d.setdefault("seen", [1]));   // []
    /// ```
    #[rhai_fn(name = "setdefault", return_raw, pure, volatile)]
    pub fn dict_setdefault(
        d: &mut DictProxy,
        key: Dynamic,
        default: Dynamic,
    ) -> RhaiResult<Dynamic> {
        Ok(d.0.call(
            "setdefault",
            vec![key, default],
            &crate::convert::script_type_name,
        )?)
    }

    /// Removes `key` and returns its value; a missing key is a `KeyError`.
    ///
    /// ```rhai
    /// let d = Manager().dict(#{ a: 1 });
    /// print(d.pop("a"));          // 1
    /// print(d.pop("a", 0));       // 0
    /// ```
    #[rhai_fn(name = "pop", return_raw, pure, volatile)]
    pub fn dict_pop(d: &mut DictProxy, key: Dynamic) -> RhaiResult<Dynamic> {
        Ok(d.0.call("pop", vec![key], &crate::convert::script_type_name)?)
    }

    /// Removes `key` and returns its value, or `default` if there is none.
    #[rhai_fn(name = "pop", return_raw, pure, volatile)]
    pub fn dict_pop_default(
        d: &mut DictProxy,
        key: Dynamic,
        default: Dynamic,
    ) -> RhaiResult<Dynamic> {
        Ok(d.0.call("pop", vec![key, default], &crate::convert::script_type_name)?)
    }

    /// Removes the last entry and returns it as `[key, value]`; `KeyError` when empty.
    ///
    /// ```rhai
    /// let d = Manager().dict(#{ a: 1 });
    /// print(d.popitem());         // ["a", 1]
    /// ```
    #[rhai_fn(name = "popitem", return_raw, pure, volatile)]
    pub fn dict_popitem(d: &mut DictProxy) -> RhaiResult<Dynamic> {
        Ok(d.0.call_plain("popitem", Array::new())?)
    }

    /// The keys, in insertion order.
    ///
    /// ```rhai
    /// let d = Manager().dict(#{ a: 1 });
    /// d["b"] = 2;
    /// print(d.keys());       // ["a", "b"]
    /// print(d.items());      // [["a", 1], ["b", 2]]
    /// ```
    #[rhai_fn(name = "keys", return_raw, pure, volatile)]
    pub fn dict_keys(d: &mut DictProxy) -> RhaiResult<Array> {
        Ok(super::array(d.0.call_plain("keys", Array::new())?))
    }

    /// The values, in insertion order of their keys.
    ///
    /// ```rhai
    /// let d = Manager().dict([["x", 1], ["y", 2]]);
    /// print(d.values());          // [1, 2]
    /// ```
    #[rhai_fn(name = "values", return_raw, pure, volatile)]
    pub fn dict_values(d: &mut DictProxy) -> RhaiResult<Array> {
        Ok(super::array(d.0.call_plain("values", Array::new())?))
    }

    /// The entries as `[key, value]` pairs, in insertion order.
    ///
    /// ```rhai
    /// let d = Manager().dict();
    /// d[1] = "one";
    /// for pair in d.items() { print(`${pair[0]} -> ${pair[1]}`); }   // 1 -> one
    /// ```
    #[rhai_fn(name = "items", return_raw, pure, volatile)]
    pub fn dict_items(d: &mut DictProxy) -> RhaiResult<Array> {
        Ok(super::array(d.0.call_plain("items", Array::new())?))
    }

    /// The number of entries.
    ///
    /// ```rhai
    /// let d = Manager().dict(#{ a: 1, b: 2 });
    /// print(d.len());             // 2
    /// ```
    #[rhai_fn(name = "len", return_raw, pure, volatile)]
    pub fn dict_len(d: &mut DictProxy) -> RhaiResult<INT> {
        Ok(d.0
            .call_plain("__len__", Array::new())?
            .as_int()
            .unwrap_or(0))
    }

    /// Whether it has no entries.
    ///
    /// ```rhai
    /// print(Manager().dict().is_empty());   // true
    /// ```
    #[rhai_fn(name = "is_empty", return_raw, pure, volatile)]
    pub fn dict_is_empty(d: &mut DictProxy) -> RhaiResult<bool> {
        Ok(d.0.call_plain("__len__", Array::new())?.as_int() == Ok(0))
    }

    /// Whether `key` is there; also `key in d`.
    ///
    /// ```rhai
    /// let d = Manager().dict(#{ a: 1 });
    /// print("a" in d);       // true
    /// ```
    #[rhai_fn(name = "contains", return_raw, pure, volatile)]
    pub fn dict_contains(d: &mut DictProxy, key: Dynamic) -> RhaiResult<bool> {
        Ok(d.0
            .call("__contains__", vec![key], &crate::convert::script_type_name)?
            .as_bool()
            == Ok(true))
    }

    /// Stores every entry of another manager dict, keys as they are.
    ///
    /// ```rhai
    /// let m = Manager();
    /// let d = m.dict(#{ a: 1 });
    /// d.update(m.dict([[2, "two"]]));
    /// d.update(#{ b: 3 });
    /// print(d);                   // {"a": 1, 2: "two", "b": 3}
    /// ```
    #[rhai_fn(name = "update", return_raw, pure, volatile)]
    pub fn dict_update_from_dict(d: &mut DictProxy, other: DictProxy) -> RhaiResult<()> {
        let pairs = other.0.call_plain("items", Array::new())?;
        d.0.call_plain_unit("update", vec![pairs])?;
        Ok(())
    }

    /// Stores every entry of `entries`: a map, or an array of `[key, value]` pairs.
    #[rhai_fn(name = "update", return_raw, pure, volatile)]
    pub fn dict_update(d: &mut DictProxy, entries: Dynamic) -> RhaiResult<()> {
        d.0.call_unit("update", vec![entries], &crate::convert::script_type_name)?;
        Ok(())
    }

    /// Removes every entry.
    ///
    /// ```rhai
    /// let d = Manager().dict(#{ a: 1 });
    /// d.clear();
    /// print(d.len());             // 0
    /// ```
    #[rhai_fn(name = "clear", return_raw, pure, volatile)]
    pub fn dict_clear(d: &mut DictProxy) -> RhaiResult<()> {
        d.0.call_plain_unit("clear", Array::new())?;
        Ok(())
    }

    /// A plain (unshared) map with the current entries; keys that are not strings become
    /// their string form (`65` → `"65"`), as Rhai maps have string keys.
    ///
    /// ```rhai
    /// let d = Manager().dict();
    /// d[65] = "A";
    /// print(d.to_map());          // #{"65": "A"}
    /// ```
    #[rhai_fn(name = "to_map", name = "copy", return_raw, pure, volatile)]
    pub fn dict_to_map(d: &mut DictProxy) -> RhaiResult<Map> {
        Ok(super::map(d.0.call_plain("copy", Array::new())?))
    }

    /// The entries in insertion order, keys as they are: `{"a": 1, 65: "A"}` (or why they
    /// cannot be read).
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn dict_to_string(d: &mut DictProxy) -> String {
        match d.0.call_plain("items", Array::new()) {
            Ok(items) => {
                let shown: Vec<String> = super::array(items)
                    .into_iter()
                    .map(|pair| {
                        let pair = super::array(pair);
                        match (pair.first(), pair.get(1)) {
                            (Some(k), Some(v)) => format!("{k:?}: {v:?}"),
                            _ => String::new(),
                        }
                    })
                    .collect();
                format!("{{{}}}", shown.join(", "))
            }
            Err(e) => format!("<DictProxy: {}>", e.message),
        }
    }

    // ---------------------------------------------------------------- list

    /// Item `i` (negative counts from the end); out of range is an `IndexError`.
    #[rhai_fn(index_get, return_raw, pure, volatile)]
    pub fn list_get_item(l: &mut ListProxy, i: INT) -> RhaiResult<Dynamic> {
        Ok(l.0.call_plain("__getitem__", vec![Dynamic::from_int(i)])?)
    }

    /// Items `start` to `end` (not included) as a plain array, clamped as Python's slices
    /// (`l[2..10]` of a 5-item list is its last 3 items).
    ///
    /// ```rhai
    /// let l = Manager().list(0..5);
    /// print(l[2..10]);       // [2, 3, 4]
    /// ```
    #[rhai_fn(index_get, return_raw, pure, volatile)]
    pub fn list_get_slice(l: &mut ListProxy, range: Range<INT>) -> RhaiResult<Array> {
        let args = vec![Dynamic::from_int(range.start), Dynamic::from_int(range.end)];
        Ok(super::array(l.0.call_plain("slice", args)?))
    }

    /// Items `start` to `end` (included) as a plain array.
    #[rhai_fn(index_get, return_raw, pure, volatile)]
    pub fn list_get_slice_inclusive(
        l: &mut ListProxy,
        range: RangeInclusive<INT>,
    ) -> RhaiResult<Array> {
        let end = range.end().saturating_add(1);
        let args = vec![Dynamic::from_int(*range.start()), Dynamic::from_int(end)];
        Ok(super::array(l.0.call_plain("slice", args)?))
    }

    /// Replaces item `i`; out of range is an `IndexError`.
    #[rhai_fn(index_set, return_raw, volatile)]
    pub fn list_set_item(l: &mut ListProxy, i: INT, value: Dynamic) -> RhaiResult<()> {
        l.0.call_unit(
            "__setitem__",
            vec![Dynamic::from_int(i), value],
            &crate::convert::script_type_name,
        )?;
        Ok(())
    }

    /// Adds `value` at the end.
    ///
    /// ```rhai
    /// let l = Manager().list();
    /// l.append(1);
    /// l.push(2);
    /// print(l);                   // [1, 2]
    /// ```
    #[rhai_fn(name = "append", name = "push", return_raw, pure, volatile)]
    pub fn list_append(l: &mut ListProxy, value: Dynamic) -> RhaiResult<()> {
        l.0.call_unit("append", vec![value], &crate::convert::script_type_name)?;
        Ok(())
    }

    /// Adds the items of `more` (an array, a range or another manager list) at the end.
    ///
    /// ```rhai
    /// let l = Manager().list([1]);
    /// l.extend([2, 3]);
    /// l.extend(4..6);
    /// print(l);                   // [1, 2, 3, 4, 5]
    /// ```
    #[rhai_fn(name = "extend", return_raw, pure, volatile)]
    pub fn list_extend(l: &mut ListProxy, more: Dynamic) -> RhaiResult<()> {
        let more = super::items(more, "what extends a list")?;
        l.0.call_unit(
            "extend",
            vec![Dynamic::from_array(more)],
            &crate::convert::script_type_name,
        )?;
        Ok(())
    }

    /// Inserts `value` before item `i`.
    ///
    /// ```rhai
    /// let l = Manager().list(["b"]);
    /// l.insert(0, "a");
    /// print(l);                   // ["a", "b"]
    /// ```
    #[rhai_fn(name = "insert", return_raw, pure, volatile)]
    pub fn list_insert(l: &mut ListProxy, i: INT, value: Dynamic) -> RhaiResult<()> {
        l.0.call_unit(
            "insert",
            vec![Dynamic::from_int(i), value],
            &crate::convert::script_type_name,
        )?;
        Ok(())
    }

    /// Removes and returns the last item; `IndexError` when empty.
    ///
    /// ```rhai
    /// let l = Manager().list([1, 2, 3]);
    /// print(l.pop());             // 3
    /// print(l.pop(0));            // 1
    /// ```
    #[rhai_fn(name = "pop", return_raw, pure, volatile)]
    pub fn list_pop(l: &mut ListProxy) -> RhaiResult<Dynamic> {
        Ok(l.0.call_plain("pop", Array::new())?)
    }

    /// Removes and returns item `i`.
    #[rhai_fn(name = "pop", return_raw, pure, volatile)]
    pub fn list_pop_at(l: &mut ListProxy, i: INT) -> RhaiResult<Dynamic> {
        Ok(l.0.call_plain("pop", vec![Dynamic::from_int(i)])?)
    }

    /// Removes the first item equal to `value` (Python's `list.remove`, by value);
    /// `ValueError` if there is none.
    ///
    /// ```rhai
    /// let l = Manager().list(["a", "b", "a"]);
    /// l.remove("a");
    /// print(l);                   // ["b", "a"]
    /// ```
    #[rhai_fn(name = "remove", return_raw, pure, volatile)]
    pub fn list_remove(l: &mut ListProxy, value: Dynamic) -> RhaiResult<()> {
        l.0.call_unit("remove", vec![value], &crate::convert::script_type_name)?;
        Ok(())
    }

    /// The position of the first item equal to `value`; `ValueError` if there is none.
    ///
    /// ```rhai
    /// let l = Manager().list(["a", "b"]);
    /// print(l.index("b"));        // 1
    /// ```
    #[rhai_fn(name = "index", return_raw, pure, volatile)]
    pub fn list_index(l: &mut ListProxy, value: Dynamic) -> RhaiResult<INT> {
        Ok(l.0
            .call("index", vec![value], &crate::convert::script_type_name)?
            .as_int()
            .unwrap_or(-1))
    }

    /// How many items equal `value`.
    ///
    /// ```rhai
    /// let l = Manager().list([1, 2, 1.0]);
    /// print(l.count(1));          // 2: 1 == 1.0, as in Python
    /// ```
    #[rhai_fn(name = "count", return_raw, pure, volatile)]
    pub fn list_count(l: &mut ListProxy, value: Dynamic) -> RhaiResult<INT> {
        Ok(l.0
            .call("count", vec![value], &crate::convert::script_type_name)?
            .as_int()
            .unwrap_or(0))
    }

    /// Whether an item equals `value`; also `value in l`.
    ///
    /// ```rhai
    /// let l = Manager().list([1, 2]);
    /// print(2 in l);              // true
    /// ```
    #[rhai_fn(name = "contains", return_raw, pure, volatile)]
    pub fn list_contains(l: &mut ListProxy, value: Dynamic) -> RhaiResult<bool> {
        Ok(l.0
            .call(
                "__contains__",
                vec![value],
                &crate::convert::script_type_name,
            )?
            .as_bool()
            == Ok(true))
    }

    /// The number of items.
    ///
    /// ```rhai
    /// let l = Manager().list(0..4);
    /// print(l.len());             // 4
    /// ```
    #[rhai_fn(name = "len", return_raw, pure, volatile)]
    pub fn list_len(l: &mut ListProxy) -> RhaiResult<INT> {
        Ok(l.0
            .call_plain("__len__", Array::new())?
            .as_int()
            .unwrap_or(0))
    }

    /// Whether it has no items.
    ///
    /// ```rhai
    /// print(Manager().list().is_empty());   // true
    /// ```
    #[rhai_fn(name = "is_empty", return_raw, pure, volatile)]
    pub fn list_is_empty(l: &mut ListProxy) -> RhaiResult<bool> {
        Ok(l.0.call_plain("__len__", Array::new())?.as_int() == Ok(0))
    }

    /// Removes every item.
    ///
    /// ```rhai
    /// let l = Manager().list([1, 2]);
    /// l.clear();
    /// print(l);                   // []
    /// ```
    #[rhai_fn(name = "clear", return_raw, pure, volatile)]
    pub fn list_clear(l: &mut ListProxy) -> RhaiResult<()> {
        l.0.call_plain_unit("clear", Array::new())?;
        Ok(())
    }

    /// Reverses the items in place.
    ///
    /// ```rhai
    /// let l = Manager().list([1, 2, 3]);
    /// l.reverse();
    /// print(l);                   // [3, 2, 1]
    /// ```
    #[rhai_fn(name = "reverse", return_raw, pure, volatile)]
    pub fn list_reverse(l: &mut ListProxy) -> RhaiResult<()> {
        l.0.call_plain_unit("reverse", Array::new())?;
        Ok(())
    }

    /// Sorts the items in place (numbers, strings, chars, booleans, blobs or arrays, each
    /// among their own kind; mixing kinds is a `TypeError`).
    ///
    /// ```rhai
    /// let l = Manager().list([3, 1, 2]);
    /// l.sort();
    /// print(l.to_array());   // [1, 2, 3]
    /// ```
    #[rhai_fn(name = "sort", return_raw, pure, volatile)]
    pub fn list_sort(l: &mut ListProxy) -> RhaiResult<()> {
        l.0.call_plain_unit("sort", Array::new())?;
        Ok(())
    }

    /// A plain (unshared) array with the current items; `for x in l` walks the same
    /// snapshot.
    ///
    /// ```rhai
    /// let l = Manager().list(["a", "b"]);
    /// for x in l { print(x); }
    /// ```
    #[rhai_fn(name = "to_array", name = "copy", return_raw, pure, volatile)]
    pub fn list_to_array(l: &mut ListProxy) -> RhaiResult<Array> {
        Ok(super::array(l.0.call_plain("copy", Array::new())?))
    }

    /// The items, as an array prints (or why they cannot be read).
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn list_to_string(l: &mut ListProxy) -> String {
        super::shown("ListProxy", &l.0, "copy")
    }

    // ---------------------------------------------------------------- Value

    /// The current value.
    ///
    /// ```rhai
    /// let v = Manager().Value(0);
    /// v.value = 41;
    /// v.value += 1;               // two calls: hold a manager Lock if others write too
    /// print(v.value);             // 42
    /// ```
    #[rhai_fn(get = "value", return_raw, pure, volatile)]
    pub fn value_get(v: &mut ValueProxy) -> RhaiResult<Dynamic> {
        Ok(v.0.call_plain("get", Array::new())?)
    }

    /// Replaces the value.
    #[rhai_fn(set = "value", return_raw, volatile)]
    pub fn value_set(v: &mut ValueProxy, value: Dynamic) -> RhaiResult<()> {
        v.0.call_unit("set", vec![value], &crate::convert::script_type_name)?;
        Ok(())
    }

    /// The current value (Python's `v.get()`).
    ///
    /// ```rhai
    /// let v = Manager().Value("i", 7);
    /// print(v.get());             // 7
    /// ```
    #[rhai_fn(name = "get", return_raw, pure, volatile)]
    pub fn value_get_method(v: &mut ValueProxy) -> RhaiResult<Dynamic> {
        Ok(v.0.call_plain("get", Array::new())?)
    }

    /// Replaces the value (Python's `v.set(x)`).
    ///
    /// ```rhai
    /// let v = Manager().Value("i", 7);
    /// v.set(8);
    /// print(v.value);             // 8
    /// ```
    #[rhai_fn(name = "set", return_raw, pure, volatile)]
    pub fn value_set_method(v: &mut ValueProxy, value: Dynamic) -> RhaiResult<()> {
        v.0.call_unit("set", vec![value], &crate::convert::script_type_name)?;
        Ok(())
    }

    /// `Value('i', 1)`, as Python shows it.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn value_to_string(v: &mut ValueProxy) -> String {
        let typecode = v.0.call_plain("typecode", Array::new());
        let value = v.0.call_plain("get", Array::new());
        match (typecode, value) {
            (Ok(t), Ok(value)) => {
                let t = t.into_string().unwrap_or_default();
                if t.is_empty() {
                    format!("Value({value:?})")
                } else {
                    format!("Value('{t}', {value:?})")
                }
            }
            (Err(e), _) | (_, Err(e)) => format!("<ValueProxy: {}>", e.message),
        }
    }

    // ---------------------------------------------------------------- Lock

    /// Takes the lock, waiting as long as it takes; returns `true`.
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn lock_acquire(lock: &mut LockProxy) -> RhaiResult<bool> {
        let taken = lock.0.call_plain("acquire", vec![Dynamic::UNIT])?;
        Ok(taken.as_bool().unwrap_or(false))
    }

    /// Takes the lock, waiting at most `timeout` seconds; returns whether it did.
    /// `acquire(false)` does not wait, as Python's `acquire(blocking=False)`.
    ///
    /// ```rhai
    /// let lock = Manager().Lock();
    /// lock.acquire();
    /// let p = spawn { exit(if lock.acquire(0.05) { 1 } else { 0 }); };
    /// print(p.join());       // 0: the child could not take it
    /// lock.release();
    /// ```
    #[rhai_fn(name = "acquire", return_raw, pure, volatile)]
    pub fn lock_acquire_timeout(lock: &mut LockProxy, timeout: Dynamic) -> RhaiResult<bool> {
        let timeout = super::timeout(&timeout, "the acquire timeout")?;
        let taken = lock.0.call_plain("acquire", vec![timeout])?;
        Ok(taken.as_bool().unwrap_or(false))
    }

    /// Frees the lock (any process may); releasing a free lock is a `RuntimeError`, as in
    /// Python.
    ///
    /// ```rhai
    /// let lock = Manager().Lock();
    /// lock.acquire();
    /// lock.release();
    /// try { lock.release(); } catch (e) { print(e.kind); }   // RuntimeError
    /// ```
    #[rhai_fn(name = "release", return_raw, pure, volatile)]
    pub fn lock_release(lock: &mut LockProxy) -> RhaiResult<()> {
        lock.0.call_plain_unit("release", Array::new())?;
        Ok(())
    }

    /// Whether some process holds the lock.
    ///
    /// ```rhai
    /// let lock = Manager().Lock();
    /// with lock { print(lock.locked()); }   // true
    /// print(lock.locked());                 // false
    /// ```
    #[rhai_fn(name = "locked", return_raw, pure, volatile)]
    pub fn lock_locked(lock: &mut LockProxy) -> RhaiResult<bool> {
        Ok(lock
            .0
            .call_plain("locked", Array::new())?
            .as_bool()
            .unwrap_or(false))
    }

    /// `<LockProxy locked>` or `<LockProxy unlocked>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn lock_to_string(lock: &mut LockProxy) -> String {
        match lock.0.call_plain("locked", Array::new()) {
            Ok(locked) if locked.as_bool() == Ok(true) => "<LockProxy locked>".into(),
            Ok(_) => "<LockProxy unlocked>".into(),
            Err(e) => format!("<LockProxy: {}>", e.message),
        }
    }

    // ---------------------------------------------------------------- Queue

    /// Puts a value (anything that travels between processes), waiting for room in a
    /// bounded queue.
    #[rhai_fn(name = "put", return_raw, pure, volatile)]
    pub fn queue_put(q: &mut QueueProxy, value: Dynamic) -> RhaiResult<()> {
        q.0.call_unit(
            "put",
            vec![value, Dynamic::UNIT],
            &crate::convert::script_type_name,
        )?;
        Ok(())
    }

    /// Puts a value, waiting at most `timeout` seconds for room: `Full` if there is none.
    ///
    /// ```rhai
    /// let q = Manager().Queue(1);
    /// q.put("a");
    /// try { q.put("b", 0.01); } catch (e) { print(e.kind); }   // Full
    /// ```
    #[rhai_fn(name = "put", return_raw, pure, volatile)]
    pub fn queue_put_timeout(
        q: &mut QueueProxy,
        value: Dynamic,
        timeout: Dynamic,
    ) -> RhaiResult<()> {
        let timeout = super::timeout(&timeout, "the put timeout")?;
        q.0.call_unit(
            "put",
            vec![value, timeout],
            &crate::convert::script_type_name,
        )?;
        Ok(())
    }

    /// Puts a value if there is room at once, else `Full`.
    ///
    /// ```rhai
    /// let q = Manager().Queue(1);
    /// q.put_nowait(1);
    /// try { q.put_nowait(2); } catch (e) { print(e.kind); }   // Full
    /// ```
    #[rhai_fn(name = "put_nowait", return_raw, pure, volatile)]
    pub fn queue_put_nowait(q: &mut QueueProxy, value: Dynamic) -> RhaiResult<()> {
        q.0.call_unit(
            "put",
            vec![value, Dynamic::from_float(0.0)],
            &crate::convert::script_type_name,
        )?;
        Ok(())
    }

    /// Takes the oldest value, waiting for one.
    #[rhai_fn(name = "get", return_raw, pure, volatile)]
    pub fn queue_get(q: &mut QueueProxy) -> RhaiResult<Dynamic> {
        Ok(q.0.call_plain("get", vec![Dynamic::UNIT])?)
    }

    /// Takes the oldest value, waiting at most `timeout` seconds: `Empty` if none came.
    ///
    /// ```rhai
    /// let q = Manager().Queue();
    /// try { q.get(0.01); } catch (e) { print(e.kind); }   // Empty
    /// ```
    #[rhai_fn(name = "get", return_raw, pure, volatile)]
    pub fn queue_get_timeout(q: &mut QueueProxy, timeout: Dynamic) -> RhaiResult<Dynamic> {
        let timeout = super::timeout(&timeout, "the get timeout")?;
        Ok(q.0.call_plain("get", vec![timeout])?)
    }

    /// Takes a value if one is waiting, else `Empty`.
    ///
    /// ```rhai
    /// let q = Manager().Queue();
    /// q.put(1);
    /// print(q.get_nowait());      // 1
    /// try { q.get_nowait(); } catch (e) { print(e.kind); }    // Empty
    /// ```
    #[rhai_fn(name = "get_nowait", return_raw, pure, volatile)]
    pub fn queue_get_nowait(q: &mut QueueProxy) -> RhaiResult<Dynamic> {
        Ok(q.0.call_plain("get", vec![Dynamic::from_float(0.0)])?)
    }

    /// Whether no value is waiting.
    ///
    /// ```rhai
    /// let q = Manager().Queue();
    /// print(q.empty());           // true
    /// ```
    #[rhai_fn(name = "empty", return_raw, pure, volatile)]
    pub fn queue_empty(q: &mut QueueProxy) -> RhaiResult<bool> {
        Ok(q.0
            .call_plain("empty", Array::new())?
            .as_bool()
            .unwrap_or(false))
    }

    /// Whether a bounded queue is full.
    ///
    /// ```rhai
    /// let q = Manager().Queue(1);
    /// q.put("x");
    /// print(q.full());            // true
    /// ```
    #[rhai_fn(name = "full", return_raw, pure, volatile)]
    pub fn queue_full(q: &mut QueueProxy) -> RhaiResult<bool> {
        Ok(q.0
            .call_plain("full", Array::new())?
            .as_bool()
            .unwrap_or(false))
    }

    /// How many values are waiting (exactly: the manager counts them).
    ///
    /// ```rhai
    /// let q = Manager().Queue();
    /// q.put(1);
    /// q.put(2);
    /// print(q.qsize());           // 2
    /// ```
    #[rhai_fn(name = "qsize", return_raw, pure, volatile)]
    pub fn queue_qsize(q: &mut QueueProxy) -> RhaiResult<INT> {
        Ok(q.0.call_plain("qsize", Array::new())?.as_int().unwrap_or(0))
    }

    /// `<QueueProxy qsize=2>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn queue_to_string(q: &mut QueueProxy) -> String {
        match q.0.call_plain("qsize", Array::new()) {
            Ok(n) => format!("<QueueProxy qsize={n}>"),
            Err(e) => format!("<QueueProxy: {}>", e.message),
        }
    }

    // ---------------------------------------------------------------- Namespace

    /// Attribute `name`, as `ns.name` reads it; a missing one is an `AttributeError`.
    #[rhai_fn(index_get, return_raw, pure, volatile)]
    pub fn namespace_get(ns: &mut NamespaceProxy, name: &str) -> RhaiResult<Dynamic> {
        Ok(ns
            .0
            .call_plain("__getattr__", vec![Dynamic::from(name.to_string())])?)
    }

    /// Attribute `name` (Python's `getattr(ns, name)`); a missing one is an `AttributeError`.
    ///
    /// ```rhai
    /// let ns = Manager().Namespace(#{ x: 1 });
    /// print(getattr(ns, "x"));            // 1
    /// print(getattr(ns, "y", "none"));    // none
    /// ```
    #[rhai_fn(name = "getattr", return_raw, pure, volatile)]
    pub fn namespace_getattr(ns: &mut NamespaceProxy, name: &str) -> RhaiResult<Dynamic> {
        Ok(ns
            .0
            .call_plain("__getattr__", vec![Dynamic::from(name.to_string())])?)
    }

    /// Attribute `name`, or `default` if there is none (Python's `getattr(ns, name, default)`).
    #[rhai_fn(name = "getattr", return_raw, pure, volatile)]
    pub fn namespace_getattr_default(
        ns: &mut NamespaceProxy,
        name: &str,
        default: Dynamic,
    ) -> RhaiResult<Dynamic> {
        match ns
            .0
            .call_plain("__getattr__", vec![Dynamic::from(name.to_string())])
        {
            Err(e) if e.kind == ErrorKind::AttributeError => Ok(default),
            other => Ok(other?),
        }
    }

    /// Sets attribute `name` (`ns.name = value` does too).
    #[rhai_fn(index_set, return_raw, volatile)]
    pub fn namespace_set(ns: &mut NamespaceProxy, name: &str, value: Dynamic) -> RhaiResult<()> {
        let args = vec![Dynamic::from(name.to_string()), value];
        ns.0.call_unit("__setattr__", args, &crate::convert::script_type_name)?;
        Ok(())
    }

    /// Sets attribute `name` (Python's `setattr(ns, name, value)`).
    ///
    /// ```rhai
    /// let ns = Manager().Namespace();
    /// setattr(ns, "x", 1);
    /// print(ns.x);                // 1
    /// ```
    #[rhai_fn(name = "setattr", return_raw, pure, volatile)]
    pub fn namespace_setattr(
        ns: &mut NamespaceProxy,
        name: &str,
        value: Dynamic,
    ) -> RhaiResult<()> {
        let args = vec![Dynamic::from(name.to_string()), value];
        ns.0.call_unit("__setattr__", args, &crate::convert::script_type_name)?;
        Ok(())
    }

    /// Whether attribute `name` is set (Python's `hasattr`); also `name in ns`.
    ///
    /// ```rhai
    /// let ns = Manager().Namespace();
    /// ns.job = "Builder";
    /// delattr(ns, "job");
    /// print(hasattr(ns, "job"));   // false
    /// ```
    #[rhai_fn(name = "hasattr", name = "contains", return_raw, pure, volatile)]
    pub fn namespace_hasattr(ns: &mut NamespaceProxy, name: &str) -> RhaiResult<bool> {
        let found =
            ns.0.call_plain("__contains__", vec![Dynamic::from(name.to_string())])?;
        Ok(found.as_bool() == Ok(true))
    }

    /// Removes attribute `name` (Python's `del ns.name`); a missing one is an
    /// `AttributeError`.
    ///
    /// ```rhai
    /// let ns = Manager().Namespace(#{ x: 1 });
    /// delattr(ns, "x");
    /// print("x" in ns);           // false
    /// ```
    #[rhai_fn(name = "delattr", return_raw, pure, volatile)]
    pub fn namespace_delattr(ns: &mut NamespaceProxy, name: &str) -> RhaiResult<()> {
        ns.0.call_plain_unit("__delattr__", vec![Dynamic::from(name.to_string())])?;
        Ok(())
    }

    /// A plain map of the attributes.
    ///
    /// ```rhai
    /// let ns = Manager().Namespace();
    /// ns.x = 1;
    /// print(ns.to_map());         // #{"x": 1}
    /// ```
    #[rhai_fn(name = "to_map", return_raw, pure, volatile)]
    pub fn namespace_to_map(ns: &mut NamespaceProxy) -> RhaiResult<Map> {
        Ok(super::map(ns.0.call_plain("copy", Array::new())?))
    }

    /// `Namespace(job="Builder", name="Bob")`: the attributes not starting with `_`, sorted,
    /// as Python shows them.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn namespace_to_string(ns: &mut NamespaceProxy) -> String {
        match ns.0.call_plain("copy", Array::new()) {
            Ok(attrs) => {
                let attrs = attrs.try_cast::<Map>().unwrap_or_default();
                let shown: Vec<String> = attrs
                    .iter()
                    .filter(|(name, _)| !name.starts_with('_'))
                    .map(|(name, value)| format!("{name}={value:?}"))
                    .collect();
                format!("Namespace({})", shown.join(", "))
            }
            Err(e) => format!("<NamespaceProxy: {}>", e.message),
        }
    }
}
