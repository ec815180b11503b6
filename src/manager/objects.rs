//! What a manager holds, and the operations on it that answer at once: Python's `dict`,
//! `list`, `Value` and `Namespace`, over the values that travel between processes.
//!
//! Pure data and logic, with no descriptors or waiting, so it is unit-tested here; the
//! server ([`super::server`]) owns the blocking objects (`Lock`, `Queue`) and calls in
//! here for the rest. Each operation is one call in the manager's single thread, so each
//! is atomic for the processes that share the object.

use std::cmp::Ordering;

use indexmap::IndexMap;
use rhai::{Array, Dynamic, ImmutableString, Map, INT};

use crate::convert::{must_be, type_error, type_name};
use crate::error::{Error, ErrorKind, Result};
use crate::ipc::codec;

/// A `dict`: keys in insertion order, as Python's, identified by their encoding.
#[derive(Default)]
pub(crate) struct Dict {
    entries: IndexMap<Vec<u8>, (Dynamic, Dynamic)>,
}

/// A `list`.
#[derive(Default)]
pub(crate) struct List {
    items: Vec<Dynamic>,
}

/// A `Value(typecode, value)`: any value that travels, as Python's manager `Value` holds any
/// object (the typecode is kept for display only).
pub(crate) struct Value {
    typecode: String,
    value: Dynamic,
}

/// A `Namespace`: named attributes.
#[derive(Default)]
pub(crate) struct Namespace {
    attrs: Map,
}

/// How a value is shown in messages: Rhai's debug form (`"text"`, `[1, 2]`).
pub(crate) fn repr(value: &Dynamic) -> String {
    format!("{value:?}")
}

/// The identity of a dict key: its encoding. Arrays and maps cannot be keys (they are
/// Python's unhashable `list` and `dict`).
fn key_of(key: &Dynamic) -> Result<Vec<u8>> {
    if key.is_array() || key.is_map() {
        return Err(type_error(format!(
            "unhashable type: {} cannot be a dict key (use (), a bool, a number, a string, a char or a blob)",
            type_name(key)
        )));
    }
    let mut bytes = Vec::new();
    codec::encode(key, &mut bytes).map_err(|e| Error::value(e.to_string()))?;
    Ok(bytes)
}

fn key_error(key: &Dynamic) -> Error {
    Error::new(ErrorKind::KeyError, repr(key))
}

/// Python's `==` over the values that travel: numbers compare by value (`1 == 1.0`),
/// arrays and maps item by item, everything else by type and value.
pub(crate) fn equal(a: &Dynamic, b: &Dynamic) -> bool {
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.read_lock::<Array>(), b.read_lock::<Array>()) {
        return x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| equal(p, q));
    }
    if let (Some(x), Some(y)) = (a.read_lock::<Map>(), b.read_lock::<Map>()) {
        return x.len() == y.len()
            && x.iter()
                .all(|(k, v)| y.get(k.as_str()).is_some_and(|w| equal(v, w)));
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    codec::encode(a, &mut x).is_ok() && codec::encode(b, &mut y).is_ok() && x == y
}

fn number(value: &Dynamic) -> Option<f64> {
    if value.is_bool() {
        return None;
    }
    value
        .as_int()
        .map(|i| i as f64)
        .or_else(|_| value.as_float())
        .ok()
}

