//! `procscript worker`: a worker of a Pool with remote hosts, started by the pool through
//! ssh (see `pool::remote`). It reads the script message, compiles the script
//! without running its statements, and serves tasks until stdin ends.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use rhai::{Array, Dynamic, NativeCallContext, Scope};

use crate::error::{Error, ErrorKind, Result};
use crate::ipc::pipe;
use crate::output::{write_line, Stream};
use crate::pool::board::NoNotices;
use crate::pool::func::Func;
use crate::pool::protocol::{ReplyMsg, ScriptMsg, HELLO, PROTOCOL};
use crate::pool::remote::{closure_names, SERVE};
use crate::pool::worker::{serve, Channel, ContextCaller};
use crate::runtime::{Builder, Runtime};

/// Moves the pool's channel off the standard streams: returns (input, output), both
/// close-on-exec, and leaves stdin on `/dev/null` and stdout on stderr.
fn take_channel() -> Result<(OwnedFd, OwnedFd)> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let keep = |fd: BorrowedFd<'_>, what: &str| -> Result<OwnedFd> {
        let copy = nix::unistd::dup(fd).map_err(|e| Error::os(what, e))?;
        fcntl(&copy, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| Error::os(what, e))?;
        Ok(copy)
    };
    let input = keep(stdin.as_fd(), "keeping the pool's channel")?;
    let output = keep(stdout.as_fd(), "keeping the pool's channel")?;
    let null = nix::fcntl::open("/dev/null", OFlag::O_RDONLY, nix::sys::stat::Mode::empty())
        .map_err(|e| Error::os("opening /dev/null", e))?;
    nix::unistd::dup2_stdin(&null).map_err(|e| Error::os("moving stdin", e))?;
    nix::unistd::dup2_stdout(std::io::stderr()).map_err(|e| Error::os("moving stdout", e))?;
    Ok((input, output))
}

fn send(output: BorrowedFd<'_>, reply: ReplyMsg) {
    let _ = pipe::with_message(&reply.into_value(), str::to_string, |pieces| {
        pipe::write_pieces(output, pieces, false, "the pool's channel")
    });
}

fn initializer(init: Dynamic) -> Option<(Func, Array)> {
    let fields = init.try_cast::<Array>()?;
    let [name, curry, args] = <[Dynamic; 3]>::try_from(fields).ok()?;
    Some((
        Func {
            name: name.into_string().ok()?,
            curry: curry.try_cast::<Array>()?,
        },
        args.try_cast::<Array>()?,
    ))
}

/// What the serving native takes once.
struct Serving {
    input: OwnedFd,
    output: Rc<OwnedFd>,
    host: String,
    closures: HashMap<String, String>,
    init: Option<(Func, Array)>,
}

/// `procscript worker`: a pool worker for a pool on another host, over stdin and stdout.
/// Returns the exit code.
///
/// It reads the script message, compiles the script without running its statements, and
/// serves tasks until stdin ends. It takes no arguments and reads no script file or
/// environment variable that could change what it runs: what it runs comes only from the
/// pool, over its own channel.
pub(crate) fn main(base: Builder) -> i32 {
    if std::io::stdin().is_terminal() {
        let _ = write_line(
            Stream::Stderr,
            "procscript worker: this is a pool worker started by a Pool with remote hosts \
             through ssh; it reads the pool's messages on its standard input, not a terminal",
        );
        return 2;
    }
    let (input, output) = match take_channel() {
        Ok(channel) => channel,
        Err(e) => {
            let _ = write_line(Stream::Stderr, &format!("procscript worker: {}", e.message));
            return 2;
        }
    };
    let hello = [
        HELLO,
        format!("{PROTOCOL} {}\n", env!("CARGO_PKG_VERSION")).as_bytes(),
    ]
    .concat();
    if pipe::write_all(output.as_fd(), &hello, false, "the pool's channel").is_err() {
        return 0;
    }
    let message = match pipe::read_message(input.as_fd(), "the pool's channel", || {}, &mut |_| {
        Ok(true)
    }) {
        Ok(Some(message)) => message,
        // The pool went before it said anything.
        Ok(None) => return 0,
        Err(e) if e.kind == ErrorKind::EOFError => return 0,
        Err(e) => {
            let _ = write_line(
                Stream::Stderr,
                &format!(
                    "procscript worker: {} (it reads only the messages of a Pool)",
                    e.message
                ),
            );
            return 2;
        }
    };
    let script = match ScriptMsg::from_value(message) {
        Ok(script) => script,
        Err(e) => {
            let error = Error::value(format!("it refused the script: {}", e.message));
            send(
                output.as_fd(),
                ReplyMsg::StartFailed {
                    error: error.to_map(),
                },
            );
            return 1;
        }
    };
    serve_script(base, script, input, output)
}

