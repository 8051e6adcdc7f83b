//! The fake API server's own semantics, checked through kube's client: the
//! controller tests are only as good as the fake is faithful to the parts
//! of the real API it imitates (optimistic concurrency, merge and apply
//! patches on the status subresource, watch events, Status errors).

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use volley::kube::crd::{LoadTest, LoadTestSpec, Phase};

use super::fake_api::{FakeApi, NAMESPACE};
use super::support::within;

fn api_error(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn status_replace_needs_the_current_resource_version() {
    let fake = FakeApi::start().await;
    let lts: Api<LoadTest> = Api::namespaced(fake.admin_client(), NAMESPACE);
    let created = lts
        .create(
            &PostParams::default(),
            &LoadTest::new("a", LoadTestSpec::inline("x: 1")),
        )
        .await
        .expect("created");
    assert_eq!(created.metadata.generation, Some(1));

    let mut first = created.clone();
    first.status = Some(Default::default());
    first.status.as_mut().expect("set").claimed_by = Some("one".into());
    let updated = lts
        .replace_status("a", &PostParams::default(), &first)
        .await
        .expect("first claim wins");
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(
        updated.metadata.generation,
        Some(1),
        "status writes keep the generation"
    );

    let mut second = created.clone();
    second.status = first.status.clone();
    second.status.as_mut().expect("set").claimed_by = Some("two".into());
    let err = api_error(
        lts.replace_status("a", &PostParams::default(), &second)
            .await
            .expect_err("stale resourceVersion"),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(err.is_conflict());

    second.metadata.resource_version = None;
    let err = api_error(
        lts.replace_status("a", &PostParams::default(), &second)
            .await
            .expect_err("no resourceVersion"),
    );
    assert_eq!(err.code, 422);
}

#[tokio::test]
async fn merge_and_apply_patches_touch_only_the_status() {
    let fake = FakeApi::start().await;
    let lts: Api<LoadTest> = Api::namespaced(fake.admin_client(), NAMESPACE);
    lts.create(
        &PostParams::default(),
        &LoadTest::new("b", LoadTestSpec::inline("x: 1")),
    )
    .await
    .expect("created");

    let patch = json!({"status": {"phase": "Running", "agents": 3}, "spec": {"plan": "changed"}});
    let after = lts
        .patch_status("b", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("merge patch");
    let status = after.status.clone().expect("status");
    assert_eq!(status.phase, Some(Phase::Running));
    assert_eq!(status.agents, Some(3));
    assert_eq!(
        after.spec.plan.as_deref(),
        Some("x: 1"),
        "status patches ignore spec"
    );

    // RFC 7386: null removes, other fields stay.
    let patch = json!({"status": {"agents": null, "reqPerSec": 12.5}});
    let after = lts
        .patch_status("b", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("merge patch");
    let status = after.status.clone().expect("status");
    assert_eq!((status.agents, status.req_per_sec), (None, Some(12.5)));
    assert_eq!(status.phase, Some(Phase::Running));

    // A write that changes nothing keeps the resourceVersion.
    let again = lts
        .patch_status("b", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("no-op patch");
    assert_eq!(
        again.metadata.resource_version,
        after.metadata.resource_version
    );

    let apply = json!({"apiVersion": "volley.dev/v1alpha1", "kind": "LoadTest",
                       "status": {"phase": "Passed"}});
    let after = lts
        .patch_status(
            "b",
            &PatchParams::apply("volley-test"),
            &Patch::Apply(&apply),
        )
        .await
        .expect("apply patch");
    assert_eq!(after.status.expect("status").phase, Some(Phase::Passed));

    let err = api_error(
        lts.patch_status(
            "b",
            &PatchParams::apply("volley-test"),
            &Patch::Apply(&json!({"status": {"phase": "Failed"}})),
        )
        .await
        .expect_err("apply without apiVersion and kind"),
    );
    assert_eq!(err.code, 400);
}

#[tokio::test]
async fn watch_streams_changes_and_deletion() {
    let fake = FakeApi::start().await;
    let lts: Api<LoadTest> = Api::namespaced(fake.admin_client(), NAMESPACE);
    let created = lts
        .create(
            &PostParams::default(),
            &LoadTest::new("c", LoadTestSpec::inline("x: 1")),
        )
        .await
        .expect("created");
    let rv = created.metadata.resource_version.clone().expect("rv");
    let stream = lts
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .expect("watch");
    futures::pin_mut!(stream);

    let patch = json!({"status": {"phase": "Claimed"}});
    lts.patch_status("c", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    fake.delete_loadtest(NAMESPACE, "c");

    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let event = within("a watch event", stream.next())
            .await
            .expect("stream open")
            .expect("event decodes");
        match event {
            WatchEvent::Modified(lt) => {
                assert_eq!(lt.status.expect("status").phase, Some(Phase::Claimed));
                kinds.push("MODIFIED");
            }
            WatchEvent::Deleted(_) => kinds.push("DELETED"),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds, ["MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn unknown_paths_and_missing_objects_are_404_status() {
    let fake = FakeApi::start().await;
    let lts: Api<LoadTest> = Api::namespaced(fake.admin_client(), NAMESPACE);
    let err = api_error(lts.get("nope").await.expect_err("missing"));
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert!(lts.get_opt("nope").await.expect("get_opt").is_none());

    fake.forbid("get", "loadtests");
    let err = api_error(lts.get("nope").await.expect_err("forbidden"));
    assert!(err.is_forbidden());
    assert!(
        err.message.contains("cannot get resource \"loadtests\""),
        "{}",
        err.message
    );
}
