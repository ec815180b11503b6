//! Bad input never panics: every native, called with wrong argument types and counts, fails
//! with a catchable error. The calls are generated from the engine's own function metadata,
//! so natives added later are covered without touching this test.

use crate::support::*;

/// Values of every kind a script can pass, kept harmless (no function values, so nothing
/// forks; zero-sized numbers, so nothing sleeps or allocates much).
const VALUES: &[&str] = &[
    "()", "0", "-1", "0.0", "\"\"", "\"x\"", "[]", "#{}", "blob()", "true", "'c'",
];

/// Functions whose whole point is to end or block the process, and `print`, which writes
/// to the stdout the test reads.
const SKIPPED: &[&str] = &["exit", "input", "print"];

#[test]
fn every_native_rejects_wrong_arguments_with_a_catchable_error() {
    let names: Vec<(String, usize)> = natives()
        .into_iter()
        .filter(|(name, _)| !SKIPPED.contains(&name.as_str()))
        // Operators (`==` on sockets) are not called by name.
        .filter(|(name, _)| name.starts_with(|c: char| c.is_alphabetic() || c == '_'))
        .collect();
    assert!(names.len() >= 20, "only {} natives found", names.len());

    let mut script = String::from("let calls = 0;\n");
    for (name, arity) in &names {
        // Wrong counts: one fewer and one more than some overload takes.
        let mut counts = vec![arity + 1];
        if *arity > 0 {
            counts.push(arity - 1);
        }
        counts.push(*arity);
        for count in counts {
            for value in VALUES {
                let args = vec![*value; count].join(", ");
                script.push_str(&format!(
                    "try {{ {name}({args}); }} catch (e) {{ }} calls += 1;\n"
                ));
            }
            // Mixed types, shifted so each position sees several kinds.
            for shift in 0..3 {
                let args: Vec<&str> = (0..count)
                    .map(|i| VALUES[(i + shift * 3) % VALUES.len()])
                    .collect();
                script.push_str(&format!(
                    "try {{ {name}({}); }} catch (e) {{ }} calls += 1;\n",
                    args.join(", ")
                ));
            }
        }
    }
    script.push_str("print(`done ${calls}`);\n");
    let run = Test::new().script(&script).run();
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    // `print` and `debug` (procscript's own, for arrays and maps) are among the natives
    // called, so the tally is the last line, not the only one.
    let last = run.stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("done "), "{}", run.stdout);
    assert!(!run.stderr.contains("panic"), "{}", run.stderr);
}

#[test]
fn methods_of_a_process_reject_wrong_arguments() {
    let mut script = String::from("let p = Process(|| 0);\nlet calls = 0;\n");
    for method in ["start", "join", "is_alive", "terminate", "kill"] {
        for value in VALUES {
            script.push_str(&format!(
                "try {{ p.{method}({value}); }} catch (e) {{ }} calls += 1;\n"
            ));
            script.push_str(&format!(
                "try {{ p.{method}({value}, {value}); }} catch (e) {{ }} calls += 1;\n"
            ));
        }
    }
    for value in VALUES {
        script.push_str(&format!(
            "try {{ p.name = {value}; }} catch (e) {{ }} calls += 1;\n"
        ));
        script.push_str(&format!(
            "try {{ p.daemon = {value}; }} catch (e) {{ }} calls += 1;\n"
        ));
    }
    script.push_str("print(`done ${calls}`);\n");
    let run = Test::new().script(&script).run();
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    run.stdout_has("done ");
}
