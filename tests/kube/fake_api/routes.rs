//! The fake API server's request handling: routing, RBAC refusals, the
//! LoadTest verbs with the status subresource, and watches.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::wire::{
    Failure, event_line, json_response, not_found, parse_query, parse_selector, status_error,
};
use super::{AGENT_AUTHORIZATION, Body, Inner, LT_API_VERSION, Recorded, State, lock};

pub(super) async fn handle(inner: &Inner, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let as_agent = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(AGENT_AUTHORIZATION);
    let index = {
        let mut st = lock(inner);
        st.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: req.uri().query().unwrap_or("").to_string(),
            content_type: content_type.clone(),
            status: 0,
            grant: None,
            name: None,
            as_agent,
        });
        st.requests.len() - 1
    };
    let call = Call {
        index,
        as_agent,
        method,
        path,
        query,
        content_type,
    };
    let response = serve(inner, req, call).await;
    lock(inner).requests[index].status = response.status().as_u16();
    response
}

/// One request as routing sees it.
struct Call {
    /// Its place in the recorded requests.
    index: usize,
    /// Sent with the agent's credentials: the RBAC rules apply.
    as_agent: bool,
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    content_type: Option<String>,
}

async fn serve(inner: &Inner, req: Request<Incoming>, call: Call) -> Response<Body> {
    let Call {
        index,
        as_agent,
        method,
        path,
        query,
        content_type,
    } = call;
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return status_error(400, "BadRequest", &format!("reading body: {e}")),
    };

    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let route = match (segments.as_slice(), &method) {
        (["api", "v1", "nodes", name], &Method::GET) => Route::Node(name.to_string()),
        (["api", "v1", "namespaces", ns, "pods"], &Method::GET) if !watching => {
            Route::Pods(ns.to_string())
        }
        (["api", "v1", "namespaces", ns, "configmaps", name], &Method::GET) => {
            Route::ConfigMap(ns.to_string(), name.to_string())
        }
        (["api", "v1", "namespaces", ns, "secrets", name], &Method::GET) => {
            Route::Secret(ns.to_string(), name.to_string())
        }
        (["apis", "events.k8s.io", "v1", "namespaces", ns, "events"], &Method::POST) => {
            Route::Events(ns.to_string(), None)
        }
        (
            [
                "apis",
                "events.k8s.io",
                "v1",
                "namespaces",
                ns,
                "events",
                name,
            ],
            &Method::PATCH,
        ) => Route::Events(ns.to_string(), Some(name.to_string())),
        (
            [
                "apis",
                "volley.dev",
                "v1alpha1",
                "namespaces",
                ns,
                "loadtests",
            ],
            m,
        ) => Route::LoadTests(ns.to_string(), m.clone(), watching),
        (
            [
                "apis",
                "volley.dev",
                "v1alpha1",
                "namespaces",
                ns,
                "loadtests",
                name,
            ],
            m,
        ) => Route::LoadTest(ns.to_string(), name.to_string(), m.clone(), false),
        (
            [
                "apis",
                "volley.dev",
                "v1alpha1",
                "namespaces",
                ns,
                "loadtests",
                name,
                "status",
            ],
            m,
        ) => Route::LoadTest(ns.to_string(), name.to_string(), m.clone(), true),
        _ => {
            return status_error(
                404,
                "NotFound",
                "the server could not find the requested resource",
            );
        }
    };

    let (verb, resource) = route.verb_and_resource();
    let group = route.group();
    {
        let mut st = lock(inner);
        st.requests[index].grant =
            Some((group.to_string(), resource.to_string(), verb.to_string()));
        st.requests[index].name = route.name().map(str::to_string);
    }
    if let Some(resp) = forbidden(inner, verb, resource, &route, as_agent) {
        return resp;
    }
    if let Route::LoadTest(_, _, Method::PUT, true) = &route {
        let gate = lock(inner).status_put_gate.clone();
        if let Some(gate) = gate {
            // Bounded: a test that expected a second claim gets a clear
            // assertion failure later, not a hang.
            let _ = tokio::time::timeout(Duration::from_secs(10), gate.wait()).await;
            lock(inner).status_put_gate = None;
        }
    }

    let ctx = Ctx {
        inner,
        query: &query,
        content_type: content_type.as_deref(),
        body: &body,
    };
    match route {
        Route::Node(name) => {
            let st = lock(inner);
            match st.nodes.get(&name) {
                Some(v) => json_response(200, v),
                None => not_found("nodes", "", &name),
            }
        }
        Route::Pods(ns) => list_pods(&lock(inner), &ns, &query),
        Route::ConfigMap(ns, name) => {
            let st = lock(inner);
            match st.configmaps.get(&(ns, name.clone())) {
                Some(v) => json_response(200, v),
                None => not_found("configmaps", "", &name),
            }
        }
        Route::Secret(ns, name) => {
            let st = lock(inner);
            match st.secrets.get(&(ns, name.clone())) {
                Some(v) => json_response(200, v),
                None => not_found("secrets", "", &name),
            }
        }
        Route::Events(ns, name) => event(ctx, &ns, name.as_deref()),
        Route::LoadTests(ns, m, watch) => loadtests(ctx, &ns, &m, watch),
        Route::LoadTest(ns, name, m, status) => loadtest(ctx, &ns, &name, &m, status),
    }
}

