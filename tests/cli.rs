//! The command line as scripts use it: a JSON summary on success; one line on stderr
//! and exit code 2 for bad input, never a panic.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flow-playground"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flow-playground-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: stderr {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: want one line, got {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: '{needle}' not in {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    assert_usage_error(&["train", "--dataset", "moon"], "unknown dataset 'moon'");
    assert_usage_error(&["train", "--loss", "l2"], "unknown loss");
    assert_usage_error(&["train", "--schedule", "poly:0"], "poly:0");
    assert_usage_error(
        &["train", "--steps", "0"],
        "--steps must be a positive integer",
    );
    assert_usage_error(
        &["train", "--batch", "-5"],
        "--batch must be a positive integer",
    );
    assert_usage_error(&["train", "--width", "abc"], "--width 'abc'");
    assert_usage_error(&["train", "--sigma", "-1"], "--sigma must be");
    assert_usage_error(&["train", "--lr", "0"], "learning rate");
    assert_usage_error(&["train", "--frobnicate"], "unknown flag '--frobnicate'");
    assert_usage_error(&["train", "--steps"], "--steps needs a value");
    assert_usage_error(&["fly"], "unknown command 'fly'");
    assert_usage_error(
        &["train", "--data-file", "/nonexistent/x.csv"],
        "/nonexistent/x.csv",
    );

    let bad = temp_file("bad.csv", "x,y\n1,2\n3,4\n5,oops\n");
    assert_usage_error(&["train", "--data-file", bad.to_str().unwrap()], "line 4");
    let few = temp_file("few.csv", "1,2\n3,4\n");
    assert_usage_error(
        &["train", "--data-file", few.to_str().unwrap()],
        "too few points",
    );
    let inf = temp_file("inf.csv", "1,2\n3,inf\n");
    assert_usage_error(
        &["train", "--data-file", inf.to_str().unwrap()],
        "line 2: value is not finite",
    );
}

#[test]
fn train_prints_a_json_summary_and_writes_samples_in_data_coordinates() {
    // A user set far from the origin: the samples must come back near it.
    let mut text = String::from("x,y\n");
    for i in 0..200 {
        let a = i as f32 * 0.1;
        text.push_str(&format!(
            "{},{}\n",
            1000.0 + 10.0 * a.cos(),
            -500.0 + 10.0 * a.sin()
        ));
    }
    let csv = temp_file("ring.csv", &text);
    let out_csv = csv.with_file_name("samples.csv");
    let out = run(&[
        "train",
        "--data-file",
        csv.to_str().unwrap(),
        "--steps",
        "200",
        "--batch",
        "256",
        "--width",
        "32",
        "--depth",
        "2",
        "--samples",
        "500",
        "--sampler",
        "sde",
        "--sigma",
        "0.5",
        "--sigma-mode",
        "beta",
        "--samples-out",
        out_csv.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("a JSON line");
    let v: serde_json::Value = serde_json::from_str(last).expect("valid JSON");
    for key in [
        "dataset",
        "loss",
        "schedule",
        "steps",
        "batch",
        "width",
        "depth",
        "backend",
        "train_seconds",
        "steps_per_second",
        "final_loss",
        "sliced_w2",
        "sliced_w2_floor",
        "energy",
        "energy_floor",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {last}");
    }
    assert_eq!(v["dataset"], "ring.csv");
    assert_eq!(v["steps"], 200);
    assert_eq!(v["sampler"], "sde");
    assert!(v["final_loss"].as_f64().expect("number").is_finite());
    let samples = std::fs::read_to_string(&out_csv).expect("samples written");
    let pts = flow_playground::core::data::parse_csv(&samples).expect("valid CSV");
    assert_eq!(pts.len(), 500);
    let mean_x = pts.iter().map(|p| p[0] as f64).sum::<f64>() / 500.0;
    let mean_y = pts.iter().map(|p| p[1] as f64).sum::<f64>() / 500.0;
    assert!(
        (mean_x - 1000.0).abs() < 5.0 && (mean_y + 500.0).abs() < 5.0,
        "{mean_x} {mean_y}"
    );
}

#[test]
fn help_lists_the_commands() {
    let out = run(&["help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("train") && text.contains("bench") && text.contains("--samples-out"));
}
