//! Replays every input of every fuzz corpus (`fuzz/corpus/<target>/`) through the entry points
//! the fuzz targets call (`kyso::fuzzing`), so that CI on stable, where libFuzzer cannot run,
//! still checks that none of them panics. A target without a corpus, or a corpus left empty,
//! fails: a replay with nothing to replay would pass without checking anything.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use kyso::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The file stems (or directory names) in `dir`, failing when it cannot be read.
fn names_in(dir: &Path, extension: Option<&str>) -> BTreeSet<String> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{} cannot be read: {e}", dir.display()));
    entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| extension.is_none_or(|ext| path.extension().is_some_and(|e| e == ext)))
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect()
}

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join("corpus").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the corpus of `{target}` ({}) is missing: {e}",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_fuzz_target_has_a_corpus_and_an_entry_point() {
    let entry_points: BTreeSet<String> = TARGETS.iter().map(|(name, _)| name.to_string()).collect();
    let targets = names_in(&fuzz_dir().join("fuzz_targets"), Some("rs"));
    let corpora = names_in(&fuzz_dir().join("corpus"), None);
    assert_eq!(
        targets, entry_points,
        "fuzz/fuzz_targets/*.rs against kyso::fuzzing::TARGETS"
    );
    assert_eq!(
        corpora, entry_points,
        "fuzz/corpus/* against kyso::fuzzing::TARGETS"
    );
}

#[test]
fn every_fuzz_corpus_input_is_handled_without_a_panic() {
    let mut panicked = Vec::new();
    for (target, entry) in TARGETS {
        let files = corpus_files(target);
        assert!(!files.is_empty(), "the corpus of `{target}` is empty");
        for file in files {
            let data = std::fs::read(&file)
                .unwrap_or_else(|e| panic!("{} cannot be read: {e}", file.display()));
            if catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err() {
                panicked.push(file.display().to_string());
            }
        }
    }
    assert!(panicked.is_empty(), "inputs that panic: {panicked:#?}");
}
