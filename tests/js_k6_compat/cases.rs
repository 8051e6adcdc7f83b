//! The corpus table: what the k6 and Volley runs of each script in
//! `tests/scripts/k6/` must agree on, and the check that the table and the
//! directory list the same scripts.

use std::collections::BTreeSet;

use crate::SCRIPTS;

/// What to compare for one script.
#[derive(Debug, Clone, Copy)]
pub enum Compare {
    /// The run never starts (init or syntax error): only the exit code; k6
    /// writes no summary export then.
    ExitOnly,
    /// Iterations are bounded: both runs must have exactly these counts,
    /// the same passes and fails for every check, the same threshold
    /// verdicts.
    Counted { iterations: u64, http_reqs: u64 },
    /// Bounded by a duration, so counts differ run to run: the same set of
    /// checks, the same `checks` pass ratio (the scripts make it exact),
    /// the same threshold verdicts, and some iterations in both runs.
    Timed,
}

/// Whether k6 can run the script here.
#[derive(Debug, Clone, Copy)]
pub enum K6Side {
    Run,
    /// k6 cannot run it on this machine; Volley's checks must be exactly
    /// these `(path, passes, fails)` (seen with k6 1.1.0 given a local copy
    /// of the remote module) and no threshold may fail.
    Skip {
        reason: &'static str,
        checks: &'static [(&'static str, u64, u64)],
    },
}

/// One script and what its two runs must agree on.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// File name under [`SCRIPTS`].
    pub script: &'static str,
    /// Exit code of both runs (k6 1.1.0's, seen).
    pub exit: i32,
    pub compare: Compare,
    /// Extra `-e KEY=VALUE` for both runs (`TARGET_URL` is always given).
    pub env: &'static [(&'static str, &'static str)],
    pub k6: K6Side,
}

impl Case {
    pub const fn counted(script: &'static str, exit: i32, iterations: u64, http_reqs: u64) -> Case {
        Case {
            script,
            exit,
            compare: Compare::Counted {
                iterations,
                http_reqs,
            },
            env: &[],
            k6: K6Side::Run,
        }
    }

    pub const fn timed(script: &'static str) -> Case {
        Case {
            script,
            exit: 0,
            compare: Compare::Timed,
            env: &[],
            k6: K6Side::Run,
        }
    }

    pub const fn exit_only(script: &'static str, exit: i32) -> Case {
        Case {
            script,
            exit,
            compare: Compare::ExitOnly,
            env: &[],
            k6: K6Side::Run,
        }
    }

    pub const fn with_env(self, env: &'static [(&'static str, &'static str)]) -> Case {
        Case { env, ..self }
    }

    pub const fn without_k6(
        self,
        reason: &'static str,
        checks: &'static [(&'static str, u64, u64)],
    ) -> Case {
        Case {
            k6: K6Side::Skip { reason, checks },
            ..self
        }
    }
}

