//! The data directory through its public API, on real temporary
//! directories: round trips, crashes (torn records, leftovers), restarts,
//! pruning, hostile ids and concurrent appends.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::thread;

use serde_json::json;
use volley::fleet::store::{Store, StoreError, TestMeta, TestPhase};

fn meta(id: &str, submitted: u64) -> TestMeta {
    TestMeta {
        id: id.to_owned(),
        name: format!("plan of {id}"),
        origin: "agent-a".to_owned(),
        submitted_unix_ms: submitted,
        started_unix_ms: None,
        ended_unix_ms: None,
        phase: TestPhase::Pending,
        allocation: json!({"agent-a": {"segment": "0:1/2"}, "agent-b": {"segment": "1/2:1"}}),
        passed: None,
        agents: vec!["agent-a".to_owned(), "agent-b".to_owned()],
        deadline_unix_ms: None,
        note: None,
        partial: false,
    }
}

fn sealed(store: &Store, id: &str, submitted: u64) {
    store.create_test(&meta(id, submitted)).expect("created");
    store
        .seal(id, &json!({"id": id}), "summary text")
        .expect("sealed");
}

fn ids(metas: &[TestMeta]) -> Vec<&str> {
    metas.iter().map(|m| m.id.as_str()).collect()
}

fn intervals_path(dir: &Path, id: &str, agent: &str) -> std::path::PathBuf {
    dir.join("tests")
        .join(id)
        .join(format!("intervals-{agent}.bin"))
}

#[test]
fn meta_bundle_intervals_and_summary_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("opens");
    assert!(dir.path().join("tests").is_dir());

    let mut m = meta("t1", 1_000);
    store.create_test(&m).expect("created");
    assert_eq!(store.meta("t1").expect("readable"), m);

    m.phase = TestPhase::Running;
    m.started_unix_ms = Some(2_000);
    store.update_meta(&m).expect("updated");
    assert_eq!(store.meta("t1").expect("readable"), m);

    let bundle =
        json!({"plan": {"scenarios": {"main": {"executor": "constant-vus"}}}, "files": {}});
    assert_eq!(store.bundle("t1").expect("readable"), None);
    store.put_bundle("t1", &bundle).expect("stored");
    store.put_bundle("t1", &bundle).expect("a retry is fine");
    assert_eq!(store.bundle("t1").expect("readable"), Some(bundle));
    let err = store
        .put_bundle("t1", &json!({"other": true}))
        .expect_err("written once");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");

    let records: Vec<(u64, Vec<u8>)> =
        vec![(0, vec![1, 2, 3]), (1, Vec::new()), (5, vec![9; 5000])];
    for (seq, bytes) in &records {
        store
            .append_interval("t1", "agent-a", *seq, bytes)
            .expect("appended");
    }
    store
        .append_interval("t1", "10.0.0.7:7000", 3, b"other agent")
        .expect("any agent id gets its own file");
    assert_eq!(
        store.read_intervals("t1", "agent-a").expect("read"),
        records
    );
    assert_eq!(
        store.read_intervals("t1", "10.0.0.7:7000").expect("read"),
        vec![(3, b"other agent".to_vec())]
    );
    assert!(
        store
            .read_intervals("t1", "agent-b")
            .expect("read")
            .is_empty()
    );

    assert_eq!(store.summary("t1").expect("readable"), None);
    let summary = json!({"metrics": [{"name": "http_reqs", "count": 10}]});
    store
        .seal("t1", &summary, "     http_reqs: 10\n")
        .expect("sealed");
    store
        .seal("t1", &summary, "     http_reqs: 10\n")
        .expect("a retried seal is fine");
    assert_eq!(
        store.summary("t1").expect("readable"),
        Some((summary, "     http_reqs: 10\n".to_owned()))
    );
    let err = store
        .seal("t1", &json!({}), "different")
        .expect_err("sealed once");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");

    store.drop_intervals("t1").expect("dropped after sealing");
    assert!(
        store
            .read_intervals("t1", "agent-a")
            .expect("read")
            .is_empty()
    );
    assert!(!intervals_path(dir.path(), "t1", "agent-a").exists());
    assert!(store.summary("t1").expect("readable").is_some());
}

