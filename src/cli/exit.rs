//! Exit codes, as k6 defines them where k6 has one.

use std::process::ExitCode;

/// Every threshold passed (or there were none).
pub const OK: u8 = 0;
/// Anything not covered below.
pub const FAILURE: u8 = 1;
/// At least one threshold failed (k6 `ThresholdsHaveFailed`).
pub const THRESHOLDS_FAILED: u8 = 99;
/// The test was aborted through the API (`volley abort`, `DELETE /v1/tests/ID`), as k6 exits
/// when stopped through its REST API (k6 `ScriptStoppedFromRESTAPI`).
pub const ABORTED_THROUGH_API: u8 = 103;
/// The plan or the options are invalid (k6 `InvalidConfig`).
pub const INVALID_CONFIG: u8 = 104;
/// Stopped by a signal (k6 `ExternalAbort`).
pub const INTERRUPTED: u8 = 105;
/// k6 `ScriptException`: a script threw outside an iteration, or a plan's
/// `setup` failed a check.
pub const SCRIPT_EXCEPTION: u8 = 107;
/// k6: `exec.test.abort()` was called.
pub const SCRIPT_ABORTED: u8 = 108;
/// k6: `exec.test.fail()` was called (wins over failed thresholds).
pub const SCRIPT_FAILED: u8 = 110;

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
