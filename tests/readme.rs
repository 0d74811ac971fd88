//! Every shell command README.md shows works against `make demo` as written, and prints
//! what README says it prints.
//!
//! The convention (README.md states it in a comment too): a ```sh block with at least one
//! line starting with `$ ` is run against the demo. In it, `$ ` starts a command (a line
//! ending in `\` continues it), a line starting with `#` is a comment, and every other line
//! is the command's standard output as README shows it. `...` in the output stands for any
//! text (also several lines); output without `...` must match whole, and a command with no
//! output shown must print nothing. Trailing blanks are ignored. Every command must exit 0.
//!
//! The test starts what examples/demo.sh starts (the synthetic registry with demo.sh's own
//! options, the service with examples/demo.conf) on free ports, rewrites 127.0.0.1:5000,
//! 127.0.0.1:5001, examples/demo.conf and target/release/gitlab-registry-usage-rest in the
//! commands to them, and runs all commands in order in one bash (so `TOKEN=...` carries
//! over), from the repository root. It also checks that every command the demo banner
//! prints is one of README's, so the banner's commands are run too.

mod support;

use std::path::Path;
use std::process::Command;

use support::service::start_with_config;
use support::synthetic::Synthetic;
use support::{free_port, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_gitlab-registry-usage-rest");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One `$ ` command of README and the output shown under it.
#[derive(Debug, Clone, PartialEq)]
struct Example {
    line: usize,
    command: String,
    output: Vec<String>,
}

/// The runnable examples of a Markdown text (see the module comment).
fn examples(markdown: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut block: Option<Vec<(usize, &str)>> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut block {
            None if trimmed.starts_with("```sh") => block = Some(Vec::new()),
            None => {}
            Some(lines) if trimmed.starts_with("```") => {
                if lines.iter().any(|(_, l)| l.starts_with("$ ")) {
                    out.extend(block_examples(lines));
                }
                block = None;
            }
            Some(lines) => lines.push((index + 1, line)),
        }
    }
    out
}

fn block_examples(lines: &[(usize, &str)]) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut continued = false;
    for &(number, line) in lines {
        if continued {
            let last = out.last_mut().expect("a command to continue");
            last.command.push('\n');
            last.command.push_str(line);
            continued = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            out.push(Example {
                line: number,
                command: command.to_string(),
                output: Vec::new(),
            });
            continued = line.ends_with('\\');
        } else if line.starts_with('#') {
        } else if let Some(last) = out.last_mut() {
            last.output.push(line.to_string());
        } else {
            panic!("README.md line {number}: output before the first `$ ` command: {line:?}");
        }
    }
    out
}

/// Trailing blanks of every line and trailing empty lines removed.
fn normalise(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines.join("\n").trim_end_matches('\n').to_string()
}