/// Serves the script the pool sent: compiles it, sends the script's `print`s to the pool,
/// and runs the worker's own statements (the script's global constants, then the serving
/// loop); none of the script's statements run. Returns the exit code.
fn serve_script(base: Builder, script: ScriptMsg, input: OwnedFd, output: OwnedFd) -> i32 {
    let mut runtime = base.build();
    let args: Vec<String> = script.args.iter().map(ToString::to_string).collect();
    runtime.set_args(&args);
    let ast = match runtime.compile_source(&script.name, &script.source) {
        Ok(ast) => ast,
        Err(e) => {
            let error = Error::process(format!(
                "the script does not compile on {} (procscript {} there):\n{e}",
                script.host,
                env!("CARGO_PKG_VERSION")
            ));
            start_failed(output.as_fd(), &error);
            return 1;
        }
    };
    let output = Rc::new(output);
    print_to_the_pool(&mut runtime, &output);
    let code = Rc::new(Cell::new(0));
    let serving = Rc::new(RefCell::new(Some(Serving {
        input,
        output,
        host: script.host.clone(),
        closures: closure_names(&script.closures, &ast),
        init: initializer(script.init),
    })));
    register_serve(&mut runtime, serving.clone(), code.clone());
    let mut scope = Scope::new();
    let statements = match own_statements(&runtime, script.constants, &mut scope) {
        Ok(ast) => ast,
        Err(error) => {
            if let Some(s) = serving.borrow_mut().take() {
                start_failed(s.output.as_fd(), &error);
            }
            return 1;
        }
    };
    let mut program = ast.clone_functions_only().merge(&statements);
    program.set_source(script.name.as_str());
    let result = runtime.engine().run_ast_with_scope(&mut scope, &program);
    drop(serving);
    crate::runtime::finish();
    match result {
        Ok(()) => code.get(),
        Err(e) => {
            let _ = write_line(
                Stream::Stderr,
                &format!("procscript worker: {}", crate::diagnostic::message(&e)),
            );
            1
        }
    }
}

/// Tells the pool that this worker cannot take its script.
fn start_failed(output: BorrowedFd<'_>, error: &Error) {
    send(
        output,
        ReplyMsg::StartFailed {
            error: error.to_map(),
        },
    );
}

/// The script's own lines: `print` in a task goes to the pool, as a message; in a process
/// a task started, to this worker's stdout, which is its stderr. The channel is the serving
/// native's to close: a `print` after that goes nowhere.
fn print_to_the_pool(runtime: &mut Runtime, output: &Rc<OwnedFd>) {
    let printer = Rc::downgrade(output);
    let me = nix::unistd::getpid();
    runtime.engine_mut().on_print(move |text| {
        if nix::unistd::getpid() != me {
            let _ = write_line(Stream::Stdout, text);
            return;
        }
        if let Some(channel) = printer.upgrade() {
            send(channel.as_fd(), ReplyMsg::Print { text: text.into() });
        }
    });
}

/// Registers the native the worker's statements call to serve: it takes `serving` once and
/// serves tasks until the pool's channel ends, leaving the exit code in `code`.
fn register_serve(
    runtime: &mut Runtime,
    serving: Rc<RefCell<Option<Serving>>>,
    code: Rc<Cell<i32>>,
) {
    runtime
        .engine_mut()
        .register_fn(SERVE, move |ctx: NativeCallContext| {
            let Some(s) = serving.borrow_mut().take() else {
                return;
            };
            let mut caller = ContextCaller::remote(&ctx, s.host, s.closures);
            let channel = Channel {
                input: s.input.as_fd(),
                output: s.output.as_fd(),
            };
            code.set(serve(&mut caller, channel, &NoNotices, s.init));
        });
}

/// The worker's statements: the script's global constants (their values pushed into
/// `scope`), then the serving loop. The script's own statements never run here.
fn own_statements(runtime: &Runtime, constants: rhai::Map, scope: &mut Scope) -> Result<rhai::AST> {
    let mut text = String::new();
    for (i, (name, value)) in constants.into_iter().enumerate() {
        let holder = format!("procscript_constant_{i}");
        text.push_str(&format!("const {name} = {holder};\n"));
        scope.push(holder, value);
    }
    text.push_str(&format!("{SERVE}();\n"));
    runtime
        .engine()
        .compile(&text)
        .map_err(|e| Error::process(format!("its own statements do not compile: {e}")))
}

/// The pool's side of a remote worker's channel, for `tests/remote_pool.rs`, which plays the
/// pool over a pipe: the one thing a test cannot reach through the binary's command line.
#[doc(hidden)]
pub mod wire {
    use rhai::{Dynamic, Map};

    use crate::ipc::pipe;
    use crate::pool::protocol::{ScriptMsg, TaskMsg, PROTOCOL};

    /// What a pool writes to a worker: the script message for `source` (`job.rhai` on
    /// `node1`), then one task per `(function, items)`, job numbers counting from 0.
    pub fn session(source: &str, tasks: &[(&str, Vec<Dynamic>)]) -> Vec<u8> {
        let script = ScriptMsg {
            protocol: PROTOCOL,
            name: "job.rhai".into(),
            source: source.into(),
            host: "node1".into(),
            args: Vec::new(),
            constants: Map::new(),
            closures: Vec::new(),
            init: Dynamic::UNIT,
        };
        let mut input = pipe::frame(&script.into_value(), str::to_string).expect("a frame");
        for (job, (function, items)) in tasks.iter().enumerate() {
            let task = TaskMsg {
                job: job as u64,
                index: 0,
                function: function.to_string(),
                curry: Vec::new(),
                items: items.clone(),
                star: false,
            };
            input.extend(task.frame(str::to_string).expect("a frame"));
        }
        input
    }

    /// The replies framed in `bytes`, each as its value's debug text, and how many bytes
    /// they took.
    pub fn replies(bytes: &[u8]) -> (Vec<String>, usize) {
        let mut replies = Vec::new();
        let mut at = 0;
        while let Ok(Some((value, used))) = pipe::unframe(&bytes[at..], "the test") {
            replies.push(format!("{value:?}"));
            at += used;
        }
        (replies, at)
    }
}