/// Python's `<` for sorting: numbers, strings, chars, booleans, blobs and arrays of these
/// order among their own kind; anything else is a `TypeError`.
fn compare(a: &Dynamic, b: &Dynamic) -> Result<Ordering> {
    if let (Ok(x), Ok(y)) = (a.as_int(), b.as_int()) {
        return Ok(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return Ok(x.partial_cmp(&y).unwrap_or(Ordering::Equal));
    }
    if let (Ok(x), Ok(y)) = (a.as_immutable_string_ref(), b.as_immutable_string_ref()) {
        return Ok(x.as_str().cmp(y.as_str()));
    }
    if let (Ok(x), Ok(y)) = (a.as_char(), b.as_char()) {
        return Ok(x.cmp(&y));
    }
    if let (Ok(x), Ok(y)) = (a.as_bool(), b.as_bool()) {
        return Ok(x.cmp(&y));
    }
    if let (Ok(x), Ok(y)) = (a.as_blob_ref(), b.as_blob_ref()) {
        return Ok(x.as_slice().cmp(y.as_slice()));
    }
    if let (Some(x), Some(y)) = (a.read_lock::<Array>(), b.read_lock::<Array>()) {
        for (p, q) in x.iter().zip(y.iter()) {
            match compare(p, q)? {
                Ordering::Equal => {}
                other => return Ok(other),
            }
        }
        return Ok(x.len().cmp(&y.len()));
    }
    Err(type_error(format!(
        "'<' is not supported between {} and {}",
        type_name(a),
        type_name(b)
    )))
}

/// Reads argument `i` of a request.
pub(crate) fn arg(args: &[Dynamic], i: usize) -> Result<&Dynamic> {
    args.get(i)
        .ok_or_else(|| type_error(format!("missing argument {}", i + 1)))
}

fn int_arg(args: &[Dynamic], i: usize, what: &str) -> Result<INT> {
    let value = arg(args, i)?;
    value.as_int().map_err(|_| must_be(what, "an int", value))
}

fn string_arg(args: &[Dynamic], i: usize, what: &str) -> Result<ImmutableString> {
    let value = arg(args, i)?;
    value
        .as_immutable_string_ref()
        .map(|s| s.clone())
        .map_err(|_| must_be(what, "a string", value))
}

fn array_arg(args: &[Dynamic], i: usize, what: &str) -> Result<Array> {
    let value = arg(args, i)?;
    value
        .read_lock::<Array>()
        .map(|a| a.clone())
        .ok_or_else(|| must_be(what, "an array", value))
}

fn unknown(kind: &str, method: &str) -> Error {
    Error::new(
        ErrorKind::AttributeError,
        format!("a manager's {kind} has no method `{method}`"),
    )
}

/// A map with each key as its string form (`65` → `"65"`), as Rhai maps have string keys.
fn string_key(key: &Dynamic) -> String {
    match key.as_immutable_string_ref() {
        Ok(s) => s.to_string(),
        Err(_) => key.to_string(),
    }
}

impl Dict {
    /// A dict holding the entries of `init`: a map, or an array of `[key, value]` pairs.
    pub(crate) fn from_init(init: Option<&Dynamic>) -> Result<Self> {
        let mut dict = Self::default();
        if let Some(init) = init {
            dict.update(init)?;
        }
        Ok(dict)
    }

    fn insert(&mut self, key: Dynamic, value: Dynamic) -> Result<()> {
        let id = key_of(&key)?;
        match self.entries.get_mut(&id) {
            // Python keeps the first key object and its place.
            Some(entry) => entry.1 = value,
            None => {
                self.entries.insert(id, (key, value));
            }
        }
        Ok(())
    }

    fn update(&mut self, from: &Dynamic) -> Result<()> {
        if let Some(map) = from.read_lock::<Map>() {
            for (k, v) in map.iter() {
                self.insert(Dynamic::from(k.to_string()), v.clone())?;
            }
            return Ok(());
        }
        let Some(pairs) = from.read_lock::<Array>() else {
            return Err(type_error(format!(
                "a dict is updated from a map or an array of [key, value] pairs, not {}",
                type_name(from)
            )));
        };
        for (i, pair) in pairs.iter().enumerate() {
            match pair.read_lock::<Array>() {
                Some(kv) if kv.len() == 2 => self.insert(kv[0].clone(), kv[1].clone())?,
                _ => {
                    return Err(Error::value(format!(
                        "item {i} of the update is not a [key, value] pair: {}",
                        repr(pair)
                    )))
                }
            }
        }
        Ok(())
    }

    /// The entries as a map, keys turned into strings.
    pub(crate) fn to_map(&self) -> Map {
        self.entries
            .values()
            .map(|(k, v)| (string_key(k).into(), v.clone()))
            .collect()
    }

    /// Runs `method` (Python's name) with `args`.
    pub(crate) fn call(&mut self, method: &str, args: &[Dynamic]) -> Result<Dynamic> {
        Ok(match method {
            "__getitem__" => {
                let key = arg(args, 0)?;
                match self.entries.get(&key_of(key)?) {
                    Some((_, v)) => v.clone(),
                    None => return Err(key_error(key)),
                }
            }
            "__setitem__" => {
                self.insert(arg(args, 0)?.clone(), arg(args, 1)?.clone())?;
                Dynamic::UNIT
            }
            "get" => {
                let key = arg(args, 0)?;
                match self.entries.get(&key_of(key)?) {
                    Some((_, v)) => v.clone(),
                    None => args.get(1).cloned().unwrap_or(Dynamic::UNIT),
                }
            }
            "setdefault" => {
                let key = arg(args, 0)?;
                let default = args.get(1).cloned().unwrap_or(Dynamic::UNIT);
                let id = key_of(key)?;
                self.entries
                    .entry(id)
                    .or_insert((key.clone(), default))
                    .1
                    .clone()
            }
            "pop" => {
                let key = arg(args, 0)?;
                match self.entries.shift_remove(&key_of(key)?) {
                    Some((_, v)) => v,
                    None => match args.get(1) {
                        Some(default) => default.clone(),
                        None => return Err(key_error(key)),
                    },
                }
            }
            "popitem" => match self.entries.pop() {
                Some((_, (k, v))) => Dynamic::from_array(vec![k, v]),
                None => {
                    return Err(Error::new(
                        ErrorKind::KeyError,
                        "popitem(): dictionary is empty",
                    ))
                }
            },
            "__contains__" => {
                Dynamic::from_bool(self.entries.contains_key(&key_of(arg(args, 0)?)?))
            }
            "__len__" => Dynamic::from_int(self.entries.len() as INT),
            "keys" => Dynamic::from_array(self.entries.values().map(|(k, _)| k.clone()).collect()),
            "values" => {
                Dynamic::from_array(self.entries.values().map(|(_, v)| v.clone()).collect())
            }
            "items" => Dynamic::from_array(
                self.entries
                    .values()
                    .map(|(k, v)| Dynamic::from_array(vec![k.clone(), v.clone()]))
                    .collect(),
            ),
            "update" => {
                self.update(arg(args, 0)?)?;
                Dynamic::UNIT
            }
            "clear" => {
                self.entries.clear();
                Dynamic::UNIT
            }
            "copy" => Dynamic::from_map(self.to_map()),
            _ => return Err(unknown("dict", method)),
        })
    }
}

/// Python's index: negative counts from the end; `None` when out of range.
fn position(index: INT, len: usize) -> Option<usize> {
    let len = len as INT;
    let i = if index < 0 { index + len } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

/// Python's slice bounds: negative from the end, clamped to the list.
fn clamp(index: INT, len: usize) -> usize {
    let len = len as INT;
    let i = if index < 0 { index + len } else { index };
    i.clamp(0, len) as usize
}

impl List {
    /// A list holding the items of `init` (an array).
    pub(crate) fn from_init(init: Option<&Dynamic>) -> Result<Self> {
        match init {
            None => Ok(Self::default()),
            Some(init) => Ok(Self {
                items: array_arg(std::slice::from_ref(init), 0, "a list's initial items")?,
            }),
        }
    }

    fn index_of(&self, value: &Dynamic) -> Option<usize> {
        self.items.iter().position(|item| equal(item, value))
    }

    /// Runs `method` (Python's name) with `args`.
    pub(crate) fn call(&mut self, method: &str, args: &[Dynamic]) -> Result<Dynamic> {
        match method {
            "__getitem__" | "__setitem__" | "slice" => self.index(method, args),
            "append" | "extend" | "insert" => self.add(method, args),
            "pop" | "remove" | "clear" => self.take(method, args),
            "index" | "count" | "__contains__" | "__len__" | "copy" => self.look(method, args),
            "reverse" | "sort" => self.order(method, args),
            _ => Err(unknown("list", method)),
        }
    }

    /// `l[i]`, `l[i] = v`, `l.slice(a, b)`.
    fn index(&mut self, method: &str, args: &[Dynamic]) -> Result<Dynamic> {
        let len = self.items.len();
        let out_of_range =
            |what: &str| Error::new(ErrorKind::IndexError, format!("list {what} out of range"));
        Ok(match method {
            "__getitem__" => {
                let i = int_arg(args, 0, "a list index")?;
                match position(i, len) {
                    Some(i) => self.items[i].clone(),
                    None => return Err(out_of_range("index")),
                }
            }
            "__setitem__" => {
                let i = int_arg(args, 0, "a list index")?;
                match position(i, len) {
                    Some(i) => self.items[i] = arg(args, 1)?.clone(),
                    None => return Err(out_of_range("assignment index")),
                }
                Dynamic::UNIT
            }
            _ => {
                let start = clamp(int_arg(args, 0, "a slice start")?, len);
                let end = clamp(int_arg(args, 1, "a slice end")?, len);
                Dynamic::from_array(if start < end {
                    self.items[start..end].to_vec()
                } else {
                    Array::new()
                })
            }
        })
    }

    /// `append`, `extend`, `insert`.
    fn add(&mut self, method: &str, args: &[Dynamic]) -> Result<Dynamic> {
        match method {
            "append" => self.items.push(arg(args, 0)?.clone()),
            "extend" => self
                .items
                .extend(array_arg(args, 0, "what extends a list")?),
            _ => {
                let i = clamp(int_arg(args, 0, "an insert index")?, self.items.len());
                self.items.insert(i, arg(args, 1)?.clone());
            }
        }
        Ok(Dynamic::UNIT)
    }

    /// `pop`, `remove`, `clear`.
    fn take(&mut self, method: &str, args: &[Dynamic]) -> Result<Dynamic> {
        let len = self.items.len();
        match method {
            "pop" => {
                if len == 0 {
                    return Err(Error::new(ErrorKind::IndexError, "pop from empty list"));
                }
                let i = match args.first() {
                    None => len - 1,
                    Some(_) => match position(int_arg(args, 0, "a pop index")?, len) {
                        Some(i) => i,
                        None => {
                            return Err(Error::new(
                                ErrorKind::IndexError,
                                "list pop index out of range",
                            ))
                        }
                    },
                };
                return Ok(self.items.remove(i));
            }
            "remove" => {
                let value = arg(args, 0)?;
                match self.index_of(value) {
                    Some(i) => drop(self.items.remove(i)),
                    None => {
                        return Err(Error::value(format!(
                            "list.remove(x): {} is not in the list",
                            repr(value)
                        )))
                    }
                }
            }
            _ => self.items.clear(),
        }
        Ok(Dynamic::UNIT)
    }

    /// `index`, `count`, `x in l`, `len`, `copy`: what changes nothing.
    fn look(&self, method: &str, args: &[Dynamic]) -> Result<Dynamic> {
        Ok(match method {
            "index" => {
                let value = arg(args, 0)?;
                match self.index_of(value) {
                    Some(i) => Dynamic::from_int(i as INT),
                    None => {
                        return Err(Error::value(format!("{} is not in the list", repr(value))))
                    }
                }
            }
            "count" => {
                let value = arg(args, 0)?;
                let n = self.items.iter().filter(|item| equal(item, value)).count();
                Dynamic::from_int(n as INT)
            }
            "__contains__" => Dynamic::from_bool(self.index_of(arg(args, 0)?).is_some()),
            "__len__" => Dynamic::from_int(self.items.len() as INT),
            _ => Dynamic::from_array(self.items.clone()),
        })
    }

    /// `reverse`, `sort`: all or nothing, a failed sort leaves the list as it was.
    fn order(&mut self, method: &str, args: &[Dynamic]) -> Result<Dynamic> {
        if method == "reverse" {
            self.items.reverse();
            return Ok(Dynamic::UNIT);
        }
        let descending = args.first().is_some_and(|r| r.as_bool() == Ok(true));
        let before = self.items.clone();
        let mut failure = None;
        self.items.sort_by(|a, b| match compare(a, b) {
            Ok(order) if descending => order.reverse(),
            Ok(order) => order,
            Err(e) => {
                failure.get_or_insert(e);
                Ordering::Equal
            }
        });
        if let Some(e) = failure {
            self.items = before;
            return Err(e);
        }
        Ok(Dynamic::UNIT)
    }
}

impl Value {
    /// A value with its typecode (any string; `""` when none was given).
    pub(crate) fn new(typecode: String, value: Dynamic) -> Self {
        Self { typecode, value }
    }

    /// Runs `method` with `args`.
    pub(crate) fn call(&mut self, method: &str, args: &[Dynamic]) -> Result<Dynamic> {
        Ok(match method {
            "get" => self.value.clone(),
            "set" => {
                self.value = arg(args, 0)?.clone();
                Dynamic::UNIT
            }
            "typecode" => Dynamic::from(self.typecode.clone()),
            _ => return Err(unknown("Value", method)),
        })
    }
}

impl Namespace {
    /// Runs `method` with `args`.
    pub(crate) fn call(&mut self, method: &str, args: &[Dynamic]) -> Result<Dynamic> {
        let missing = |name: &str| {
            Error::new(
                ErrorKind::AttributeError,
                format!("'Namespace' object has no attribute '{name}'"),
            )
        };
        Ok(match method {
            "__getattr__" => {
                let name = string_arg(args, 0, "an attribute name")?;
                match self.attrs.get(name.as_str()) {
                    Some(v) => v.clone(),
                    None => return Err(missing(&name)),
                }
            }
            "__setattr__" => {
                let name = string_arg(args, 0, "an attribute name")?;
                self.attrs
                    .insert(name.as_str().into(), arg(args, 1)?.clone());
                Dynamic::UNIT
            }
            "__delattr__" => {
                let name = string_arg(args, 0, "an attribute name")?;
                match self.attrs.remove(name.as_str()) {
                    Some(v) => v,
                    None => return Err(missing(&name)),
                }
            }
            "__contains__" => {
                let name = string_arg(args, 0, "an attribute name")?;
                Dynamic::from_bool(self.attrs.contains_key(name.as_str()))
            }
            "copy" => Dynamic::from_map(self.attrs.clone()),
            _ => return Err(unknown("Namespace", method)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Dynamic {
        Dynamic::from(text.to_string())
    }

    fn i(n: INT) -> Dynamic {
        Dynamic::from_int(n)
    }

    #[test]
    fn dict_keeps_insertion_order_and_key_types() {
        let mut d = Dict::default();
        for n in [67, 65, 66] {
            let _ = d.call("__setitem__", &[i(n), s(&n.to_string())]).unwrap();
        }
        let _ = d.call("__setitem__", &[i(65), s("again")]).unwrap();
        let keys = d.call("keys", &[]).unwrap().cast::<Array>();
        let keys: Vec<INT> = keys.iter().map(|k| k.as_int().unwrap()).collect();
        assert_eq!(keys, vec![67, 65, 66]);
        assert_eq!(
            d.call("__getitem__", &[i(65)])
                .unwrap()
                .into_string()
                .unwrap(),
            "again"
        );
        // A string "65" is another key than the int 65.
        let err = d.call("__getitem__", &[s("65")]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::KeyError);
        assert_eq!(err.message, "\"65\"");
        assert_eq!(d.to_map()["65"].clone().into_string().unwrap(), "again");
    }

    #[test]
    fn dict_get_pop_setdefault_popitem() {
        let mut d = Dict::from_init(Some(&Dynamic::from_map(
            [("a".into(), i(1))].into_iter().collect(),
        )))
        .unwrap();
        assert!(d.call("get", &[s("zz")]).unwrap().is_unit());
        assert_eq!(
            d.call("get", &[s("zz"), i(9)]).unwrap().as_int().unwrap(),
            9
        );
        assert_eq!(
            d.call("setdefault", &[s("b"), i(2)])
                .unwrap()
                .as_int()
                .unwrap(),
            2
        );
        assert_eq!(
            d.call("setdefault", &[s("b"), i(3)])
                .unwrap()
                .as_int()
                .unwrap(),
            2
        );
        assert_eq!(d.call("pop", &[s("a")]).unwrap().as_int().unwrap(), 1);
        assert_eq!(d.call("pop", &[s("a"), i(0)]).unwrap().as_int().unwrap(), 0);
        assert_eq!(
            d.call("pop", &[s("a")]).unwrap_err().kind,
            ErrorKind::KeyError
        );
        let item = d.call("popitem", &[]).unwrap().cast::<Array>();
        assert_eq!(item[0].clone().into_string().unwrap(), "b");
        assert_eq!(
            d.call("popitem", &[]).unwrap_err().kind,
            ErrorKind::KeyError
        );
        assert_eq!(d.call("__len__", &[]).unwrap().as_int().unwrap(), 0);
    }

    #[test]
    fn unhashable_keys_are_type_errors() {
        let mut d = Dict::default();
        let err = d
            .call("__setitem__", &[Dynamic::from_array(vec![]), i(1)])
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::TypeError);
    }

    #[test]
    fn dict_updates_from_pairs_and_rejects_bad_pairs() {
        let mut d = Dict::default();
        let pairs = Dynamic::from_array(vec![Dynamic::from_array(vec![i(1), s("x")])]);
        let _ = d.call("update", &[pairs]).unwrap();
        assert!(d.call("__contains__", &[i(1)]).unwrap().as_bool().unwrap());
        let bad = Dynamic::from_array(vec![i(1)]);
        assert_eq!(
            d.call("update", &[bad]).unwrap_err().kind,
            ErrorKind::ValueError
        );
    }

    #[test]
    fn list_indexes_and_slices_like_python() {
        let mut l = List::from_init(Some(&Dynamic::from_array((0..5).map(i).collect()))).unwrap();
        assert_eq!(
            l.call("__getitem__", &[i(-1)]).unwrap().as_int().unwrap(),
            4
        );
        assert_eq!(
            l.call("__getitem__", &[i(5)]).unwrap_err().kind,
            ErrorKind::IndexError
        );
        let slice = l.call("slice", &[i(2), i(10)]).unwrap().cast::<Array>();
        assert_eq!(slice.len(), 3);
        assert!(l
            .call("slice", &[i(4), i(1)])
            .unwrap()
            .cast::<Array>()
            .is_empty());
        assert_eq!(l.call("pop", &[]).unwrap().as_int().unwrap(), 4);
        assert_eq!(l.call("pop", &[i(0)]).unwrap().as_int().unwrap(), 0);
        let _ = l.call("insert", &[i(-100), i(7)]).unwrap();
        assert_eq!(
            l.call("index", &[Dynamic::from_float(7.0)])
                .unwrap()
                .as_int()
                .unwrap(),
            0
        );
        let _ = l.call("remove", &[i(7)]).unwrap();
        assert_eq!(
            l.call("remove", &[i(7)]).unwrap_err().kind,
            ErrorKind::ValueError
        );
        assert_eq!(l.call("count", &[i(2)]).unwrap().as_int().unwrap(), 1);
    }

    #[test]
    fn list_sorts_its_own_kinds_and_refuses_mixed_ones() {
        let mut l = List::from_init(Some(&Dynamic::from_array(vec![
            i(3),
            Dynamic::from_float(1.5),
            i(2),
        ])))
        .unwrap();
        let _ = l.call("sort", &[]).unwrap();
        let items = l.call("copy", &[]).unwrap().cast::<Array>();
        assert_eq!(items[0].as_float().unwrap(), 1.5);
        let _ = l.call("sort", &[Dynamic::TRUE]).unwrap();
        assert_eq!(l.call("__getitem__", &[i(0)]).unwrap().as_int().unwrap(), 3);
        let _ = l.call("append", &[s("x")]).unwrap();
        assert_eq!(l.call("sort", &[]).unwrap_err().kind, ErrorKind::TypeError);
        assert_eq!(
            l.call("pop", &[i(9)]).unwrap_err().kind,
            ErrorKind::IndexError
        );
        assert_eq!(
            l.call("nope", &[]).unwrap_err().kind,
            ErrorKind::AttributeError
        );
    }

    #[test]
    fn equality_is_pythons() {
        assert!(equal(&i(1), &Dynamic::from_float(1.0)));
        assert!(!equal(&i(1), &Dynamic::TRUE));
        assert!(!equal(&i(1), &s("1")));
        let a = Dynamic::from_array(vec![i(1), s("a")]);
        let b = Dynamic::from_array(vec![Dynamic::from_float(1.0), s("a")]);
        assert!(equal(&a, &b));
    }

    #[test]
    fn namespace_attributes() {
        let mut n = Namespace::default();
        let _ = n.call("__setattr__", &[s("name"), s("Bob")]).unwrap();
        assert!(n
            .call("__contains__", &[s("name")])
            .unwrap()
            .as_bool()
            .unwrap());
        let _ = n.call("__delattr__", &[s("name")]).unwrap();
        let err = n.call("__getattr__", &[s("name")]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::AttributeError);
        assert_eq!(err.message, "'Namespace' object has no attribute 'name'");
    }
}
