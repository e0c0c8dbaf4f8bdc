//! `docs/walkthrough.md`, run as written (issue #7): every command of its ```` ```console ````
//! blocks, in order, in one bash per backend — so shell variables and cookie jars carry from
//! chapter to chapter — against a fresh server, and each command's output compared with the lines
//! the page shows under it.
//!
//! The page's conventions, which this file enforces:
//! - a line starting with `$ ` is a command; a command line ending in `\` continues on the next;
//! - the other lines up to the next command are its output (stdout; the page uses `curl -s`);
//! - `…` in an output line matches any text, possibly none, and so does `…(a description)…`;
//!   everything else is literal, except that trailing whitespace (curl's `\r` after a header, a
//!   space after the last status code) is ignored, as a reader's terminal shows none;
//! - a command shown without output must print nothing;
//! - `localhost:3000` (the address of `just run`) is replaced by the test server's address.

use std::fs::File;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::helpers::{Backend, spawn_app};

/// How the page addresses the server.
const DOC_ADDRESS: &str = "localhost:3000";
/// Printed by the generated script after each command, to cut the shell's output into steps.
const MARKER: &str = "@@tokenlab-step-";
/// Not a timing assertion: a page that waits for something that never happens (an `until` loop,
/// a `wait`) would otherwise hang the test run. A run takes seconds.
const HANG_GUARD: Duration = Duration::from_secs(300);
/// Failures shown in full; the later ones often follow from the first.
const SHOWN_FAILURES: usize = 3;

/// One command of the page and the output shown under it.
#[derive(Debug)]
struct Step {
    chapter: String,
    /// 1-based line of the `$ ` line in the page.
    line: usize,
    /// As on the page, continuation lines included, without the `$ `.
    command: String,
    expected: Vec<String>,
}

backend_test!(the_walkthrough_runs_as_written);
async fn the_walkthrough_runs_as_written(backend: Backend) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/walkthrough.md");
    let doc = std::fs::read_to_string(&path).expect("docs/walkthrough.md is readable");
    let steps = parse(&doc);
    assert!(steps.len() > 10, "only {} commands found in docs/walkthrough.md", steps.len());
    let app = spawn_app(backend).await;
    let address = app.base.strip_prefix("http://").expect("an http base URL").to_owned();
    let run = run_in_bash(&steps, &address).await;
    app.stop().await;
    let failures = compare(&steps, &run);
    if !failures.is_empty() {
        panic!("{}", report(backend, &failures, &run));
    }
}

/// The commands of every `console` block, in page order. Any other fenced block is refused: its
/// commands would silently go untested.
fn parse(doc: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut chapter = String::from("(before the first chapter)");
    // The indentation of the open console block's fence (blocks inside list items are indented).
    let mut block: Option<usize> = None;
    let mut commands_in_block = 0;
    for (index, raw) in doc.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim();
        let Some(indent) = block else {
            if let Some(heading) = raw.strip_prefix("## ") {
                chapter = heading.trim().to_owned();
            } else if trimmed == "```console" {
                block = Some(raw.len() - raw.trim_start().len());
                commands_in_block = 0;
            } else if trimmed.starts_with("```") {
                panic!(
                    "docs/walkthrough.md:{number}: only ```console blocks are allowed, so that \
                     every command is run: {raw:?}"
                );
            }
            continue;
        };
        if trimmed == "```" {
            block = None;
            continue;
        }
        // Strip the fence's indentation, and no more: continuation lines keep theirs.
        let line = match raw.get(..indent) {
            Some(prefix) if prefix.trim().is_empty() => &raw[indent..],
            _ => raw,
        };
        let continues = commands_in_block > 0
            && steps.last().is_some_and(|step| {
                step.expected.is_empty() && step.command.trim_end().ends_with('\\')
            });
        if continues {
            let step = steps.last_mut().expect("checked above");
            step.command.push('\n');
            step.command.push_str(line);
        } else if let Some(command) = line.strip_prefix("$ ") {
            commands_in_block += 1;
            steps.push(Step {
                chapter: chapter.clone(),
                line: number,
                command: command.to_owned(),
                expected: Vec::new(),
            });
        } else {
            let step = steps.last_mut().filter(|_| commands_in_block > 0).unwrap_or_else(|| {
                panic!("docs/walkthrough.md:{number}: output before any command")
            });
            step.expected.push(line.trim_end().to_owned());
        }
    }
    assert!(block.is_none(), "docs/walkthrough.md: a ```console block is not closed");
    steps
}

