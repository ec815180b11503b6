//! Shows how to embed procscript in a host program: add a function of the host's own, run
//! a script that forks workers which call it, and apply the same end-of-script policy as
//! the `procscript` binary.
//!
//! Run it with `cargo run --example embed`.
//!
//! The host must stay single-threaded while scripts start processes (procscript refuses to
//! fork otherwise; see docs/embedding.md).

use procscript::rhai::Scope;
use procscript::Runtime;

const SCRIPT: &str = r#"
// `host_greeting` comes from the host; Process, spawn and join from procscript.
fn worker(n) {
    print(`${host_greeting()} from ${current_process().name}: ${n} squared is ${n * n}`);
}

let workers = [];
for n in 1..=3 {
    let p = Process(worker, [n]);
    p.start();
    workers.push(p);
}
let codes = workers.map(|p| p.join());
print(`exit codes: ${codes}`);
codes.reduce(|sum, c| sum + c, 0)
"#;

fn main() {
    let mut runtime = Runtime::new();
    runtime
        .engine_mut()
        .register_fn("host_greeting", || "hello from the host");

    let ast = match runtime.compile_source("embedded.rhai", SCRIPT) {
        Ok(ast) => ast,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(error.exit_code());
        }
    };
    // Evaluate to get the script's last value; then end daemons and wait for the others,
    // as `procscript run` does when a script ends.
    let mut scope = Scope::new();
    let result = runtime
        .engine()
        .eval_ast_with_scope::<i64>(&mut scope, &ast);
    procscript::finish();
    match result {
        Ok(sum) => println!("host: workers' exit codes add up to {sum}"),
        // The script's error as data (`ScriptError::diagnostic`), or shown as the binary
        // shows it, without colour: file:line:col, the source line, a caret.
        Err(error) => match runtime.outcome(Err(error), ast.source()) {
            Ok(code) => std::process::exit(code), // the script called exit(code)
            Err(error) => {
                eprintln!("{error}");
                std::process::exit(error.exit_code());
            }
        },
    }
}
