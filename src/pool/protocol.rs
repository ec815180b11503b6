//! The pool's messages: what the parent sends a worker ([`TaskMsg`]) and what comes back
//! ([`ReplyMsg`]).
//!
//! Each message is one value of [`crate::ipc::codec`], framed as a `Pipe` frames its
//! messages ([`crate::ipc::pipe::frame`], [`crate::ipc::pipe::read_message`]): an 8-byte
//! length, then the encoding. The value is an array whose first item names the message, so
//! that both sides can check what they read and new kinds can be added later:
//!
//! | message | from | array |
//! |---|---|---|
//! | script | pool, first to a remote worker | `["script", protocol, name, source, host, args, constants, closures, init]` |
//! | task | pool | `["task", job, index, function, curry, items, star]` |
//! | done | worker | `["done", job, index, values]` |
//! | failed | worker | `["failed", job, index, error]` |
//! | skipped | worker | `["skipped", job, index]` |
//! | init failed | worker | `["init-failed", error]` |
//! | start failed | remote worker | `["start-failed", error]` |
//! | print | remote worker | `["print", text]` |
//!
//! A remote worker (`procscript worker` under ssh, see [`super::remote`]) first writes
//! [`HELLO`], the protocol number and its version on a line of their own, before any
//! message: whatever a login script printed before it can be told apart and skipped.
//!
//! Nothing else is positional: every other module builds and reads these types.

use rhai::{Array, Dynamic, Map};

use crate::error::{Error, Result};
use crate::ipc::pipe;

/// The version of this protocol: a remote worker that speaks another refuses the script.
pub(crate) const PROTOCOL: u64 = 1;

/// What a remote worker writes first, then `PROTOCOL VERSION\n`.
pub(crate) const HELLO: &[u8] = b"\0procscript-pool-worker ";

/// The first message to a remote worker: the script it calls functions of, and what the
/// functions may read besides their arguments.
#[derive(Debug, Clone)]
pub(crate) struct ScriptMsg {
    /// [`PROTOCOL`] of the sender.
    pub protocol: u64,
    /// The script's name, for error messages (`job.rhai`).
    pub name: String,
    /// The script's text: the worker compiles it and runs none of its statements.
    pub source: String,
    /// The host as the pool names it, for error messages.
    pub host: String,
    /// The script's `ARGS`.
    pub args: Array,
    /// The script's global constants that can travel, for `global::NAME` in functions.
    pub constants: Map,
    /// The script's closures, `[name, params, line, column]` each: their names are made
    /// afresh by every process that compiles the script, so the worker finds its own
    /// name for each by its parameters and place in the source.
    pub closures: Array,
    /// The pool's initializer and its arguments: `[name, curry, initargs]`, or `()`.
    pub init: Dynamic,
}

/// A chunk of a job, for one worker: call `function` on each item of `items`.
#[derive(Debug, Clone)]
pub(crate) struct TaskMsg {
    /// The job (one pool call) it belongs to.
    pub job: u64,
    /// The position of `items[0]` in the job's list.
    pub index: usize,
    /// The function's name: workers find its body in the code they inherited.
    pub function: String,
    /// The function's curried arguments: a closure's captured values.
    pub curry: Array,
    /// One argument per call, or (with `star`) one array of arguments per call.
    pub items: Array,
    /// Whether each item is an array of arguments (`starmap`, `apply`).
    pub star: bool,
}

/// A worker's answer to a task, or to its own start.
#[derive(Debug, Clone)]
pub(crate) enum ReplyMsg {
    /// The task ran: one value per item.
    Done {
        /// The task's job.
        job: u64,
        /// The task's first position.
        index: usize,
        /// The results, in the items' order.
        values: Array,
    },
    /// The task raised an error: a catchable map (`kind`, `message`, ...).
    Failed {
        /// The task's job.
        job: u64,
        /// The task's first position.
        index: usize,
        /// The error.
        error: Map,
    },
    /// The task was not run (or not finished): its job had been cancelled.
    Skipped {
        /// The task's job.
        job: u64,
        /// The task's first position.
        index: usize,
    },
    /// The pool's initializer failed in this worker, which then ends.
    InitFailed {
        /// The initializer's error.
        error: Map,
    },
    /// A remote worker could not take the script (another protocol, a script that does
    /// not compile there), and ends.
    StartFailed {
        /// Why.
        error: Map,
    },
    /// A line a remote task printed (its standard output is the pool's channel).
    Print {
        /// The line, without its newline.
        text: String,
    },
}

