//! The script reference, read from the engine's own metadata: each native's doc comment,
//! parameters and return type. One source serves `help NAME` in the REPL, the generated
//! `docs/reference.md` (`procscript doc`), and the test that keeps that file current.

use rhai::packages::Package;
use rhai::Engine;
use serde::Deserialize;

/// One registered function, as a script sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FnDoc {
    /// The name scripts call (`start`), or the property for getters and setters (`pid`).
    pub name: String,
    /// How to call it: `p.join(timeout)`, `getpid()`, `p.pid`.
    pub usage: String,
    /// The return type, `()` for none.
    pub returns: String,
    /// How many arguments it takes (the receiver of a method counts).
    pub arity: usize,
    /// Whether it is a property getter or setter rather than a callable function.
    pub is_property: bool,
    /// The doc comment, without its `///` markers.
    pub doc: String,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    functions: Vec<FnMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FnMeta {
    name: String,
    #[serde(default)]
    params: Vec<ParamMeta>,
    #[serde(default)]
    return_type: Option<String>,
    #[serde(default)]
    doc_comments: Vec<String>,
}

#[derive(Deserialize)]
struct ParamMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    type_name: Option<String>,
}

/// Script-facing type names for Rust ones: `RhaiResult<Process>` → `Process`.
fn script_type(rust: &str) -> String {
    let mut t = rust.trim();
    for wrapper in ["RhaiResult<", "RhaiResultOf<", "Result<"] {
        if let Some(inner) = t.strip_prefix(wrapper).and_then(|r| r.strip_suffix('>')) {
            t = inner;
        }
    }
    let t = t.trim_start_matches("&mut ").trim_start_matches('&');
    match t {
        "Dynamic" => "any".into(),
        "INT" | "i64" => "int".into(),
        "FLOAT" | "f64" => "float".into(),
        "ImmutableString" | "String" | "&str" | "str" => "string".into(),
        "Array" => "array".into(),
        "Map" => "map".into(),
        "Blob" => "blob".into(),
        "bool" => "bool".into(),
        "()" | "" => "()".into(),
        other => other.rsplit("::").next().unwrap_or(other).to_string(),
    }
}