/// Every script of the corpus (each one's header says what it covers).
///
/// | script | exit | compared |
/// |---|---|---|
/// | iteration-bounded ones | 0, 99 or 108 | exit, `iterations`, `http_reqs`, checks, thresholds |
/// | `tutorial_vus`, `tutorial_stages`, `scenarios_timed` | 0 | exit, check names and pass ratio, thresholds |
/// | `init_throws`, `syntax_error` | 107 | exit |
/// | `jslib_utils` | 0 | Volley only: exit, counts, its checks as listed, no failed threshold |
pub const CASES: &[Case] = &[
    Case::counted("hello.js", 0, 5, 5),
    Case::counted("custom_metrics.js", 0, 6, 6),
    Case::counted("vus_iterations.js", 0, 9, 9),
    // 10 requests per iteration.
    Case::counted("http_methods.js", 0, 2, 20),
    Case::counted("request_bodies.js", 0, 2, 8),
    Case::counted("json_response.js", 0, 3, 6),
    Case::counted("request_headers.js", 0, 4, 4),
    // 8 status codes and a 404 per iteration.
    Case::counted("status_codes.js", 0, 2, 18),
    Case::counted("response_fields.js", 0, 2, 4),
    // The timed-out request counts in http_reqs.
    Case::counted("request_timeout.js", 0, 2, 4),
    // One check always fails.
    Case::counted("groups_nested.js", 0, 3, 9),
    // 'flaky on odd iterations' passes 2, fails 2.
    Case::counted("check_tags.js", 0, 4, 4),
    Case::counted("request_tags.js", 0, 3, 15),
    Case::counted("sleep.js", 0, 3, 3),
    // Iterations that throw still count as complete.
    Case::counted("iteration_exceptions.js", 0, 8, 8),
    // k6 1.1.0 counts the aborted fourth iteration in `iterations`.
    Case::counted("test_abort.js", 108, 4, 4),
    Case::exit_only("init_throws.js", 107),
    Case::exit_only("syntax_error.js", 107),
    Case::counted("execution_context.js", 0, 6, 6),
    Case::counted("encoding.js", 0, 2, 2),
    Case::counted("crypto.js", 0, 2, 2),
    Case::counted("shared_array.js", 0, 6, 6),
    Case::counted("open_file.js", 0, 3, 3),
    // setup and teardown make one request each; their checks sit in the
    // groups `setup` and `teardown`.
    Case::counted("setup_teardown.js", 0, 4, 6),
    Case::counted("local_imports.js", 0, 3, 3),
    // k6 would fetch https://jslib.k6.io/k6-utils/1.4.0/index.js, and this
    // machine (like CI) has no internet access; so only Volley runs it. The
    // expected checks below are what k6 1.1.0 reported with the import
    // pointed at a local copy of that file.
    Case::counted("jslib_utils.js", 0, 5, 5).without_k6(
        "k6 fetches the jslib from the internet",
        &[
            ("::randomIntBetween in range", 5, 0),
            ("::randomItem picks an element", 5, 0),
            ("::randomString default charset", 5, 0),
            ("::randomString custom charset", 5, 0),
            ("::uuidv4 shape", 5, 0),
            ("::findBetween first match", 5, 0),
            ("::findBetween repeat", 5, 0),
            ("::findBetween no match is null", 5, 0),
        ],
    ),
    Case::timed("tutorial_vus.js"),
    Case::timed("tutorial_stages.js").with_env(&[("TOKEN", "test-token")]),
    Case::counted("thresholds_pass.js", 0, 6, 12),
    // http_req_failed and http_req_duration{name:slow} fail.
    Case::counted("thresholds_fail.js", 99, 4, 8),
    Case::counted("scenarios_iterations.js", 0, 11, 11),
    Case::timed("scenarios_timed.js"),
    Case::counted("console_env.js", 0, 2, 2).with_env(&[("GREETING", "hello")]),
    // 8 requests per iteration, 2 of them redirect hops.
    Case::counted("cookies.js", 0, 3, 24),
    // Every hop counts: 4 + 2 + 11 + 2 + 4 = 23 requests per iteration.
    Case::counted("redirects.js", 0, 2, 46),
    Case::counted("expected_statuses.js", 0, 2, 10),
    // 5 requests per iteration, the one that fails included.
    Case::counted("async_request.js", 0, 2, 10),
    Case::counted("html.js", 0, 1, 1),
    Case::counted("html_forms.js", 0, 1, 0),
    // The page (echoed), two form submissions and a link.
    Case::counted("submit_form.js", 0, 1, 4),
    Case::counted("web_crypto.js", 0, 1, 0),
    Case::counted("vu_tags.js", 0, 2, 8),
    Case::counted("exec_instance.js", 0, 9, 0),
    // 4 entries, one a chain of 2 redirects, then 2: 8 requests per iteration.
    Case::counted("batch.js", 0, 2, 16),
    Case::counted("uploads.js", 0, 2, 16),
    Case::counted("summary_full.js", 0, 5, 5),
    Case::counted("timers.js", 0, 2, 2),
    // Digest: the challenge and the answer are both requests.
    Case::counted("auth.js", 0, 2, 10),
    // The redirect's first hop is the answer (maxRedirects 1): 4 per iteration.
    Case::counted("hosts.js", 0, 2, 8),
    // Also the subject of `summary_exports_have_the_same_shape`.
    Case::counted("summary_shape.js", 0, 4, 4),
];

/// Fails when a script in the corpus has no row in [`CASES`] or a row names
/// a missing script.
pub fn assert_table_lists_every_script() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(SCRIPTS)
        .expect("tests/scripts/k6 is readable")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".js"))
        .collect();
    let in_table: BTreeSet<String> = CASES.iter().map(|c| c.script.to_owned()).collect();
    assert_eq!(
        on_disk, in_table,
        "every script in tests/scripts/k6 needs exactly one row in CASES"
    );
}
