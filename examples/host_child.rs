//! A host with a child of its own: it starts a program with `std::process::Command`, runs a
//! script that forks and reaps children of its own, and then still gets its program's exit
//! status, because procscript's reaper waits only for the children procscript started.
//!
//! Run it with `cargo run --example host_child`; it prints `host child exit code: 7`.

use std::process::Command;

use procscript::Runtime;

const SCRIPT: &str = r#"
let codes = [];
for i in 0..20 {
    let p = spawn exit(i % 5);
    codes.push(p.join());
}
let r = run(["true"]);
sleep(0.3);   // the host's program ends meanwhile: SIGCHLD arrives, and is not ours
codes.push(r.code);
codes
"#;

fn main() {
    let mut program = Command::new("sh")
        .args(["-c", "sleep 0.1; exit 7"])
        .spawn()
        .expect("the host starts its own program");
    let runtime = Runtime::new();
    let ast = runtime
        .compile_source("host_child.rhai", SCRIPT)
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
    let codes: procscript::rhai::Array = runtime.engine().eval_ast(&ast).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    procscript::finish();
    let codes: Vec<String> = codes.iter().map(ToString::to_string).collect();
    println!("script exit codes: {}", codes.join(" "));
    match program.wait() {
        Ok(status) => println!("host child exit code: {}", status.code().unwrap_or(-1)),
        Err(e) => {
            println!("host child lost: {e}");
            std::process::exit(1)
        }
    }
}
