//! The committed fuzz corpora (`fuzz/corpus/<target>/`), replayed through the same checks
//! the fuzz targets run (`gitlab_registry_usage_rest::fuzzing`), on a stable toolchain
//! and without a fuzzer: every crash the fuzzers found stays fixed. See docs/FUZZING.md.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use gitlab_registry_usage_rest::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// On a thread with a large stack: this is an unoptimised build, whose frames are many
/// times a release build's, and the regex crate recurses once per operator of a pattern
/// like `n****…` (250 are allowed): 240 of them overflow a test thread's 2 MiB here,
/// while the release service answers that query on its worker's default stack (checked
/// by hand with the fuzzer's input, `fuzz/corpus/cleanup/088167cc...`).
#[test]
fn every_corpus_file_passes_its_check() {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(replay_every_corpus_file)
        .expect("a replay thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

fn replay_every_corpus_file() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for target in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target.name);
        let files = files_in(&dir);
        assert!(!files.is_empty(), "{} has no seeds", dir.display());
        for file in files {
            let data = std::fs::read(&file).expect("a corpus file");
            replayed += 1;
            if catch_unwind(AssertUnwindSafe(|| (target.check)(&data))).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {replayed} corpus files fail their check (the panic of each is printed above; \
         reproduce one with `cargo fuzz run <target> <file>` in fuzz/):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A target added to `fuzzing::TARGETS` but not to the fuzz crate (or the other way
/// round) would be fuzzed by nobody, or replayed by nobody.
#[test]
fn targets_corpora_and_fuzz_crate_agree() {
    let mut names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    names.sort_unstable();
    let file_stems = |dir: &str| -> Vec<String> {
        let mut stems: Vec<String> = std::fs::read_dir(fuzz_dir().join(dir))
            .expect("the fuzz crate's folders")
            .map(|e| {
                let path = e.expect("a directory entry").path();
                let stem = path.file_stem().expect("a file name");
                stem.to_string_lossy().into_owned()
            })
            .collect();
        stems.sort();
        stems
    };
    assert_eq!(
        file_stems("corpus"),
        names,
        "fuzz/corpus/ vs fuzzing::TARGETS"
    );
    assert_eq!(
        file_stems("fuzz_targets"),
        names,
        "fuzz/fuzz_targets/ vs fuzzing::TARGETS"
    );
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for name in &names {
        assert!(
            manifest.contains(&format!(
                "[[bin]]\nname = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "fuzz/Cargo.toml has no [[bin]] for {name}"
        );
        let source = std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs")))
            .expect("a fuzz target");
        assert!(
            source.contains(&format!("fuzzing::{name}(data)")),
            "fuzz_targets/{name}.rs does not call fuzzing::{name}"
        );
    }
}