/// What the shell printed, cut into one output per step.
struct Run {
    /// `None` for the steps the shell did not get to finish.
    outputs: Vec<Option<String>>,
    stderr: String,
    ending: String,
}

/// Runs all steps in one bash, in a fresh directory, with a marker line after each.
async fn run_in_bash(steps: &[Step], address: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut script = String::from(
        "command -v curl >/dev/null || { echo 'walkthrough: curl is not on PATH' >&2; exit 1; }\n",
    );
    for (index, step) in steps.iter().enumerate() {
        let command = step.command.replace(DOC_ADDRESS, address);
        assert!(
            !command.contains("127.0.0.1:3000"),
            "docs/walkthrough.md:{}: address the server as {DOC_ADDRESS}",
            step.line
        );
        script.push_str(&command);
        // The newline first: curl's JSON answers do not end with one. One trailing newline of
        // each output is dropped again when cutting, so both kinds of output compare alike.
        script.push_str(&format!("\nprintf '\\n{MARKER}%d@@\\n' {index}\n"));
    }
    // Nothing may outlive the server.
    script.push_str("wait\n");
    let script_path = dir.path().join("walkthrough.sh");
    std::fs::write(&script_path, script).unwrap();
    let (stdout_path, stderr_path) = (dir.path().join("stdout"), dir.path().join("stderr"));

    // A clean environment: no proxy variables (they would route the requests elsewhere), no
    // ~/.curlrc of the machine (HOME is the fresh directory), a fixed locale.
    let inherited = std::env::var("PATH").unwrap_or_default();
    // `tokenlab dpop` (chapter 7) is this package's own binary, as `just run` builds it.
    let own_binary = Path::new(env!("CARGO_BIN_EXE_tokenlab"))
        .parent()
        .and_then(Path::to_str)
        .expect("the binary's directory")
        .to_owned();
    let path = std::iter::once(own_binary.as_str())
        .chain(inherited.split(':'))
        .chain(["/usr/local/bin", "/usr/bin", "/bin"])
        .filter(|dir| !dir.is_empty())
        .collect::<Vec<_>>()
        .join(":");
    let mut child = tokio::process::Command::new("bash")
        .arg(&script_path)
        .current_dir(&work)
        .env_clear()
        .env("PATH", path)
        .env("HOME", &work)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("bash starts");
    // Awaited on this test's runtime, which keeps serving the server meanwhile.
    let ending = match tokio::time::timeout(HANG_GUARD, child.wait()).await {
        Ok(status) => format!("bash ended with {}", status.unwrap()),
        Err(_) => {
            child.kill().await.unwrap();
            format!("bash was stopped after {} s, still running", HANG_GUARD.as_secs())
        }
    };

    let stdout = String::from_utf8_lossy(&std::fs::read(&stdout_path).unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&std::fs::read(&stderr_path).unwrap()).into_owned();
    let mut outputs = Vec::with_capacity(steps.len());
    let mut rest = stdout.as_str();
    for index in 0..steps.len() {
        let marker = format!("\n{MARKER}{index}@@\n");
        match rest.find(&marker) {
            Some(at) => {
                outputs.push(Some(rest[..at].strip_suffix('\n').unwrap_or(&rest[..at]).to_owned()));
                rest = &rest[at + marker.len()..];
            }
            None => outputs.push(None),
        }
    }
    Run { outputs, stderr, ending }
}

struct Failure<'a> {
    step: &'a Step,
    actual: Option<&'a str>,
}

fn compare<'a>(steps: &'a [Step], run: &'a Run) -> Vec<Failure<'a>> {
    steps
        .iter()
        .zip(&run.outputs)
        .filter(|(step, output)| match output {
            Some(actual) => !output_matches(&step.expected, actual),
            None => true,
        })
        .map(|(step, output)| Failure { step, actual: output.as_deref() })
        .collect()
}