#[test]
fn operations_on_unknown_or_duplicate_tests_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("opens");
    store.create_test(&meta("t1", 1)).expect("created");
    let err = store.create_test(&meta("t1", 2)).expect_err("exists");
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert_eq!(store.meta("t1").expect("readable").submitted_unix_ms, 1);

    let err = store.update_meta(&meta("nope", 1)).expect_err("unknown");
    assert!(matches!(err, StoreError::UnknownTest { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
    let err = store
        .append_interval("nope", "a", 0, b"x")
        .expect_err("unknown");
    assert!(matches!(err, StoreError::UnknownTest { .. }), "{err}");
    assert!(!dir.path().join("tests/nope").exists());

    let err = store.drop_intervals("t1").expect_err("not sealed yet");
    assert!(matches!(err, StoreError::NotSealed { .. }), "{err}");
    let err = store
        .append_interval("t1", "", 0, b"x")
        .expect_err("empty agent");
    assert!(matches!(err, StoreError::InvalidAgent { .. }), "{err}");
}

#[test]
fn a_torn_last_record_is_ignored_then_cut_off_on_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("opens");
    store.create_test(&meta("t1", 1)).expect("created");
    store.append_interval("t1", "a", 0, b"zero").expect("ok");
    store.append_interval("t1", "a", 1, b"one").expect("ok");

    // A crash in the middle of the third record: a header and half a payload.
    let path = intervals_path(dir.path(), "t1", "a");
    let whole_len = fs::metadata(&path).expect("exists").len();
    let mut file = OpenOptions::new().append(true).open(&path).expect("opens");
    file.write_all(&100u32.to_be_bytes()).expect("write");
    file.write_all(&2u64.to_be_bytes()).expect("write");
    file.write_all(&[7; 40]).expect("write");
    drop(file);

    let expected = vec![(0, b"zero".to_vec()), (1, b"one".to_vec())];
    assert_eq!(
        store.read_intervals("t1", "a").expect("not an error"),
        expected
    );

    drop(store);
    let store = Store::open(dir.path()).expect("reopens");
    assert_eq!(fs::metadata(&path).expect("exists").len(), whole_len);
    store.append_interval("t1", "a", 2, b"two").expect("ok");
    let mut expected = expected;
    expected.push((2, b"two".to_vec()));
    assert_eq!(store.read_intervals("t1", "a").expect("read"), expected);
}

#[test]
fn history_survives_a_restart_newest_first_and_skips_broken_tests() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = Store::open(dir.path()).expect("opens");
        store.create_test(&meta("old", 1_000)).expect("created");
        store.create_test(&meta("newest", 3_000)).expect("created");
        store.create_test(&meta("middle", 2_000)).expect("created");
        store
            .seal("old", &json!({"ok": true}), "text")
            .expect("sealed");
    }
    let tests = dir.path().join("tests");
    // Damage of every kind a crash or a person can leave behind.
    fs::create_dir(tests.join("broken")).expect("mkdir");
    fs::write(tests.join("broken/meta.json"), b"{ not json").expect("write");
    fs::create_dir(tests.join("no-meta")).expect("mkdir");
    fs::create_dir(tests.join("moved")).expect("mkdir");
    fs::write(
        tests.join("moved/meta.json"),
        serde_json::to_vec(&meta("elsewhere", 5)).expect("json"),
    )
    .expect("write");
    fs::write(tests.join("stray-file"), b"x").expect("write");
    fs::create_dir(tests.join("bad name")).expect("mkdir");
    fs::create_dir(tests.join(".tmp-old-1-1")).expect("mkdir (a half-pruned test)");
    fs::write(tests.join("middle/.tmp-meta.json-1-2"), b"half").expect("write");

    let store = Store::open(dir.path()).expect("reopens despite the damage");
    let history = store.list().expect("lists");
    assert_eq!(ids(&history), ["newest", "middle", "old"]);
    assert_eq!(
        history[2],
        meta("old", 1_000),
        "a sealed test is left as it is"
    );
    // The process that ran the other two is gone: they cannot be pending.
    for unfinished in &history[..2] {
        assert_eq!(unfinished.phase, TestPhase::Interrupted, "{unfinished:?}");
        let note = unfinished.note.as_deref().unwrap_or_default();
        assert!(note.contains("while the test was pending"), "{note}");
    }
    assert_eq!(
        store.summary("old").expect("readable"),
        Some((json!({"ok": true}), "text".to_owned()))
    );
    assert!(!tests.join(".tmp-old-1-1").exists(), "leftovers removed");
    assert!(!tests.join("middle/.tmp-meta.json-1-2").exists());

    let err = store.meta("broken").expect_err("bad JSON");
    assert!(matches!(err, StoreError::Json { .. }), "{err}");
    assert!(err.to_string().contains("broken/meta.json"), "{err}");
    let err = store.meta("moved").expect_err("names another test");
    assert!(matches!(err, StoreError::IdMismatch { .. }), "{err}");

    // A create that crashed before writing its record can be redone.
    store
        .create_test(&meta("no-meta", 4_000))
        .expect("finished");
    assert_eq!(store.list().expect("lists")[0].id, "no-meta");
}