fn doc_text(comments: &[String]) -> String {
    comments
        .iter()
        .flat_map(|c| c.lines())
        .map(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("///").unwrap_or(line);
            line.strip_prefix(' ').unwrap_or(line)
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn usage(meta: &FnMeta) -> (String, String) {
    let params: Vec<(String, String)> = meta
        .params
        .iter()
        .map(|p| {
            let name = p.name.clone().unwrap_or_else(|| "_".into());
            (
                name,
                script_type(p.type_name.as_deref().unwrap_or("Dynamic")),
            )
        })
        .collect();
    if meta.name.starts_with("index$") {
        let receiver = params.first().map_or("x".into(), |p| p.0.clone());
        let index = params.get(1).map_or("i".into(), |p| p.0.clone());
        let usage = if meta.name.starts_with("index$set$") {
            let value = params.get(2).map_or("value".into(), |p| p.0.clone());
            format!("{receiver}[{index}] = {value}")
        } else {
            format!("{receiver}[{index}]")
        };
        return ("[]".into(), usage);
    }
    if let Some(prop) = meta.name.strip_prefix("get$") {
        let receiver = params.first().map_or("x".into(), |p| p.0.clone());
        return (prop.to_string(), format!("{receiver}.{prop}"));
    }
    if let Some(prop) = meta.name.strip_prefix("set$") {
        let receiver = params.first().map_or("x".into(), |p| p.0.clone());
        let value = params.get(1).map_or("value".into(), |p| p.0.clone());
        return (prop.to_string(), format!("{receiver}.{prop} = {value}"));
    }
    // An operator (`==` between two sockets) reads as one.
    if !meta
        .name
        .starts_with(|c: char| c.is_alphabetic() || c == '_')
        && params.len() == 2
    {
        let usage = format!("{} {} {}", params[0].0, meta.name, params[1].0);
        return (meta.name.clone(), usage);
    }
    // A method takes its receiver by `&mut`: a handle (`p.join()`), or a string or blob
    // (`s.strip()`, `b.decode()`).
    let is_method = meta
        .params
        .first()
        .and_then(|p| p.type_name.as_deref())
        .is_some_and(|t| t.starts_with("&mut") && !t.contains("Dynamic"));
    let names: Vec<&str> = params.iter().map(|p| p.0.as_str()).collect();
    if is_method {
        (
            meta.name.clone(),
            format!("{}.{}({})", names[0], meta.name, names[1..].join(", ")),
        )
    } else {
        (
            meta.name.clone(),
            format!("{}({})", meta.name, names.join(", ")),
        )
    }
}

/// The functions an engine has beyond Rhai's standard library, sorted by name and usage.
pub(crate) fn function_docs(engine: &Engine) -> Vec<FnDoc> {
    let Ok(json) = engine.gen_fn_metadata_to_json(false) else {
        return Vec::new();
    };
    let Ok(metadata) = serde_json::from_str::<Metadata>(&json) else {
        return Vec::new();
    };
    let mut docs: Vec<FnDoc> = metadata
        .functions
        .iter()
        .map(|meta| {
            let (name, usage) = usage(meta);
            FnDoc {
                name,
                usage,
                returns: script_type(meta.return_type.as_deref().unwrap_or("()")),
                arity: meta.params.len(),
                is_property: meta.name.contains('$'),
                doc: doc_text(&meta.doc_comments),
            }
        })
        .collect();
    // Rhai lists overloads in hash order, which would make the reference change from run
    // to run.
    docs.sort_by(|a, b| (&a.name, &a.usage, &a.doc).cmp(&(&b.name, &b.usage, &b.doc)));
    docs
}

/// The documentation of a package's functions, on an engine holding only that package.
pub(crate) fn package_docs(package: &impl Package) -> Vec<FnDoc> {
    let mut engine = Engine::new_raw();
    package.register_into_engine(&mut engine);
    function_docs(&engine)
}

/// The `help NAME` text: every overload of `name` with its documentation.
pub(crate) fn help_for(docs: &[FnDoc], name: &str) -> Option<String> {
    let matches: Vec<&FnDoc> = docs.iter().filter(|d| d.name == name).collect();
    if matches.is_empty() {
        return None;
    }
    let mut out = String::new();
    for doc in matches {
        out.push_str(&format!("{} -> {}\n", doc.usage, doc.returns));
        if !doc.doc.is_empty() {
            for line in doc.doc.lines() {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
    }
    Some(out.trim_end().to_string())
}

/// A reference section in Markdown: one heading per function name, overloads together.
pub(crate) fn markdown_section(title: &str, intro: &str, docs: &[FnDoc]) -> String {
    let mut out = format!("## {title}\n\n");
    if !intro.is_empty() {
        out.push_str(intro.trim());
        out.push_str("\n\n");
    }
    let mut names: Vec<&str> = Vec::new();
    for doc in docs {
        if !names.contains(&doc.name.as_str()) {
            names.push(&doc.name);
        }
    }
    for name in names {
        let group: Vec<&FnDoc> = docs.iter().filter(|d| d.name == name).collect();
        let usages: Vec<String> = group
            .iter()
            .map(|d| format!("`{}` → `{}`", d.usage, d.returns))
            .collect();
        out.push_str(&format!("### `{name}`\n\n{}\n\n", usages.join("<br>\n")));
        let mut seen: Vec<&str> = Vec::new();
        for doc in group {
            if !doc.doc.is_empty() && !seen.contains(&doc.doc.as_str()) {
                seen.push(&doc.doc);
                out.push_str(&doc.doc);
                out.push_str("\n\n");
            }
        }
    }
    out
}

/// The ```` ```rhai ```` code blocks of a Markdown text, for tests that run them.
pub(crate) fn rhai_examples(markdown: &str) -> Vec<String> {
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed == "```rhai" => current = Some(String::new()),
            Some(_) if trimmed.starts_with("```") => examples.extend(current.take()),
            Some(code) => {
                code.push_str(line);
                code.push('\n');
            }
            None => {}
        }
    }
    examples
}

/// The procscript column of the `| Python | procscript |` tables of a Markdown text, each
/// cell as a script (inline code with `<br>` for line breaks and `\|` for `|`), preceded by
/// the text's ```` ```rhai prelude ```` block if it has one: the examples of
/// `docs/from-python.md`, for tests and `procscript doc --check` to run.
pub(crate) fn table_examples(markdown: &str) -> Vec<String> {
    let mut prelude = String::new();
    let mut in_prelude = false;
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed == "```rhai prelude" {
            in_prelude = true;
        } else if in_prelude && trimmed.starts_with("```") {
            in_prelude = false;
        } else if in_prelude {
            prelude.push_str(line);
            prelude.push('\n');
        }
    }
    let mut examples = Vec::new();
    let mut in_table = false;
    for line in markdown.lines() {
        let trimmed = line.trim();
        if !trimmed.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells = table_cells(trimmed);
        if cells.len() == 2 && cells[0] == "Python" && cells[1] == "procscript" {
            in_table = true;
            continue;
        }
        if !in_table || cells.len() != 2 || cells[1].starts_with("---") {
            continue;
        }
        let code = cell_code(&cells[1]);
        if !code.trim().is_empty() {
            examples.push(format!("{prelude}{code}\n"));
        }
    }
    examples
}

/// The cells of a Markdown table row, `\|` kept inside cells.
fn table_cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            _ => cells.last_mut().unwrap().push(c),
        }
    }
    cells.iter().map(|c| c.trim().to_string()).collect()
}