impl ReplyMsg {
    /// The task a reply answers, if it answers one.
    pub(crate) fn task(&self) -> Option<(u64, usize)> {
        match self {
            Self::Done { job, index, .. }
            | Self::Failed { job, index, .. }
            | Self::Skipped { job, index } => Some((*job, *index)),
            Self::InitFailed { .. } | Self::StartFailed { .. } | Self::Print { .. } => None,
        }
    }
}

fn int(value: u64) -> Dynamic {
    Dynamic::from_int(value as rhai::INT)
}

fn bad(what: &str) -> Error {
    Error::value(format!("corrupt pool message: {what}"))
}

fn count(value: &Dynamic, what: &str) -> Result<u64> {
    value
        .as_int()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| bad(what))
}

fn take_array(value: Dynamic) -> Result<Array> {
    value.try_cast::<Array>().ok_or_else(|| bad("not an array"))
}

fn take_map(value: Dynamic) -> Result<Map> {
    value
        .try_cast::<Map>()
        .ok_or_else(|| bad("an error that is not a map"))
}

/// Splits a message into its kind and its fields.
fn fields(value: Dynamic) -> Result<(String, Array)> {
    let mut array = take_array(value)?;
    if array.is_empty() {
        return Err(bad("an empty message"));
    }
    let kind = array
        .remove(0)
        .into_string()
        .map_err(|_| bad("no message kind"))?;
    Ok((kind, array))
}

impl TaskMsg {
    /// As a codec value.
    pub(crate) fn into_value(self) -> Dynamic {
        Dynamic::from_array(vec![
            "task".into(),
            int(self.job),
            int(self.index as u64),
            self.function.into(),
            Dynamic::from_array(self.curry),
            Dynamic::from_array(self.items),
            Dynamic::from_bool(self.star),
        ])
    }

    /// Framed, ready to write; `type_name` names the type of a value that cannot travel.
    pub(crate) fn frame(self, type_name: impl Fn(&str) -> String) -> Result<Vec<u8>> {
        pipe::frame(&self.into_value(), type_name)
    }

    /// Reads a task from a codec value.
    pub(crate) fn from_value(value: Dynamic) -> Result<Self> {
        let (kind, fields) = fields(value)?;
        let Ok([job, index, function, curry, items, star]) = <[Dynamic; 6]>::try_from(fields)
        else {
            return Err(bad("a task of the wrong size"));
        };
        if kind != "task" {
            return Err(bad(&format!("`{kind}` where a task was expected")));
        }
        Ok(Self {
            job: count(&job, "a task's job")?,
            index: count(&index, "a task's index")? as usize,
            function: function
                .into_string()
                .map_err(|_| bad("a task's function name"))?,
            curry: take_array(curry)?,
            items: take_array(items)?,
            star: star.as_bool().map_err(|_| bad("a task's star flag"))?,
        })
    }
}

impl ReplyMsg {
    /// As a codec value.
    pub(crate) fn into_value(self) -> Dynamic {
        let items: Array = match self {
            Self::Done { job, index, values } => vec![
                "done".into(),
                int(job),
                int(index as u64),
                Dynamic::from_array(values),
            ],
            Self::Failed { job, index, error } => vec![
                "failed".into(),
                int(job),
                int(index as u64),
                Dynamic::from_map(error),
            ],
            Self::Skipped { job, index } => vec!["skipped".into(), int(job), int(index as u64)],
            Self::InitFailed { error } => vec!["init-failed".into(), Dynamic::from_map(error)],
            Self::StartFailed { error } => vec!["start-failed".into(), Dynamic::from_map(error)],
            Self::Print { text } => vec!["print".into(), text.into()],
        };
        Dynamic::from_array(items)
    }