enum Route {
    Node(String),
    Pods(String),
    ConfigMap(String, String),
    Secret(String, String),
    /// `events.k8s.io/v1` Events: create (no name) or patch one.
    Events(String, Option<String>),
    LoadTests(String, Method, bool),
    LoadTest(String, String, Method, bool),
}

impl Route {
    fn verb_and_resource(&self) -> (&'static str, &'static str) {
        let verb_of = |m: &Method| match *m {
            Method::GET => "get",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "unknown",
        };
        match self {
            Route::Node(_) => ("get", "nodes"),
            Route::Pods(_) => ("list", "pods"),
            Route::ConfigMap(..) => ("get", "configmaps"),
            Route::Secret(..) => ("get", "secrets"),
            Route::Events(_, None) => ("create", "events"),
            Route::Events(_, Some(_)) => ("patch", "events"),
            Route::LoadTests(_, m, watch) => match (m, watch) {
                (&Method::GET, true) => ("watch", "loadtests"),
                (&Method::GET, false) => ("list", "loadtests"),
                (m, _) => (verb_of(m), "loadtests"),
            },
            Route::LoadTest(_, _, m, false) => (verb_of(m), "loadtests"),
            Route::LoadTest(_, _, m, true) => (verb_of(m), "loadtests/status"),
        }
    }

    /// The API group of the resource (`""` for core).
    fn group(&self) -> &'static str {
        match self {
            Route::Node(_) | Route::Pods(_) | Route::ConfigMap(..) | Route::Secret(..) => "",
            Route::Events(..) => "events.k8s.io",
            Route::LoadTests(..) | Route::LoadTest(..) => "volley.dev",
        }
    }

    /// The one object the call is about, as RBAC's `resourceNames` match
    /// it; `None` for lists, watches and creates.
    fn name(&self) -> Option<&str> {
        match self {
            Route::Node(name)
            | Route::ConfigMap(_, name)
            | Route::Secret(_, name)
            | Route::LoadTest(_, name, ..) => Some(name),
            Route::Events(_, name) => name.as_deref(),
            Route::Pods(_) | Route::LoadTests(..) => None,
        }
    }

    fn namespace(&self) -> Option<&str> {
        match self {
            Route::Node(_) => None,
            Route::Pods(ns)
            | Route::ConfigMap(ns, _)
            | Route::Secret(ns, _)
            | Route::Events(ns, _)
            | Route::LoadTests(ns, ..)
            | Route::LoadTest(ns, ..) => Some(ns),
        }
    }
}