/// The code of a table cell: its inline code spans (`` `code` `` or ``` ``code`` ```, as
/// CommonMark delimits them), with `<br>` between them as line breaks.
fn cell_code(cell: &str) -> String {
    let mut code = String::new();
    let mut rest = cell;
    while let Some(open) = rest.find('`') {
        let text = &rest[..open];
        if text.contains("<br>") {
            code.push('\n');
        } else if !code.is_empty() && !code.ends_with('\n') {
            code.push(' ');
        }
        let ticks = rest[open..].chars().take_while(|c| *c == '`').count();
        let body_start = open + ticks;
        // The closing run: exactly as many backticks.
        let mut search = body_start;
        let close = loop {
            let Some(i) = rest[search..].find('`') else {
                break None;
            };
            let at = search + i;
            let run = rest[at..].chars().take_while(|c| *c == '`').count();
            if run == ticks {
                break Some(at);
            }
            search = at + run;
        };
        let Some(close) = close else {
            break;
        };
        let body = &rest[body_start..close];
        let body = match body.strip_prefix(' ').and_then(|b| b.strip_suffix(' ')) {
            Some(inner) if ticks > 1 => inner,
            _ => body,
        };
        code.push_str(body);
        rest = &rest[close + ticks..];
    }
    code.trim().to_string()
}

/// What the reference says before and between the generated sections.
const PREAMBLE: &str = r#"# procscript reference

Every function procscript adds to Rhai, generated by `procscript doc` from the doc comments
in the source (edit those, not this file; a test fails when the two differ). Rhai's own
language and standard library (strings, arrays, maps, `timestamp()`, ...) are described in
the Rhai book, <https://rhai.rs/book/>.