    /// Reads a reply from a codec value.
    pub(crate) fn from_value(value: Dynamic) -> Result<Self> {
        let (kind, fields) = fields(value)?;
        let reply = match kind.as_str() {
            "done" | "failed" => {
                let Ok([job, index, payload]) = <[Dynamic; 3]>::try_from(fields) else {
                    return Err(bad("a reply of the wrong size"));
                };
                let job = count(&job, "a reply's job")?;
                let index = count(&index, "a reply's index")? as usize;
                if kind == "done" {
                    Self::Done {
                        job,
                        index,
                        values: take_array(payload)?,
                    }
                } else {
                    Self::Failed {
                        job,
                        index,
                        error: take_map(payload)?,
                    }
                }
            }
            "skipped" => {
                let Ok([job, index]) = <[Dynamic; 2]>::try_from(fields) else {
                    return Err(bad("a reply of the wrong size"));
                };
                Self::Skipped {
                    job: count(&job, "a reply's job")?,
                    index: count(&index, "a reply's index")? as usize,
                }
            }
            "init-failed" | "start-failed" => {
                let Ok([error]) = <[Dynamic; 1]>::try_from(fields) else {
                    return Err(bad("a reply of the wrong size"));
                };
                let error = take_map(error)?;
                if kind == "init-failed" {
                    Self::InitFailed { error }
                } else {
                    Self::StartFailed { error }
                }
            }
            "print" => {
                let Ok([text]) = <[Dynamic; 1]>::try_from(fields) else {
                    return Err(bad("a reply of the wrong size"));
                };
                Self::Print {
                    text: text.into_string().map_err(|_| bad("a printed line"))?,
                }
            }
            other => return Err(bad(&format!("unknown reply `{other}`"))),
        };
        Ok(reply)
    }
}

impl ScriptMsg {
    /// As a codec value.
    pub(crate) fn into_value(self) -> Dynamic {
        Dynamic::from_array(vec![
            "script".into(),
            int(self.protocol),
            self.name.into(),
            self.source.into(),
            self.host.into(),
            Dynamic::from_array(self.args),
            Dynamic::from_map(self.constants),
            Dynamic::from_array(self.closures),
            self.init,
        ])
    }