/// 403 for a call [`FakeApi::forbid`] refuses, or one the agent's RBAC
/// rules do not grant (requests with the agent's credentials only).
fn forbidden(
    inner: &Inner,
    verb: &str,
    resource: &str,
    route: &Route,
    as_agent: bool,
) -> Option<Response<Body>> {
    let st = lock(inner);
    let refused = st
        .forbidden
        .iter()
        .any(|(v, r)| (v == "*" || v == verb) && r == resource);
    let granted = !as_agent
        || st.rbac.as_ref().is_none_or(|rbac| {
            rbac.allows(
                route.group(),
                resource,
                verb,
                route.namespace(),
                route.name(),
            )
        });
    if !refused && granted {
        return None;
    }
    let (base, sub) = resource.split_once('/').unwrap_or((resource, ""));
    let group = match base {
        "loadtests" => "volley.dev",
        "events" => "events.k8s.io",
        _ => "",
    };
    let scope = match route.namespace() {
        Some(ns) => format!(" in the namespace \"{ns}\""),
        None => " at the cluster scope".to_string(),
    };
    let sub = if sub.is_empty() {
        String::new()
    } else {
        format!("/{sub}")
    };
    let message = format!(
        "{base}{} is forbidden: User \"system:serviceaccount:volley:volley-agent\" cannot {verb} \
         resource \"{base}{sub}\" in API group \"{group}\"{scope}",
        if group.is_empty() {
            String::new()
        } else {
            format!(".{group}")
        }
    );
    Some(status_error(403, "Forbidden", &message))
}

struct Ctx<'a> {
    inner: &'a Inner,
    query: &'a BTreeMap<String, String>,
    content_type: Option<&'a str>,
    body: &'a Bytes,
}

fn list_pods(st: &State, ns: &str, query: &BTreeMap<String, String>) -> Response<Body> {
    let selector = match parse_selector(query.get("labelSelector").map_or("", String::as_str)) {
        Ok(s) => s,
        Err(msg) => return status_error(400, "BadRequest", &msg),
    };
    let items: Vec<Value> = st
        .pods
        .iter()
        .filter(|((pod_ns, _), pod)| pod_ns == ns && selector.iter().all(|r| r.matches(pod)))
        .map(|(_, pod)| pod.clone())
        .collect();
    json_response(
        200,
        &json!({
            "apiVersion": "v1",
            "kind": "PodList",
            "metadata": {"resourceVersion": st.rv.to_string()},
            "items": items,
        }),
    )
}

/// Creates an Event (`name` None) or merge-patches one, as the real server
/// stores them: a patch of an Event that does not exist is 404.
fn event(ctx: Ctx<'_>, ns: &str, name: Option<&str>) -> Response<Body> {
    let body = match serde_json::from_slice::<Value>(ctx.body) {
        Ok(v) => v,
        Err(e) => return status_error(400, "BadRequest", &format!("decoding body: {e}")),
    };
    let mut st = lock(ctx.inner);
    match name {
        None => {
            let Some(name) = body["metadata"]["name"].as_str().map(str::to_string) else {
                return status_error(422, "Invalid", "metadata.name: Required value");
            };
            if st
                .events
                .iter()
                .any(|(n, e)| n == ns && e["metadata"]["name"] == name)
            {
                return status_error(
                    409,
                    "AlreadyExists",
                    &format!("events.events.k8s.io \"{name}\" already exists"),
                );
            }
            let event = st.stamp(body, "events.k8s.io/v1", "Event", Some(ns));
            st.events.push((ns.to_string(), event.clone()));
            json_response(201, &event)
        }
        Some(name) => {
            let Some((_, stored)) = st
                .events
                .iter_mut()
                .find(|(n, e)| n == ns && e["metadata"]["name"] == name)
            else {
                return not_found("events", "events.k8s.io", name);
            };
            merge(stored, &body);
            json_response(200, stored)
        }
    }
}

fn loadtests(ctx: Ctx<'_>, ns: &str, method: &Method, watching: bool) -> Response<Body> {
    match (method, watching) {
        (&Method::GET, true) => watch_loadtests(ctx, ns),
        (&Method::GET, false) => {
            let st = lock(ctx.inner);
            let items: Vec<Value> = st
                .loadtests
                .iter()
                .filter(|((lt_ns, _), _)| lt_ns == ns)
                .map(|(_, v)| v.clone())
                .collect();
            json_response(
                200,
                &json!({
                    "apiVersion": LT_API_VERSION,
                    "kind": "LoadTestList",
                    "metadata": {"resourceVersion": st.rv.to_string()},
                    "items": items,
                }),
            )
        }
        (&Method::POST, _) => {
            let obj = match serde_json::from_slice::<Value>(ctx.body) {
                Ok(v) => v,
                Err(e) => return status_error(400, "BadRequest", &format!("decoding body: {e}")),
            };
            let mut st = lock(ctx.inner);
            match st.create_loadtest(&ctx.inner.events, ns, obj) {
                Ok(v) => json_response(201, &v),
                Err(failure) => failure.response(),
            }
        }
        _ => status_error(405, "MethodNotAllowed", "method not allowed on loadtests"),
    }
}