fn output_matches(expected: &[String], actual: &str) -> bool {
    let actual: Vec<&str> = actual.lines().map(str::trim_end).collect();
    actual.len() == expected.len()
        && expected.iter().zip(&actual).all(|(pattern, line)| line_matches(pattern, line))
}

/// `…` matches any text; `…(a description)…` is one `…`; the rest is literal.
fn line_matches(pattern: &str, line: &str) -> bool {
    let pattern = collapse_descriptions(pattern);
    let mut parts = pattern.split('…');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        // The leftmost occurrence leaves the most room for the parts after it.
        let Some(at) = rest.find(part) else {
            return false;
        };
        rest = &rest[at + part.len()..];
    }
    rest.ends_with(last)
}

fn collapse_descriptions(pattern: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("…(") {
        let after = &rest[start + "…(".len()..];
        let Some(end) = after.find(")…") else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push('…');
        rest = &after[end + ")…".len()..];
    }
    out.push_str(rest);
    out
}

fn report(backend: Backend, failures: &[Failure<'_>], run: &Run) -> String {
    let mut text = format!(
        "docs/walkthrough.md does not match the server ({backend:?}): {} of {} commands differ; \
         {}\n",
        failures.len(),
        run.outputs.len(),
        run.ending
    );
    for failure in failures.iter().take(SHOWN_FAILURES) {
        let step = failure.step;
        text.push_str(&format!(
            "\n## {}\ndocs/walkthrough.md:{}\n$ {}\n--- expected ({} lines)\n{}\n",
            step.chapter,
            step.line,
            step.command,
            step.expected.len(),
            step.expected.join("\n")
        ));
        match failure.actual {
            Some(actual) => {
                text.push_str(&format!("--- actual ({} lines)\n{actual}\n", actual.lines().count()))
            }
            None => text.push_str("--- actual: the shell did not finish this command\n"),
        }
    }
    if failures.len() > SHOWN_FAILURES {
        text.push_str(&format!("\n… and {} more:\n", failures.len() - SHOWN_FAILURES));
        for failure in &failures[SHOWN_FAILURES..] {
            let first_line = failure.step.command.lines().next().unwrap_or_default();
            text.push_str(&format!(
                "  docs/walkthrough.md:{}: $ {first_line}\n",
                failure.step.line
            ));
        }
    }
    if !run.stderr.is_empty() {
        text.push_str(&format!("\n--- the shell's stderr\n{}\n", run.stderr));
    }
    text
}

#[test]
fn wildcards() {
    let cases = [
        (
            r#"{"now":"…","offset_seconds":1860}"#,
            r#"{"now":"2026-11-27T21:00:15Z","offset_seconds":1860}"#,
            true,
        ),
        (r#"{"now":"…","offset_seconds":1860}"#, r#"{"now":"x","offset_seconds":18600}"#, false),
        ("x-device-token: …(the new secret)…", "x-device-token: f1e0", true),
        ("x-device-token: …(the new secret)…", "x-device-token: ", true),
        ("x-device-token: …(the new secret)…", "x-device-tok: f1e0", false),
        ("…", "", true),
        ("a…b…a", "aba", true),
        ("a…b…a", "ab", false),
        ("a…a", "a", false),
        ("a…b…a", "abba", true),
        ("…(64 hex)…", "anything at all", true),
        ("literal", "literal", true),
        ("literal", "literally", false),
        ("(not a description)…", "(not a description) and more", true),
    ];
    for (pattern, line, expected) in cases {
        assert_eq!(line_matches(pattern, line), expected, "{pattern:?} against {line:?}");
    }
}

#[test]
fn pages_are_cut_into_steps() {
    let doc = "intro\n## 1. One\n```console\n$ echo a \\\n       b\na b\n$ true\n```\n\
               - item\n\n  ```console\n  $ printf x\n  x\n  ```\n";
    let steps = parse(doc);
    let seen: Vec<(&str, usize, &str, Vec<&str>)> = steps
        .iter()
        .map(|s| {
            (
                s.chapter.as_str(),
                s.line,
                s.command.as_str(),
                s.expected.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("1. One", 4, "echo a \\\n       b", vec!["a b"]),
            ("1. One", 7, "true", vec![]),
            ("1. One", 12, "printf x", vec!["x"]),
        ]
    );
}