/// Whether `actual` is what `shown` shows: equal, or with each `...` standing for any text.
fn matches(shown: &str, actual: &str) -> bool {
    let pieces: Vec<&str> = shown.split("...").collect();
    if pieces.len() == 1 {
        return shown == actual;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &actual[first.len()..];
    // Each middle piece at its earliest place leaves the most room for the others, so
    // this finds a match whenever there is one.
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Runs `examples` in order in one bash in `cwd` after rewriting them with `rewrite`;
/// returns one message per command that failed (exit status or output).
fn run(examples: &[Example], rewrite: &dyn Fn(&str) -> String, cwd: &Path) -> Vec<String> {
    let dir = TempDir::new("readme-run");
    // A curlrc of our own: a time limit (a hung command fails instead of hanging the
    // test) and none of the user's settings.
    std::fs::write(dir.path().join(".curlrc"), "max-time = 60\n").unwrap();
    let mut script = String::from("set -o pipefail\n");
    for (i, example) in examples.iter().enumerate() {
        let out = dir.path().join(format!("{i}"));
        script.push_str(&format!(
            "{{\n{}\n}} >'{o}.out' 2>'{o}.err'\necho $? >'{o}.rc'\n",
            rewrite(&example.command),
            o = out.display()
        ));
    }
    let status = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(cwd)
        .env("CURL_HOME", dir.path())
        .env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .status()
        .expect("run bash");
    assert!(status.success(), "the script itself failed: {script}");
    let mut failures = Vec::new();
    for (i, example) in examples.iter().enumerate() {
        let read = |ext: &str| {
            std::fs::read_to_string(dir.path().join(format!("{i}.{ext}"))).unwrap_or_default()
        };
        let (rc, stdout, stderr) = (read("rc"), normalise(&read("out")), read("err"));
        let shown = normalise(&rewrite(&example.output.join("\n")));
        let what = format!("README.md line {}: `{}`", example.line, example.command);
        if rc.trim() != "0" {
            failures.push(format!(
                "{what} exited with {}; its stderr:\n{stderr}",
                rc.trim()
            ));
        } else if !matches(&shown, &stdout) {
            failures.push(format!(
                "{what} printed\n{stdout}\n---- README shows ----\n{shown}\n---- stderr ----\n{stderr}"
            ));
        }
    }
    failures
}

/// The options examples/demo.sh starts the synthetic registry with (after `--listen`).
fn demo_registry_args(demo_sh: &str) -> Vec<String> {
    let start = demo_sh
        .find("\"$REGISTRY_BIN\" --listen \"$REGISTRY\"")
        .expect("examples/demo.sh starts \"$REGISTRY_BIN\" --listen \"$REGISTRY\" ...");
    let rest = &demo_sh[start..];
    let end = rest
        .find('&')
        .expect("the registry is started in the background");
    rest[..end]
        .replace("\\\n", " ")
        .split_whitespace()
        .skip(3)
        .map(str::to_string)
        .collect()
}

/// The commands the demo banner prints: lines of its text that start with `TOKEN=`,
/// `curl ` or the release binary, with demo.sh's variables as they are when it runs.
fn banner_commands(demo_sh: &str) -> Vec<String> {
    let start = demo_sh.find("cat <<EOF").expect("the banner (cat <<EOF)");
    let end = start + demo_sh[start..].find("\nEOF").expect("the banner's EOF");
    demo_sh[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| {
            ["TOKEN=", "curl ", "$SERVICE_BIN "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| {
            l.replace("\\$", "$")
                .replace("$SERVICE_BIN", "target/release/gitlab-registry-usage-rest")
                .replace("$SERVICE", "127.0.0.1:5000")
                .replace("$REGISTRY", "127.0.0.1:5001")
                .replace("$pretty", " | python3 -m json.tool")
        })
        .collect()
}

#[test]
fn readme_commands_work_against_the_demo() {
    let root = Path::new(ROOT);
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let demo_sh = std::fs::read_to_string(root.join("examples/demo.sh")).unwrap();
    support::require_binary("curl", "curl");
    support::require_binary("python3", "python3");
    let examples = examples(&readme);
    assert!(
        examples.len() >= 5,
        "README.md has only {} runnable commands: {examples:?}",
        examples.len()
    );

    let registry = Synthetic::start(
        &demo_registry_args(&demo_sh)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let registry_address = registry
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let port = free_port();
    let dir = TempDir::new("readme");
    let demo_conf = std::fs::read_to_string(root.join("examples/demo.conf")).unwrap();
    for needle in ["socket_port = 5000", "http://127.0.0.1:5001/"] {
        assert!(
            demo_conf.contains(needle),
            "examples/demo.conf has no {needle:?}"
        );
    }
    let conf = dir.path().join("demo.conf");
    std::fs::write(
        &conf,
        demo_conf
            .replace("socket_port = 5000", &format!("socket_port = {port}"))
            .replace("127.0.0.1:5001", &registry_address),
    )
    .unwrap();
    let service = start_with_config(&conf, port, "", root, &dir.path().join("service.log"));
    service.wait_for_data();

    let service_address = format!("127.0.0.1:{port}");
    let conf_path = conf.display().to_string();
    let rewrite = |text: &str| {
        text.replace("127.0.0.1:5000", &service_address)
            .replace("127.0.0.1:5001", &registry_address)
            .replace("examples/demo.conf", &conf_path)
            .replace("target/release/gitlab-registry-usage-rest", BIN)
    };
    for example in &examples {
        let command = rewrite(&example.command);
        assert!(
            !command.contains(":5000") && !command.contains(":5001"),
            "README.md line {}: a port the test cannot rewrite (write 127.0.0.1:5000 or \
             127.0.0.1:5001): {}",
            example.line,
            example.command
        );
    }
    let failures = run(&examples, &rewrite, root);
    assert!(
        failures.is_empty(),
        "{} of {} README commands failed against the demo (service log: {}):\n\n{}",
        failures.len(),
        examples.len(),
        support::file_tail(&dir.path().join("service.log"), 2000),
        failures.join("\n\n")
    );
}

#[test]
fn the_demo_banner_prints_only_commands_readme_runs() {
    let root = Path::new(ROOT);
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let demo_sh = std::fs::read_to_string(root.join("examples/demo.sh")).unwrap();
    let readme_commands: Vec<String> = examples(&readme).into_iter().map(|e| e.command).collect();
    let banner = banner_commands(&demo_sh);
    assert!(
        banner.len() >= 3,
        "too few commands in the banner: {banner:?}"
    );
    for command in &banner {
        assert!(
            readme_commands.contains(command),
            "the demo banner prints a command README.md does not show (so no test runs it):\n\
             {command}\nREADME's commands:\n{}",
            readme_commands.join("\n")
        );
    }
}

#[test]
fn the_runner_reports_failing_commands_and_wrong_output() {
    let readme = "```sh\n$ X=hi\n$ echo $X\nhi\n$ echo $X\nho\n$ false\n$ printf 'a\\nb\\nc\\n'\n\
                  a\n...\nc\n$ echo nothing shown\n```\n";
    let examples = examples(readme);
    assert_eq!(examples.len(), 6, "{examples:?}");
    let failures = run(&examples, &|s| s.to_string(), Path::new(ROOT));
    assert_eq!(failures.len(), 3, "{failures:#?}");
    assert!(
        failures[0].contains("`echo $X` printed\nhi"),
        "{}",
        failures[0]
    );
    assert!(
        failures[1].contains("`false` exited with 1"),
        "{}",
        failures[1]
    );
    assert!(
        failures[2].contains("`echo nothing shown` printed"),
        "{}",
        failures[2]
    );
}

#[test]
fn dots_stand_for_any_text() {
    assert!(matches("abc", "abc"));
    assert!(!matches("abc", "abcd"));
    assert!(matches("a...", "abcd"));
    assert!(matches("...d", "abcd"));
    assert!(matches("a...c...e", "a-c-c-e"));
    assert!(matches("{\n...\n}", "{\n  x\n  y\n}"));
    assert!(!matches("ab...ba", "aba"));
    assert!(!matches("a...c", "abcd"));
}

#[test]
fn examples_are_read_from_dollar_blocks_only() {
    let text = "```sh\nmake demo\n```\n```sh\n# c\n$ a \\\n  b\nout\n$ c\n```\n```\n$ d\n```\n";
    assert_eq!(
        examples(text),
        vec![
            Example {
                line: 6,
                command: "a \\\n  b".to_string(),
                output: vec!["out".to_string()],
            },
            Example {
                line: 9,
                command: "c".to_string(),
                output: vec![],
            },
        ]
    );
}
