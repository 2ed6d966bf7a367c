//! The command-line phone's output when its reader goes away early.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::process::{Command, Stdio};

/// `flexwork-device … | head -1`: once the reader has stopped, the command ends normally
/// instead of panicking on the closed pipe.
#[test]
fn a_reader_that_stops_early_does_not_make_it_panic() {
    let store = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flexwork-device"))
        .args(["--json", "tasks"])
        .env("FLEXWORK_DEVICE_STORE", store.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the command writes anything.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