Errors raised by these functions are catchable maps `#{ kind, message, errno }`: see
[Errors](#errors) at the end. Below, `process` stands for a process handle and `any` for a
value of any type.
"#;

const PROCESS_INTRO: &str = r#"
Besides the functions below, two pieces of syntax and one variable:

- `spawn EXPR` and `spawn { BLOCK }` fork at once and evaluate the call or block in the child,
  which sees the current variables; they return the started process. The child's exit code is
  0, `n` from `exit(n)`, or 1 on an uncaught error.

  ```rhai
  fn greet(who) { print(`hello ${who}`); }
  let p = spawn greet("world");
  print(p.join());   // 0
  ```

- `ARGS`: the arguments after the script's path on the command line, an array of strings,
  visible everywhere, inside functions too.
"#;

const SOCKETS_INTRO: &str = r#"
Python's `socket` module, natively: TCP over IPv4 and IPv6, UDP, and Unix stream sockets. The
constants are global (visible inside `fn` bodies too): `AF_INET`, `AF_INET6`, `AF_UNIX`,
`SOCK_STREAM`, `SOCK_DGRAM`, `SOL_SOCKET`, `SO_REUSEADDR`, `SO_REUSEPORT`, `SO_KEEPALIVE`,
`SO_BROADCAST`, `SO_RCVBUF`, `SO_SNDBUF`, `SO_TYPE`, `SO_ERROR`, `SO_ACCEPTCONN`, `IPPROTO_TCP`,
`TCP_NODELAY`, `IPPROTO_IPV6`, `IPV6_V6ONLY`, `SHUT_RD`, `SHUT_WR`, `SHUT_RDWR`. Every
descriptor is close-on-exec; a socket closes when the last reference to it in a process goes
away; writing to a closed peer is a `BrokenPipeError`, never a silent death by SIGPIPE. Python
returns `(host, port)` tuples; procscript returns `[host, port]` arrays. `docs/sockets.md` is
the guide.
"#;

const IPC_INTRO: &str = r#"
Python's `multiprocessing` toolbox between processes: `Pipe`, `Queue`, the locks, `Event`,
`Condition`, `Barrier`, and shared `Value`/`Array`. Make them before starting the processes
that share them. Values that travel through pipes and queues: `()`, booleans, numbers,
strings, chars, blobs, and arrays and maps of these; anything else is a `ValueError`.
`with lock { ... }` (syntax, since `with` is reserved in Rhai) runs the block holding any of
the locks or semaphores and releases it even when the block fails. `docs/ipc.md` is the guide,
including what happens when a process dies holding a lock.
"#;

const ERRORS: &str = r#"## Errors

| `kind` | raised when |
|---|---|
| `ProcessError` | a process handle is misused, or a fork cannot be done |
| `TypeError` | an argument has the wrong type, or arguments do not fit the target |
| `ValueError` | an argument has the right type but a wrong value |
| `TimeoutError` | an operation did not finish in time |
| `OSError` | an OS error with no more specific kind; `errno` is set |
| `FileNotFoundError`, `PermissionError`, `ConnectionRefusedError`, `ConnectionResetError`, `BrokenPipeError` | the OS errors Python gives these names; `errno` is set |
| `ConnectionError` | ssh could not run a remote command (`run` or `pipeline` with `host`): no connection, no authentication, connection lost |
| `EOFError`, `Empty`, `Full` | end of input, an empty queue, a full queue |
| `KeyError`, `IndexError`, `AttributeError` | a missing key, index or attribute of a manager's `dict`, `list` or `Namespace` |
| `RuntimeError` | releasing a manager's `Lock` that is not held |

`e.message` says what was being done and what went wrong. A value a script throws itself is
caught as it was thrown (a string stays a string); Rhai's own errors (a missing variable, a bad
index) are caught as maps with `error` and `message` instead of `kind`.

```rhai
try {
    Process(|| 0).join();
} catch (e) {
    print(`${e.kind}: ${e.message}`);
}
```
"#;

const COMMAND_INTRO: &str = r#"
Programs are lists (`["prog", "arg"]`), never shell strings. `Process(#{ command: argv, cwd,
env, stdin, stdout, stderr, name, daemon })` makes a process that runs a program, with the
same handle as any process; each stream is `"inherit"` (the default), `"null"`, `"pipe"` or a
file path (`stderr` may also be `"stdout"`). A program that cannot be run is a
`FileNotFoundError` (or `PermissionError`) at `start()` or `run`. See docs/commands.md.
With `host: "node1"` (and `ssh: [..extra ssh arguments..]`), `run`, `pipeline` and
`Process(#{ command })` run the program on that host through the system's `ssh`, with the
same streams, `timeout`, `cwd`, `env` and exit code; see docs/remote.md.
"#;

const BUILTINS_INTRO: &str = r#"
Python's names for what a tutorial's reader types first, next to Rhai's own (`x.len()`,
`s.trim()`, `s.split(",")`, ...). `print(a, b, ...)` joins its values with one space. A blob
shows as Python's bytes (`b'hi\xff'`) and `()` as `None`, in `print`, in `` `${x}` ``
interpolation, in `str(x)`/`to_string`, and inside arrays and maps. `docs/from-python.md`
puts every construct of the tutorial side by side with its Python.
"#;

/// Introduction of the pools section.
const POOL_INTRO: &str = "`Pool(n)` forks `n` daemon workers (`ForkPoolWorker-N`) that run \
script functions and closures on lists of arguments, as Python's `multiprocessing.Pool`. A \
task's error is raised in the caller with the task's message and line; a worker that dies \
fails the call that was waiting on it with a `ProcessError` and is replaced. See \
`docs/pool.md`.";