fn loadtest(ctx: Ctx<'_>, ns: &str, name: &str, method: &Method, status: bool) -> Response<Body> {
    let key = (ns.to_string(), name.to_string());
    let mut st = lock(ctx.inner);
    let Some(current) = st.loadtests.get(&key).cloned() else {
        return not_found("loadtests", "volley.dev", name);
    };
    let events = &ctx.inner.events;
    match *method {
        Method::GET => json_response(200, &current),
        Method::DELETE => {
            if let Some(resp) = check_preconditions(&current, ctx.body, name) {
                return resp;
            }
            match st.delete_loadtest(events, ns, name) {
                Some(v) => json_response(200, &v),
                None => not_found("loadtests", "volley.dev", name),
            }
        }
        Method::PUT => {
            let new = match serde_json::from_slice::<Value>(ctx.body) {
                Ok(v) => v,
                Err(e) => return status_error(400, "BadRequest", &format!("decoding body: {e}")),
            };
            let sent_rv = new["metadata"]["resourceVersion"].as_str().unwrap_or("");
            if sent_rv.is_empty() {
                return status_error(
                    422,
                    "Invalid",
                    &format!(
                        "LoadTest.volley.dev \"{name}\" is invalid: metadata.resourceVersion: \
                         Invalid value: 0x0: must be specified for an update"
                    ),
                );
            }
            if let Some(resp) = check_rv(&current, sent_rv, name) {
                return resp;
            }
            let merged = take_part(&current, &new, status);
            json_response(200, &st.write_loadtest(events, key, merged))
        }
        Method::PATCH => {
            let patch = match parse_patch(ctx.content_type, ctx.query, ctx.body) {
                Ok(p) => p,
                Err(failure) => return failure.response(),
            };
            if let Some(sent_rv) = patch["metadata"]["resourceVersion"].as_str()
                && let Some(resp) = check_rv(&current, sent_rv, name)
            {
                return resp;
            }
            let mut patched = current.clone();
            merge(&mut patched, &patch);
            let merged = take_part(&current, &patched, status);
            json_response(200, &st.write_loadtest(events, key, merged))
        }
        _ => status_error(405, "MethodNotAllowed", "method not allowed on a loadtest"),
    }
}

/// A delete's `DeleteOptions.preconditions` (uid, resourceVersion): 409
/// Conflict when the object is not the one they name.
fn check_preconditions(current: &Value, body: &Bytes, name: &str) -> Option<Response<Body>> {
    if body.is_empty() {
        return None;
    }
    let options: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Some(status_error(
                400,
                "BadRequest",
                &format!("decoding DeleteOptions: {e}"),
            ));
        }
    };
    let pre = &options["preconditions"];
    for (field, meta) in [("uid", "uid"), ("resourceVersion", "resourceVersion")] {
        if let Some(want) = pre[field].as_str() {
            let have = current["metadata"][meta].as_str().unwrap_or("");
            if want != have {
                return Some(status_error(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on loadtests.volley.dev \"{name}\": \
                         Precondition failed: {field} in precondition: {want}, {field} in object \
                         meta: {have}"
                    ),
                ));
            }
        }
    }
    None
}

fn check_rv(current: &Value, sent_rv: &str, name: &str) -> Option<Response<Body>> {
    let current_rv = current["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("");
    (sent_rv != current_rv).then(|| {
        status_error(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on loadtests.volley.dev \"{name}\": the object has \
                 been modified; please apply your changes to the latest version and try again"
            ),
        )
    })
}

