//! The library API used in-process. Nothing here forks: this test process has threads, so
//! procscript must refuse to fork in it.

use procscript::{Runtime, ScriptError};

#[test]
fn start_is_refused_in_a_threaded_host() {
    let mut runtime = Runtime::new();
    let ast = runtime
        .compile_source(
            "threaded.rhai",
            r#"
let p = Process(|| 0);
let message = "";
try { p.start(); } catch (e) { message = `${e.kind}: ${e.message}`; }
message
"#,
        )
        .unwrap();
    let _helper = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(2)));
    let message: String = runtime.engine_mut().eval_ast(&ast).unwrap();
    assert!(
        message.starts_with("ProcessError: refusing to fork: this process has"),
        "{message}"
    );
    assert!(message.contains("threads"), "{message}");
}

#[test]
fn packages_work_on_a_host_engine() {
    use rhai::packages::Package;
    let mut engine = rhai::Engine::new();
    procscript::ProcessPackage::new().register_into_engine(&mut engine);
    let name: String = engine.eval("current_process().name").unwrap();
    assert_eq!(name, "MainProcess");
    let pid: i64 = engine.eval("getpid()").unwrap();
    assert_eq!(pid, i64::from(std::process::id()));
}

#[test]
fn syntax_errors_are_reported_not_run() {
    let runtime = Runtime::new();
    let err = runtime.compile_source("bad.rhai", "let = 1;").unwrap_err();
    assert!(matches!(err, ScriptError::Syntax { .. }));
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("bad.rhai:1:"), "{err}");
}