#[test]
fn prune_keeps_the_newest_finished_tests_and_every_unfinished_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("opens");
    for (i, id) in ["s1", "s2", "s3", "s4"].iter().enumerate() {
        sealed(&store, id, 100 * (i as u64 + 1));
    }
    // Older than every sealed one, but still running: never pruned.
    let mut running = meta("running", 50);
    running.phase = TestPhase::Running;
    store.create_test(&running).expect("created");
    // Ended in error without a summary: finished all the same.
    let mut errored = meta("errored", 10);
    errored.phase = TestPhase::Error;
    store.create_test(&errored).expect("created");

    let removed = store.prune(2).expect("pruned");
    assert_eq!(removed, ["s2", "s1", "errored"]);
    assert_eq!(ids(&store.list().expect("lists")), ["s4", "s3", "running"]);
    assert!(!dir.path().join("tests/s1").exists());
    let names: Vec<String> = fs::read_dir(dir.path().join("tests"))
        .expect("listable")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "nothing left aside: {names:?}");

    assert!(store.prune(5).expect("nothing to do").is_empty());
    assert_eq!(store.prune(0).expect("pruned"), ["s4", "s3"]);
    assert_eq!(ids(&store.list().expect("lists")), ["running"]);
}

#[test]
fn path_traversal_is_refused_before_touching_the_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let store = Store::open(&data).expect("opens");
    fs::write(dir.path().join("meta.json"), b"{}").expect("a file outside the store");

    for id in [
        "..",
        ".",
        "../..",
        "../data",
        "a/../../x",
        "/etc",
        "",
        "x\0y",
        "a b",
    ] {
        let err = store.create_test(&meta(id, 1)).expect_err(id);
        assert!(matches!(err, StoreError::InvalidId { .. }), "{id:?}: {err}");
        assert!(err.to_string().contains(&format!("{id:?}")), "{err}");
        for result in [
            store.meta(id).map(drop),
            store.put_bundle(id, &json!({})),
            store.append_interval(id, "a", 0, b"x"),
            store.read_intervals(id, "a").map(drop),
            store.seal(id, &json!({}), ""),
            store.summary(id).map(drop),
            store.drop_intervals(id),
        ] {
            let err = result.expect_err(id);
            assert!(matches!(err, StoreError::InvalidId { .. }), "{id:?}: {err}");
        }
    }
    assert_eq!(
        fs::read(dir.path().join("meta.json")).expect("untouched"),
        b"{}"
    );
    assert_eq!(
        fs::read_dir(data.join("tests")).expect("listable").count(),
        0
    );

    // Agent ids are escaped into one file name inside the test directory.
    store.create_test(&meta("t1", 1)).expect("created");
    store
        .append_interval("t1", "../../escape", 0, b"x")
        .expect("escaped, not refused");
    let files: Vec<String> = fs::read_dir(data.join("tests/t1"))
        .expect("listable")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("intervals-"))
        .collect();
    assert_eq!(files, ["intervals-..%2F..%2Fescape.bin"]);
    assert!(!dir.path().join("escape.bin").exists());
}