/// The object after a write: the status subresource takes only `status`
/// from `new`, the main resource everything but `status`.
fn take_part(current: &Value, new: &Value, status: bool) -> Value {
    let mut out = current.clone();
    if status {
        match new.get("status") {
            Some(s) if !s.is_null() => out["status"] = s.clone(),
            _ => {
                if let Some(map) = out.as_object_mut() {
                    map.remove("status");
                }
            }
        }
    } else {
        out["spec"] = new["spec"].clone();
        for field in ["labels", "annotations", "finalizers"] {
            match new["metadata"].get(field) {
                Some(v) if !v.is_null() => out["metadata"][field] = v.clone(),
                _ => {
                    if let Some(m) = out["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
    }
    out
}

fn parse_patch(
    content_type: Option<&str>,
    query: &BTreeMap<String, String>,
    body: &Bytes,
) -> Result<Value, Failure> {
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    match media {
        "application/merge-patch+json" => serde_json::from_slice(body)
            .map_err(|e| Failure::new(400, "BadRequest", &format!("decoding merge patch: {e}"))),
        "application/apply-patch+yaml" => {
            if query.get("fieldManager").is_none_or(|m| m.is_empty()) {
                return Err(Failure::new(
                    400,
                    "BadRequest",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: \
                     is required for apply patch",
                ));
            }
            let v: Value = serde_yaml_ng::from_slice(body).map_err(|e| {
                Failure::new(400, "BadRequest", &format!("decoding apply patch: {e}"))
            })?;
            let api_version = v["apiVersion"].as_str().unwrap_or("");
            let kind = v["kind"].as_str().unwrap_or("");
            if api_version != LT_API_VERSION || kind != "LoadTest" {
                return Err(Failure::new(
                    400,
                    "BadRequest",
                    &format!("invalid object type: {api_version}, Kind={kind}"),
                ));
            }
            Ok(v)
        }
        other => Err(Failure::new(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
            ),
        )),
    }
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let map = target.as_object_mut().expect("just made an object");
    for (k, v) in fields {
        if v.is_null() {
            map.remove(k);
        } else {
            merge(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn watch_loadtests(ctx: Ctx<'_>, ns: &str) -> Response<Body> {
    let since: u64 = match ctx.query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => 0,
        Some(rv) => match rv.parse() {
            Ok(n) => n,
            Err(_) => {
                return status_error(400, "BadRequest", &format!("bad resourceVersion {rv:?}"));
            }
        },
    };
    let timeout = ctx
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let bookmarks = ctx.query.get("allowWatchBookmarks").map(String::as_str) == Some("true");

    // Under the lock, so no event falls between the replay and the live
    // subscription.
    let st = lock(ctx.inner);
    if since != 0 && since < st.compacted {
        // The real server answers 200 and then one ERROR event.
        let expired = event_line(
            "ERROR",
            &json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "reason": "Expired", "code": 410,
                "message": format!("too old resource version: {since} ({})", st.compacted),
            }),
        );
        return Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(BodyExt::boxed_unsync(Full::new(expired)))
            .expect("invariant: static response parts are valid");
    }
    let mut first: Vec<Bytes> = if since == 0 {
        st.loadtests
            .iter()
            .filter(|((lt_ns, _), _)| lt_ns == ns)
            .map(|(_, obj)| event_line("ADDED", obj))
            .collect()
    } else {
        st.history
            .iter()
            .filter(|e| e.rv > since && e.namespace == ns)
            .map(|e| e.line.clone())
            .collect()
    };
    if bookmarks {
        first.push(event_line(
            "BOOKMARK",
            &json!({
                "apiVersion": LT_API_VERSION,
                "kind": "LoadTest",
                "metadata": {"resourceVersion": st.rv.to_string()},
            }),
        ));
    }
    let live = ctx.inner.events.subscribe();
    let start_rv = st.rv.max(since);
    drop(st);

    let mut epoch = ctx.inner.epoch.subscribe();
    epoch.mark_unchanged();
    let deadline = tokio::time::Instant::now() + timeout;
    let ns = ns.to_string();
    let live = futures::stream::unfold(
        (live, epoch, ns, start_rv),
        move |(mut rx, mut epoch, ns, last)| async move {
            loop {
                tokio::select! {
                    // A closed watch ends before it delivers anything more.
                    biased;
                    _ = epoch.changed() => return None,
                    ev = rx.recv() => match ev {
                        Ok(e) if e.namespace == ns && e.rv > last => {
                            let line = e.line.clone();
                            let rv = e.rv;
                            return Some((line, (rx, epoch, ns, rv)));
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = tokio::time::sleep_until(deadline) => return None,
                }
            }
        },
    );
    let frames = futures::stream::iter(first)
        .chain(live)
        .map(|line| Ok::<_, Infallible>(Frame::data(line)));
    Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(BodyExt::boxed_unsync(StreamBody::new(frames)))
        .expect("invariant: static response parts are valid")
}
