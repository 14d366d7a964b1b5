//! `dstack validate` run as a real process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dstack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dstack"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .expect("dstack runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn three_mistakes_are_reported_together() {
    let out = dstack(&[
        "validate",
        "dstack-cli/tests/fixtures/three-mistakes.dstack.yml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    insta::assert_snapshot!(text(&out.stderr), @r#"
      × comands: Extra inputs are not permitted: unknown property `comands`
       ╭─[dstack-cli/tests/fixtures/three-mistakes.dstack.yml:4:1]
     3 │ port: 8000
     4 │ comands:
       · ───────
     5 │   - python3 -m http.server 8000
       ╰────
      help: did you mean `commands`?

      × resources.gpu: GPU spec contains empty token: A100:
       ╭─[dstack-cli/tests/fixtures/three-mistakes.dstack.yml:7:8]
     6 │ resources:
     7 │   gpu: "A100:"
       ·        ───────
     8 │   memory: 16GBB
       ╰────
      help: write GPUs as `A100`, `A100:80GB:2`, `A10G,A100:2`, `24GB..:2`, `nvidia:1..2` or
            `amd:MI300X:8`

      × resources.memory: could not convert string to float: '16gbb'
       ╭─[dstack-cli/tests/fixtures/three-mistakes.dstack.yml:8:11]
     7 │   gpu: "A100:"
     8 │   memory: 16GBB
       ·           ─────
       ╰────
      help: a size is a number of GB, or a number with `MB`, `GB` or `TB` (`512MB`, `16GB`, `1TB`); a
            range is `8GB..16GB`, `24GB..` or `..80GB`

    error: dstack-cli/tests/fixtures/three-mistakes.dstack.yml: 3 errors
    "#);
}

#[test]
fn examples_are_valid() {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/ exists")
        .filter_map(|e| e.ok())
        .map(|e| format!("examples/{}", e.file_name().to_string_lossy()))
        .filter(|n| n.ends_with(".dstack.yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = dstack(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let expected: String = files.iter().map(|f| format!("{f}: OK\n")).collect();
    assert_eq!(text(&out.stdout), expected);
}

#[test]
fn json_prints_one_document_per_file() {
    let out = dstack(&[
        "validate",
        "--json",
        "examples/service.dstack.yml",
        "examples/gateway.dstack.yml",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let docs: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["type"], "service");
    assert_eq!(docs[0]["port"]["container_port"], 8000);
    assert_eq!(docs[1]["certificate"]["type"], "lets-encrypt");
}

#[test]
fn mixed_files_exit_2_and_still_report_the_valid_ones() {
    let out = dstack(&[
        "validate",
        "examples/service.dstack.yml",
        "dstack-cli/tests/fixtures/three-mistakes.dstack.yml",
        "does-not-exist.dstack.yml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "examples/service.dstack.yml: OK\n");
    let err = text(&out.stderr);
    assert!(
        err.contains("error: cannot read does-not-exist.dstack.yml"),
        "{err}"
    );
    assert!(err.contains("error: 2 of 3 files are invalid"), "{err}");
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let dir = std::env::temp_dir().join(format!("dstack-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("broken.dstack.yml");
    std::fs::write(&file, "type: task\ncommands: [echo hi\nname: x\n").expect("write");
    let out = dstack(&["validate", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("invalid YAML"), "{err}");
    assert!(err.contains("broken.dstack.yml:3:"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