    /// Reads the script message from a codec value. Only its first two fields are read
    /// when `protocol` is not [`PROTOCOL`], so that a worker can say which it speaks.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the binary
    pub(crate) fn from_value(value: Dynamic) -> Result<Self> {
        let (kind, fields) = fields(value)?;
        if kind != "script" {
            return Err(bad(&format!("`{kind}` where the script was expected")));
        }
        let protocol = count(
            fields
                .first()
                .ok_or_else(|| bad("a script without a protocol"))?,
            "the protocol",
        )?;
        if protocol != PROTOCOL {
            return Err(Error::value(format!(
                "the pool speaks protocol {protocol} and this worker {PROTOCOL}: use the same \
                 procscript version on every host"
            )));
        }
        let Ok([_, name, source, host, args, constants, closures, init]) =
            <[Dynamic; 8]>::try_from(fields)
        else {
            return Err(bad("a script message of the wrong size"));
        };
        let text = |v: Dynamic, what: &str| v.into_string().map_err(|_| bad(what));
        Ok(Self {
            protocol,
            name: text(name, "the script's name")?,
            source: text(source, "the script's source")?,
            host: text(host, "the host's name")?,
            args: take_array(args)?,
            constants: take_map(constants)?,
            closures: take_array(closures)?,
            init,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through_the_frame(value: &Dynamic) -> Dynamic {
        let bytes = pipe::frame(value, str::to_string).unwrap();
        // Incomplete input is not a message yet.
        assert!(pipe::unframe(&bytes[..bytes.len() - 1], "test")
            .unwrap()
            .is_none());
        let (back, used) = pipe::unframe(&bytes, "test").unwrap().unwrap();
        assert_eq!(used, bytes.len());
        back
    }

    #[test]
    fn a_task_survives_the_trip() {
        let task = TaskMsg {
            job: 7,
            index: 40,
            function: "square".into(),
            curry: vec![Dynamic::from_int(3)],
            items: vec![Dynamic::from_int(1), "x".into()],
            star: false,
        };
        let back = TaskMsg::from_value(through_the_frame(&task.into_value())).unwrap();
        assert_eq!(back.job, 7);
        assert_eq!(back.index, 40);
        assert_eq!(back.function, "square");
        assert_eq!(back.curry.len(), 1);
        assert_eq!(back.items[1].clone().into_string().unwrap(), "x");
        assert!(!back.star);
    }

    #[test]
    fn every_reply_survives_the_trip() {
        let mut error = Map::new();
        error.insert("kind".into(), "ValueError".into());
        let replies = [
            ReplyMsg::Done {
                job: 1,
                index: 2,
                values: vec![Dynamic::from_int(4)],
            },
            ReplyMsg::Failed {
                job: 1,
                index: 3,
                error: error.clone(),
            },
            ReplyMsg::Skipped { job: 9, index: 0 },
            ReplyMsg::InitFailed {
                error: error.clone(),
            },
            ReplyMsg::StartFailed { error },
            ReplyMsg::Print {
                text: "a line".into(),
            },
        ];
        for reply in replies {
            let shown = format!("{reply:?}");
            let back = ReplyMsg::from_value(through_the_frame(&reply.into_value())).unwrap();
            assert_eq!(format!("{back:?}"), shown);
        }
    }

    #[test]
    fn the_script_survives_the_trip_and_another_protocol_is_refused() {
        let mut constants = Map::new();
        constants.insert("K".into(), Dynamic::from_int(5));
        let script = ScriptMsg {
            protocol: PROTOCOL,
            name: "job.rhai".into(),
            source: "fn f(x) { x }".into(),
            host: "node1".into(),
            args: vec!["a".into()],
            constants,
            closures: vec![Dynamic::from_array(vec!["anon$1".into()])],
            init: Dynamic::UNIT,
        };
        let value = through_the_frame(&script.clone().into_value());
        let back = ScriptMsg::from_value(value).unwrap();
        assert_eq!(
            (back.name.as_str(), back.source.as_str(), back.host.as_str()),
            ("job.rhai", "fn f(x) { x }", "node1")
        );
        assert_eq!(back.constants["K"].as_int().unwrap(), 5);
        assert_eq!((back.args.len(), back.closures.len()), (1, 1));
        assert!(back.init.is_unit());
        let other = ScriptMsg {
            protocol: PROTOCOL + 1,
            ..script
        };
        let err = ScriptMsg::from_value(other.into_value()).unwrap_err();
        assert!(err.message.contains("same procscript version"), "{err:?}");
        assert!(ScriptMsg::from_value(Dynamic::from_array(vec!["task".into()])).is_err());
    }

    #[test]
    fn a_large_blob_reply_is_read_back_from_the_pipe_framing() {
        // `with_message` writes a large top-level blob in its own short form: `unframe`
        // must read it too, since both are the Pipe's framing.
        let blob = Dynamic::from_blob(vec![7u8; pipe::BIG + 10]);
        let bytes =
            pipe::with_message(&blob, str::to_string, |pieces| Ok(pieces.concat())).unwrap();
        let (back, used) = pipe::unframe(&bytes, "test").unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(back.into_blob().unwrap().len(), pipe::BIG + 10);
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let cases: Vec<Dynamic> = vec![
            Dynamic::UNIT,
            Dynamic::from_array(vec![]),
            Dynamic::from_array(vec!["task".into()]),
            Dynamic::from_array(vec![
                "done".into(),
                Dynamic::from_int(-1),
                Dynamic::from_int(0),
                Dynamic::from_array(vec![]),
            ]),
            Dynamic::from_array(vec![
                "failed".into(),
                Dynamic::from_int(1),
                Dynamic::from_int(0),
                Dynamic::from_int(3),
            ]),
            Dynamic::from_array(vec!["what".into()]),
            Dynamic::from_array(vec![Dynamic::from_int(1)]),
        ];
        for case in cases {
            assert!(ReplyMsg::from_value(case.clone()).is_err(), "{case:?}");
            assert!(TaskMsg::from_value(case.clone()).is_err(), "{case:?}");
            assert!(ScriptMsg::from_value(case.clone()).is_err(), "{case:?}");
        }
        assert!(pipe::unframe(&u64::MAX.to_le_bytes(), "test").is_err());
    }
}