#[test]
fn two_threads_append_to_different_agents_without_mixing_records() {
    const RECORDS: u64 = 200;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("opens");
    store.create_test(&meta("t1", 1)).expect("created");

    let payload = |agent: &str, seq: u64| {
        format!("{agent}:{seq}:{}", "x".repeat(seq as usize % 97)).into_bytes()
    };
    thread::scope(|scope| {
        for agent in ["agent-a", "agent-b"] {
            let store = &store;
            scope.spawn(move || {
                for seq in 0..RECORDS {
                    store
                        .append_interval("t1", agent, seq, &payload(agent, seq))
                        .expect("appended");
                }
            });
        }
    });

    for agent in ["agent-a", "agent-b"] {
        let read = store.read_intervals("t1", agent).expect("read");
        let expected: Vec<(u64, Vec<u8>)> = (0..RECORDS).map(|s| (s, payload(agent, s))).collect();
        assert_eq!(read, expected, "{agent}");
    }
}

#[test]
fn tests_left_under_way_by_a_crash_are_interrupted_and_a_late_seal_replaces_the_mark() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = Store::open(dir.path()).expect("opens");
        let mut running = meta("running", 1_000);
        running.phase = TestPhase::Running;
        store.create_test(&running).expect("created");
        // The process dies here (no seal, no update).
    }
    let store = Store::open(dir.path()).expect("reopens");
    let after = store.meta("running").expect("kept");
    assert_eq!(after.phase, TestPhase::Interrupted);
    assert!(
        after
            .note
            .as_deref()
            .is_some_and(|n| n.contains("while the test was running")),
        "{after:?}"
    );
    // The successor that sealed it tells this agent later: the verdict wins.
    let mut verdict = meta("running", 1_000);
    verdict.phase = TestPhase::Passed;
    verdict.passed = Some(true);
    store.update_meta(&verdict).expect("updated");
    store
        .seal("running", &json!({"ok": true}), "text")
        .expect("sealed");
    drop(store);
    let store = Store::open(dir.path()).expect("reopens again");
    assert_eq!(store.meta("running").expect("kept"), verdict);
}

#[test]
fn overdue_tests_whose_coordinator_was_lost_are_interrupted_unless_still_running_here() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("opens");
    let under_way = |id: &str, deadline: Option<u64>| {
        let mut m = meta(id, 1_000);
        m.phase = TestPhase::Running;
        m.deadline_unix_ms = deadline;
        store.create_test(&m).expect("created");
    };
    under_way("overdue", Some(5_000));
    under_way("ours", Some(5_000));
    under_way("not-yet", Some(50_000));
    under_way("no-deadline", None);
    let mut done = meta("done", 1_000);
    done.phase = TestPhase::Failed;
    done.deadline_unix_ms = Some(5_000);
    store.create_test(&done).expect("created");

    let expired = store.expire_overdue(10_000, |id| id == "ours");
    assert_eq!(expired, ["overdue"]);
    let phase = |id: &str| store.meta(id).expect("kept").phase;
    assert_eq!(phase("overdue"), TestPhase::Interrupted);
    assert_eq!(
        phase("ours"),
        TestPhase::Running,
        "still running in this process"
    );
    assert_eq!(phase("not-yet"), TestPhase::Running);
    assert_eq!(phase("no-deadline"), TestPhase::Running);
    assert_eq!(
        phase("done"),
        TestPhase::Failed,
        "a verdict is never replaced"
    );
    let note = store
        .meta("overdue")
        .expect("kept")
        .note
        .unwrap_or_default();
    assert!(
        note.contains("no sealed result reached this agent"),
        "{note}"
    );
    assert!(
        store
            .expire_overdue(10_000, |_| false)
            .contains(&"ours".to_owned())
    );
}

#[test]
fn the_data_directory_is_private_to_the_agent() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let store = Store::open(dir.path()).expect("opens");
    store.create_test(&meta("t", 1)).expect("created");
    store
        .put_bundle("t", &json!({"plan": "x"}))
        .expect("bundle");
    store
        .append_interval("t", "agent-a", 0, b"snapshot")
        .expect("appended");
    store.seal("t", &json!({}), "text").expect("sealed");
    let mode = |p: &Path| fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(
        mode(dir.path()),
        0o700,
        "an existing directory is made private"
    );
    assert_eq!(mode(&dir.path().join("tests")), 0o700);
    assert_eq!(mode(&dir.path().join("tests/t")), 0o700);
    for entry in fs::read_dir(dir.path().join("tests/t")).expect("listable") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}
