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
    use procscript::rhai::packages::Package;
    let mut engine = procscript::rhai::Engine::new();
    procscript::ProcessPackage::new().register_into_engine(&mut engine);
    let name: String = engine.eval("current_process().name").unwrap();
    assert_eq!(name, "MainProcess");
    let pid: i64 = engine.eval("getpid()").unwrap();
    assert_eq!(pid, i64::from(std::process::id()));
}

/// Issue 13: one package gives a plain engine the whole surface, syntax included. (`spawn`
/// runs, and is refused here only because this test process has threads.)
#[test]
fn the_procscript_package_brings_spawn_and_with_to_a_plain_engine() {
    use procscript::rhai::packages::Package;
    let mut engine = procscript::rhai::Engine::new();
    procscript::ProcscriptPackage::new().register_into_engine(&mut engine);
    let held: bool = engine
        .eval("let lock = Lock(); let inside = false; with lock { inside = lock.locked(); } inside && !lock.locked()")
        .unwrap();
    assert!(held);
    let message: String = engine
        .eval(r#"let m = ""; try { let p = spawn 1; } catch (e) { m = `${e.kind}: ${e.message}`; } m"#)
        .unwrap();
    assert!(
        message.starts_with("ProcessError: refusing to fork"),
        "{message}"
    );
    let text: String = engine
        .eval("let q = Queue(); q.put(blob(2, 104)); str(q.get())")
        .unwrap();
    assert_eq!(text, "b'hh'");
}

#[test]
fn syntax_errors_are_reported_not_run() {
    let runtime = Runtime::new();
    let err = runtime.compile_source("bad.rhai", "let = 1;").unwrap_err();
    assert!(matches!(err, ScriptError::Syntax { .. }));
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("bad.rhai:1:"), "{err}");
}

/// docs/embedding.md shows the dependency lines a host needs, and tests/host/ is a host made
/// from exactly those (with a path for the version) and examples/embed.rs; `.ci/run` builds
/// it, which proves that the page's lines are enough.
#[test]
fn the_host_in_tests_host_uses_the_lines_the_embedding_page_shows() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/embedding.md")).unwrap();
    let block = page
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```toml block");
    let host = std::fs::read_to_string(root.join("tests/host/Cargo.toml")).unwrap();
    let dependencies = |text: &str| -> Vec<String> {
        text.lines()
            .skip_while(|l| l.trim() != "[dependencies]")
            .skip(1)
            .take_while(|l| !l.trim().starts_with('['))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let version = format!(
        "version = \"{}\"",
        env!("CARGO_PKG_VERSION")
            .rsplit_once('.')
            .map_or("", |(major_minor, _)| major_minor)
    );
    let shown: Vec<String> = dependencies(block)
        .into_iter()
        .map(|l| l.replace(&version, "path = \"../..\""))
        .collect();
    assert_eq!(
        shown,
        dependencies(&host),
        "docs/embedding.md vs tests/host/Cargo.toml"
    );
    assert!(
        !host.contains("\nrhai"),
        "the host must not depend on rhai itself"
    );
    let example = std::fs::read_to_string(root.join("examples/embed.rs")).unwrap();
    assert!(
        example.contains("procscript::rhai::") && !example.contains("use rhai::"),
        "examples/embed.rs names rhai only through procscript::rhai"
    );
}
