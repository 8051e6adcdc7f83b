//! Bad plans, one per row: each must be rejected with a message that names
//! the exact field path (followed by `: `) and says what was wrong.

use super::{MemFiles, opts};
use crate::plan::{Format, parse};

const GET: &str = "flow: [{get: \"http://127.0.0.1:1/\"}]\n";

/// (plan text, field path, part of the message)
fn cases() -> Vec<(String, &'static str, &'static str)> {
    let with_get = |head: &str| format!("{head}{GET}");
    let scenario = |body: &str| format!("scenarios:\n  main: {body}\n{GET}");
    let flow = |steps: &str| format!("flow:\n{steps}");
    vec![
        // Cookies, redirects, expected statuses, hosts, compression.
        (
            flow("  - post: {url: \"http://127.0.0.1:1/\", body: x, compression: lzma}\n"),
            "flow[0].post.compression",
            "expected gzip, deflate, br, zstd, or a comma list of them",
        ),
        (
            flow("  - post: {url: \"http://127.0.0.1:1/\", body: x, form: {a: b}}\n"),
            "flow[0].post",
            "has more than one of `body`, `json`, `form` and `multipart`",
        ),
        // TLS, DNS, source addresses, proxies, system tags.
        (
            format!("tlsVersion: {{min: tls1.0, max: tls1.1}}\n{GET}"),
            "tlsVersion.max",
            "expected tls1.2 or tls1.3",
        ),
        (
            format!("tlsCipherSuites: [TLS_RSA_WITH_RC4_128_SHA]\n{GET}"),
            "tlsCipherSuites[0]",
            "CBC, RC4, 3DES and RSA key exchange suites are not",
        ),
        (
            format!("dns: {{select: nearest}}\n{GET}"),
            "dns.select",
            "expected first, random or roundRobin",
        ),
        (
            format!("localIPs: \"10.0.0.1-10.0.0\"\n{GET}"),
            "localIPs",
            "expected addresses, ranges a-b or CIDR blocks",
        ),
        (
            format!("proxy: socks5://proxy:1080\n{GET}"),
            "proxy",
            "https:// and socks5:// proxies are not supported",
        ),
        (
            format!("systemTags: [status, iter]\n{GET}"),
            "systemTags[1]",
            "one series per iteration",
        ),
        (
            flow("  - get: {url: \"http://127.0.0.1:1/\", compression: gzip}\n"),
            "flow[0].get.compression",
            "a request without a body",
        ),
        (
            with_get("hosts: {api.test: not-an-ip}\n"),
            "hosts.api.test",
            "expected an IP address or ip:port",
        ),
        (
            with_get("hosts: {\"api.test:99999\": 10.0.0.1}\n"),
            "hosts.api.test:99999",
            "name:port with a port from 1 to 65535",
        ),
        (
            with_get("maxRedirects: 500\n"),
            "maxRedirects",
            "got \"500\", expected a number of redirects from 0 to 100",
        ),
        (
            with_get("expectedStatuses: [{min: 500, max: 400}]\n"),
            "expectedStatuses[0]",
            "expected a status code from 100 to 599, or {min, max} with min <= max",
        ),
        (
            with_get("expectedStatuses: []\n"),
            "expectedStatuses",
            "is empty",
        ),
        (
            flow("  - get: {url: \"http://127.0.0.1:1/\", redirects: 101}\n"),
            "flow[0].get.redirects",
            "expected a number of redirects from 0 to 100",
        ),
        (
            flow("  - get: {url: \"http://127.0.0.1:1/\", capture: [{var: s, cookie: \"a=b\"}]}\n"),
            "flow[0].get.capture[0].cookie",
            "a cookie name",
        ),
        // Shapes and types.
        (
            with_get("vu: 3\n"),
            "vu",
            "unknown field \"vu\", expected one of",
        ),
        (
            with_get("vus: -5\n"),
            "vus",
            "got \"-5\", expected a non-negative integer",
        ),
        (
            with_get("vus: 1.5\n"),
            "vus",
            "got \"1.5\", expected a non-negative integer",
        ),
        (
            with_get("vus: \"ten\"\n"),
            "vus",
            "got \"ten\", expected a non-negative integer",
        ),
        (
            with_get("vus: [1]\n"),
            "vus",
            "got a list, expected a non-negative integer",
        ),
        (
            with_get("duration: 10x\n"),
            "duration",
            "got \"10x\", expected a duration like",
        ),
        (
            with_get("duration: -1s\n"),
            "duration",
            "expected a non-negative duration",
        ),
        (
            with_get("discardResponseBodies: maybe\n"),
            "discardResponseBodies",
            "got string \"maybe\", expected a boolean",
        ),
        (
            with_get("stages:\n  - {duration: 1s, target: 2}\n  - {duration: 1s, target: -5}\n"),
            "stages[1].target",
            "got \"-5\", expected a non-negative integer",
        ),
        (
            with_get("stages:\n  - {duration: 1s}\n"),
            "stages[0]",
            "missing field \"target\"",
        ),
        // Shortcuts.
        (
            with_get("vus: 0\nduration: 1s\n"),
            "vus",
            "got \"0\", expected at least 1",
        ),
        (
            with_get("duration: 0s\n"),
            "duration",
            "expected a positive duration",
        ),
        (
            with_get("iterations: 0\n"),
            "iterations",
            "got \"0\", expected at least 1",
        ),
        (
            with_get("iterations: 2\nvus: 3\n"),
            "iterations",
            "2 iterations cannot be shared by 3 VUs",
        ),
        (
            with_get("duration: 1s\nstages: [{duration: 1s, target: 1}]\n"),
            "stages",
            "cannot be used together with `duration`",
        ),
        (with_get("stages: []\n"), "stages", "is empty"),
        (
            with_get("stages: [{duration: 0s, target: 5}]\n"),
            "stages",
            "stages go nowhere",
        ),
        (
            with_get("vus: 0\nstages: [{duration: 1s, target: 0}]\n"),
            "stages",
            "VUs never rise above 0",
        ),
        (
            format!("duration: 1s\nscenarios:\n  main: {{executor: per-vu-iterations}}\n{GET}"),
            "duration",
            "cannot be used together with `scenarios`",
        ),
        ("vus: 1\n".to_string(), "flow", "is missing"),
        // Scenarios and executors.
        (format!("scenarios: {{}}\n{GET}"), "scenarios", "is empty"),
        (
            scenario("{executor: constant-vu, duration: 1s}"),
            "scenarios.main.executor",
            "unknown executor \"constant-vu\"; expected one of constant-vus, ramping-vus",
        ),
        (
            scenario("{duration: 1s}"),
            "scenarios.main",
            "missing field \"executor\"",
        ),
        (
            scenario("{executor: externally-controlled}"),
            "scenarios.main.executor",
            "removed in k6 v2.0.0",
        ),
        (
            scenario("{executor: constant-vus}"),
            "scenarios.main.duration",
            "is required by constant-vus",
        ),
        (
            scenario("{executor: constant-vus, duration: 1s, iterations: 3}"),
            "scenarios.main.iterations",
            "constant-vus does not take `iterations`",
        ),
        (
            scenario("{executor: per-vu-iterations, rate: 3}"),
            "scenarios.main.rate",
            "per-vu-iterations does not take `rate`",
        ),
        (
            scenario("{executor: ramping-vus}"),
            "scenarios.main.stages",
            "is required by ramping-vus",
        ),
        (
            scenario(
                "{executor: constant-arrival-rate, rate: 0, duration: 1s, preAllocatedVUs: 1}",
            ),
            "scenarios.main.rate",
            "expected a positive number of iterations",
        ),
        (
            scenario("{executor: constant-arrival-rate, rate: 5, duration: 1s}"),
            "scenarios.main.preAllocatedVUs",
            "is required by constant-arrival-rate",
        ),
        (
            scenario(
                "{executor: constant-arrival-rate, rate: 5, duration: 1s, preAllocatedVUs: 10, maxVUs: 5}",
            ),
            "scenarios.main.maxVUs",
            "5 is less than preAllocatedVUs (10)",
        ),
        (
            scenario(
                "{executor: constant-arrival-rate, rate: 5, duration: 1s, preAllocatedVUs: 0}",
            ),
            "scenarios.main.preAllocatedVUs",
            "expected at least 1 VU",
        ),
        (
            scenario(
                "{executor: constant-arrival-rate, rate: 5, duration: 1s, preAllocatedVUs: 1, timeUnit: 0s}",
            ),
            "scenarios.main.timeUnit",
            "expected a positive duration",
        ),
        (
            scenario(
                "{executor: ramping-arrival-rate, preAllocatedVUs: 1, stages: [{duration: 1s, target: 0}]}",
            ),
            "scenarios.main.stages",
            "rates never rise above 0",
        ),
        (
            scenario("{executor: shared-iterations, maxDuration: 0s}"),
            "scenarios.main.maxDuration",
            "expected a positive duration",
        ),
        (
            scenario("{executor: per-vu-iterations, vus: 0}"),
            "scenarios.main.vus",
            "expected at least 1",
        ),
        (
            scenario("{executor: per-vu-iterations, startTime: 1m30}"),
            "scenarios.main.startTime",
            "got \"1m30\", expected a duration",
        ),
        (
            "scenarios:\n  main: {executor: per-vu-iterations}\n".to_string(),
            "scenarios.main.flow",
            "is missing",
        ),
        (
            format!("scenarios:\n  \"a b\": {{executor: per-vu-iterations}}\n{GET}"),
            "scenarios.a b",
            "expected a scenario name of letters",
        ),
        // Flow steps.
        (
            "flow: []\n".to_string(),
            "flow",
            "is empty; a flow needs at least one step",
        ),
        (
            flow("  - {}\n"),
            "flow[0]",
            "is an empty step; expected one of request, get",
        ),
        (
            flow("  - requst: {url: \"http://x/\"}\n"),
            "flow[0].requst",
            "unknown field \"requst\", expected one of \"request\"",
        ),
        (
            flow("  - {get: \"http://x/\", sleep: 1s}\n"),
            "flow[0]",
            "has both `get` and `sleep`",
        ),
        (
            flow("  - sleep: 1\n"),
            "flow[0].sleep",
            "got 1, expected a duration with a unit like 1s",
        ),
        (
            flow("  - sleep: {min: 3s, max: 1s}\n"),
            "flow[0].sleep",
            "min (3s) is greater than max (1s)",
        ),
        (
            flow("  - group: {name: \"a::b\", flow: [{get: \"http://x/\"}]}\n"),
            "flow[0].group.name",
            "without \"::\"",
        ),
        (
            flow("  - group: {name: g, flow: []}\n"),
            "flow[0].group.flow",
            "is empty",
        ),
        // Requests.
        (
            flow("  - request: {method: \"GE T\", url: \"http://x/\"}\n"),
            "flow[0].request.method",
            "expected an HTTP method",
        ),
        (
            flow("  - request: {url: \"example.test/x\"}\n"),
            "flow[0].request.url",
            "expected an absolute http:// or https:// URL",
        ),
        (
            flow("  - request: {url: \"ftp${vu}\"}\n"),
            "flow[0].request.url",
            "expected an absolute http:// or https:// URL",
        ),
        (
            flow("  - request: {method: GET}\n"),
            "flow[0].request",
            "missing field \"url\"",
        ),
        (
            flow("  - get: {url: \"http://x/\", method: POST}\n"),
            "flow[0].get.method",
            "`get:` already sets the method",
        ),
        (
            flow("  - request: {url: \"http://x/\", body: a, json: {}}\n"),
            "flow[0].request",
            "has more than one of `body`, `json`, `form` and `multipart`",
        ),
        (
            flow("  - request: {url: \"http://x/\", headers: {\"Bad Name\": x}}\n"),
            "flow[0].request.headers.Bad Name",
            "expected a header name",
        ),
        (
            flow("  - request: {url: \"http://x/\", timeout: 0}\n"),
            "flow[0].request.timeout",
            "expected a positive duration",
        ),
        (
            flow("  - request: {url: \"http://x/\", tags: {name: x}}\n"),
            "flow[0].request.tags.name",
            "use the request's `name` field",
        ),
        (
            flow("  - request: {url: \"http://x/${vu\"}\n"),
            "flow[0].request.url",
            "unterminated \"${\" at character 10",
        ),
        (
            flow("  - request: {url: \"http://x/${tokn}\", capture: [{var: token, header: X}]}\n"),
            "flow[0].request.url",
            "unknown variable \"${tokn}\" (known: token)",
        ),
        (
            flow("  - request: {url: \"http://x/${env.NOPE}\"}\n"),
            "flow[0].request.url",
            "unknown env variable \"${env.NOPE}\"",
        ),
        (
            flow("  - request: {url: \"http://x/${data.user}\"}\n"),
            "flow[0].request.url",
            "needs a `data:` section",
        ),
        (
            flow("  - request: {url: \"http://x/${random(5,1)}\"}\n"),
            "flow[0].request.url",
            "must not exceed",
        ),
        (
            flow("  - request: {url: \"http://x/\", json: {a: [\"${nope}\"]}}\n"),
            "flow[0].request.json.a[0]",
            "unknown variable \"${nope}\"",
        ),
        // Checks and captures.
        (
            flow("  - request: {url: \"http://x/\", check: [{status: 99}]}\n"),
            "flow[0].request.check[0].status",
            "got \"99\", expected an HTTP status code",
        ),
        (
            flow("  - request: {url: \"http://x/\", check: [{status: []}]}\n"),
            "flow[0].request.check[0].status",
            "got an empty list",
        ),
        (
            flow("  - request: {url: \"http://x/\", check: [{status: 200, bodyContains: x}]}\n"),
            "flow[0].request.check[0]",
            "has both `status` and `bodyContains`",
        ),
        (
            flow("  - request: {url: \"http://x/\", check: [{name: x}]}\n"),
            "flow[0].request.check[0]",
            "has no condition",
        ),
        (
            flow("  - request: {url: \"http://x/\", check: [{json: {pointer: a/b}}]}\n"),
            "flow[0].request.check[0].json.pointer",
            "expected a JSON pointer",
        ),
        (
            flow("  - request: {url: \"http://x/\", check: [{header: {name: X}}]}\n"),
            "flow[0].request.check[0].header",
            "has a name but no `equals` or `matches`",
        ),
        (
            flow("  - request: {url: \"http://x/\", check: [{statuss: 200}]}\n"),
            "flow[0].request.check[0].statuss",
            "unknown field \"statuss\"",
        ),
        (
            flow("  - request: {url: \"http://x/\", capture: [{var: 1x, json: /a}]}\n"),
            "flow[0].request.capture[0].var",
            "expected a variable name",
        ),
        (
            flow("  - request: {url: \"http://x/\", capture: [{var: vu, json: /a}]}\n"),
            "flow[0].request.capture[0].var",
            "other than the placeholder words",
        ),
        (
            flow("  - request: {url: \"http://x/\", capture: [{var: a}]}\n"),
            "flow[0].request.capture[0]",
            "has no source",
        ),
        (
            flow("  - request: {url: \"http://x/\", capture: [{var: a, regex: \"id=(\"}]}\n"),
            "flow[0].request.capture[0].regex",
            "expected a valid regular expression (unclosed group)",
        ),
        // Options, thresholds, data.
        (
            with_get("timeout: 0s\n"),
            "timeout",
            "expected a positive duration",
        ),
        (
            with_get("userAgent: \"a\\nb\"\n"),
            "userAgent",
            "without control characters",
        ),
        (
            with_get("summaryTrendStats: [avg, p(101)]\n"),
            "summaryTrendStats[1]",
            "one of avg, min, med, max, count or p(N)",
        ),
        (
            with_get("tags: {scenario: x}\n"),
            "tags.scenario",
            "tag \"scenario\" is set by Volley itself",
        ),
        (
            with_get("thresholds: {http_req_duration: [\"p95<1\"]}\n"),
            "thresholds.http_req_duration[0]",
            "unknown aggregation \"p95\"",
        ),
        (
            with_get("thresholds: {http_req_failed: [\"p(95)<1\"]}\n"),
            "thresholds.http_req_failed[0]",
            "http_req_failed is a rate metric; its thresholds use rate",
        ),
        (
            with_get("thresholds: {http_req_durations: [\"avg<1\"]}\n"),
            "thresholds.http_req_durations[0]",
            "unknown metric \"http_req_durations\"",
        ),
        (
            with_get("thresholds: {checks: [{threshold: \"rate>0.9\", abortOnFial: true}]}\n"),
            "thresholds.checks[0].abortOnFial",
            "unknown field \"abortOnFial\"",
        ),
        (
            with_get("data: {file: nope.csv}\n"),
            "data.file",
            "cannot read \"nope.csv\": entity not found",
        ),
        (
            with_get("data: {file: users.csv, mode: unique}\n"),
            "data.mode",
            "unknown variant \"unique\", expected one of",
        ),
        (
            with_get("data: {file: empty.csv}\n"),
            "data.file",
            "has no rows",
        ),
        (
            with_get("env: {A: [1]}\n"),
            "env.A",
            "got a list, expected text",
        ),
        (
            with_get("headers: {}\n"),
            "headers",
            "unknown field \"headers\"",
        ),
    ]
}

#[test]
fn every_bad_plan_names_its_field() {
    let cases = cases();
    assert!(cases.len() >= 30, "the table keeps at least 30 cases");
    assert_rejected(&cases);
}

/// Asserts that every plan of `cases` is refused with a one-line message
/// naming its field path and containing the fragment.
pub(super) fn assert_rejected(cases: &[(String, &str, &str)]) {
    let files = MemFiles::with("/plans/empty.csv", "user\n");
    let mut failures = Vec::new();
    for (text, path, fragment) in cases {
        match parse(text, Format::Yaml, &opts(), &files) {
            Ok(_) => failures.push(format!("accepted:\n{text}")),
            Err(e) => {
                let msg = e.to_string();
                let names_path =
                    msg.starts_with(&format!("{path}: ")) || msg.contains(&format!(": {path}: "));
                if !names_path || !msg.contains(fragment) {
                    failures.push(format!(
                        "{text}\n  want path {path:?} and {fragment:?}\n  got {msg}"
                    ));
                }
                if !matches!(e, crate::plan::PlanError::Syntax { .. }) && msg.contains('\n') {
                    failures.push(format!("multi-line message for {path}: {msg}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