/// Introduction of the managers section.
const MANAGER_INTRO: &str = "`Manager()` starts a manager process that holds shared `dict`, \
`list`, `Value`, `Lock`, `Queue` and `Namespace` objects, as Python's \
`multiprocessing.Manager()`; any process forked after a proxy exists can use it, each call one \
atomic step in the manager. `for x in l` walks a list proxy's items and `for k in d` a dict \
proxy's keys; `ns.name` reads and sets a namespace's attributes; `with lock { }` takes a \
manager's `Lock`. A proxy used after the manager ended is a `ConnectionRefusedError`. See \
`docs/managers.md`.";

/// The whole reference document, as `procscript doc` writes it to `docs/reference.md`.
pub(crate) fn reference_markdown() -> String {
    let sections: Vec<(&str, &str, Vec<FnDoc>)> = vec![
        (
            "Processes",
            PROCESS_INTRO,
            package_docs(&crate::process::package::ProcessPackage::new()),
        ),
        (
            "Sockets",
            SOCKETS_INTRO,
            package_docs(&crate::net::package::NetPackage::new()),
        ),
        (
            "Messages, synchronisation and shared memory",
            IPC_INTRO,
            package_docs(&crate::ipc::IpcPackage::new()),
        ),
        (
            "Commands",
            COMMAND_INTRO,
            package_docs(&crate::command::CommandPackage::new()),
        ),
        (
            "Process pools",
            POOL_INTRO,
            package_docs(&crate::pool::package::PoolPackage::new()),
        ),
        (
            "Managers",
            MANAGER_INTRO,
            package_docs(&crate::manager::ManagerPackage::new()),
        ),
    ];
    let sections = [
        vec![(
            "Python's builtins",
            BUILTINS_INTRO,
            package_docs(&crate::builtins::BuiltinsPackage::new()),
        )],
        sections,
    ]
    .concat();
    let mut out = String::from(PREAMBLE);
    out.push('\n');
    for (title, intro, docs) in sections {
        out.push_str(&markdown_section(title, intro, &docs));
    }
    out.push_str(ERRORS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_types_read_like_rhai() {
        assert_eq!(script_type("RhaiResult<Process>"), "Process");
        assert_eq!(script_type("&mut Process"), "Process");
        assert_eq!(script_type("INT"), "int");
        assert_eq!(script_type("Dynamic"), "any");
        assert_eq!(script_type("procscript::process::Process"), "Process");
    }

    #[test]
    fn rhai_examples_are_extracted() {
        let md =
            "text\n```rhai\nlet a = 1;\nprint(a);\n```\n```sh\nls\n```\n  ```rhai\n  x\n  ```\n";
        assert_eq!(
            rhai_examples(md),
            vec!["let a = 1;\nprint(a);\n".to_string(), "  x\n".to_string()]
        );
    }

    #[test]
    fn table_examples_are_the_procscript_column_after_the_prelude() {
        let md = "```rhai prelude\nfn f() { 1 }\n```\n\n| Python | procscript |\n|---|---|\n\
                  | `x = 1` | `let x = 1;`<br>`print(x);` |\n| `lambda: 0` | `let f = \\|\\| 0;` |\n\
                  | `f\"{a}\"` | ``print(`${1}`);`` |\n\
                  | `a` | *(nothing)* |\n\nnot a table | `x` |\n";
        assert_eq!(
            table_examples(md),
            vec![
                "fn f() { 1 }\nlet x = 1;\nprint(x);\n".to_string(),
                "fn f() { 1 }\nlet f = || 0;\n".to_string(),
                "fn f() { 1 }\nprint(`${1}`);\n".to_string(),
            ]
        );
    }

    #[test]
    fn process_package_is_documented() {
        let docs = package_docs(&crate::process::package::ProcessPackage::new());
        let join: Vec<&FnDoc> = docs.iter().filter(|d| d.name == "join").collect();
        assert_eq!(join.len(), 2);
        assert!(
            join.iter().any(|d| d.usage == "process.join(timeout)"),
            "{join:?}"
        );
        let pid = docs.iter().find(|d| d.name == "pid").unwrap();
        assert_eq!(pid.usage, "process.pid");
        assert!(
            docs.iter().all(|d| !d.doc.is_empty()),
            "undocumented: {:?}",
            docs.iter().filter(|d| d.doc.is_empty()).collect::<Vec<_>>()
        );
    }
}
