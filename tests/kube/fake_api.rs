//! A FAKE Kubernetes API server on loopback, for testing `volley::kube`
//! without a cluster. Volley's Kubernetes code is tested against this fake,
//! not against a real API server: it imitates the parts of the real API the
//! agent uses, as documented, and nothing more.
//!
//! What it serves (JSON over HTTP/1.1 on `127.0.0.1:0`):
//!
//! - `GET /api/v1/nodes/{name}`
//! - `GET /api/v1/namespaces/{ns}/pods?labelSelector=…` (equality,
//!   inequality and existence requirements)
//! - `GET /api/v1/namespaces/{ns}/configmaps/{name}`
//! - `LoadTest`s under `/apis/volley.dev/v1alpha1/namespaces/{ns}/loadtests`:
//!   `GET` one and list, `POST`, `PUT`, `PATCH`, `DELETE`, and
//!   `GET ?watch=true` streaming newline-delimited
//!   `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK","object":…}` as objects
//!   change (replayed from `resourceVersion`, ended after `timeoutSeconds`);
//! - the `status` subresource: `GET`, `PUT` (a `resourceVersion` is required
//!   and must match, else 409 `Conflict`), `PATCH` with
//!   `application/merge-patch+json` (RFC 7386) or
//!   `application/apply-patch+yaml` (needs `fieldManager`, `apiVersion` and
//!   `kind`; merged like a merge patch, without field ownership).
//!
//! Like the real server: every change bumps one global `resourceVersion`
//! and emits a watch event, a write that changes nothing bumps nothing, a
//! spec change bumps `metadata.generation`, writes to the main resource keep
//! the status and writes to `status` keep everything else, errors are
//! `Status` objects with `reason` and `code`. [`FakeApi::forbid`] makes chosen
//! verbs on chosen resources answer 403 `Forbidden`; unknown paths get 404.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;

/// The namespace the tests use.
pub const NAMESPACE: &str = "volley";
/// `apiVersion` of `LoadTest`s.
pub const LT_API_VERSION: &str = "volley.dev/v1alpha1";

type Body = UnsyncBoxBody<Bytes, Infallible>;
type Key = (String, String);

/// One request the fake received, for assertions on what the client sent.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    /// The HTTP status answered; 0 while the request is being served (a
    /// watch stays at 200 from its first byte).
    pub status: u16,
}

/// A change to a `LoadTest`, as watchers see it.
#[derive(Debug)]
struct Event {
    rv: u64,
    namespace: String,
    line: Bytes,
}

#[derive(Default)]
struct State {
    /// The last resourceVersion handed out (etcd's revision).
    rv: u64,
    uids: u64,
    nodes: BTreeMap<String, Value>,
    pods: BTreeMap<Key, Value>,
    configmaps: BTreeMap<Key, Value>,
    loadtests: BTreeMap<Key, Value>,
    /// Every LoadTest event, for watches that start from an older version.
    history: Vec<Arc<Event>>,
    /// Watches from before this version get 410 Expired, as after an etcd
    /// compaction; the client must re-list.
    compacted: u64,
    /// `(verb, resource)` pairs answered with 403; verb `*` is any verb.
    forbidden: Vec<(String, String)>,
    requests: Vec<Recorded>,
    /// Every version each LoadTest had, oldest first, by namespace/name.
    versions: BTreeMap<Key, Vec<Value>>,
    /// When set, `PUT …/status` requests wait here until this many have
    /// arrived, so concurrent claims really race on one resourceVersion.
    status_put_gate: Option<Arc<tokio::sync::Barrier>>,
}

struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<Event>>,
    /// Bumped by [`FakeApi::close_watches`]; open watches end when it moves.
    epoch: watch::Sender<u64>,
}

/// The fake API server. Dropping it stops accepting connections.
pub struct FakeApi {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: AbortHandle,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FakeApi {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (events, _) = broadcast::channel(4096);
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            events,
            epoch: watch::Sender::new(0),
        });
        let served = inner.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let inner = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let inner = inner.clone();
                        async move { Ok::<_, Infallible>(handle(&inner, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
        .abort_handle();
        FakeApi {
            addr,
            inner,
            accept,
        }
    }

    /// A kube client talking to this server, default namespace [`NAMESPACE`].
    pub fn client(&self) -> kube::Client {
        let url = format!("http://{}", self.addr)
            .parse()
            .expect("loopback URL");
        let mut config = kube::Config::new(url);
        config.default_namespace = NAMESPACE.to_string();
        kube::Client::try_from(config).expect("client for the fake API server")
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner)
    }

    /// Stores a Node (cluster-scoped).
    pub fn put_node(&self, node: Value) {
        let mut st = self.state();
        let name = name_of(&node);
        let node = st.stamp(node, "v1", "Node", None);
        st.nodes.insert(name, node);
    }

    /// Stores a Pod in `namespace`.
    pub fn put_pod(&self, namespace: &str, pod: Value) {
        let mut st = self.state();
        let name = name_of(&pod);
        let pod = st.stamp(pod, "v1", "Pod", Some(namespace));
        st.pods.insert((namespace.to_string(), name), pod);
    }

    /// Stores a ConfigMap in `namespace`.
    pub fn put_configmap(&self, namespace: &str, cm: Value) {
        let mut st = self.state();
        let name = name_of(&cm);
        let cm = st.stamp(cm, "v1", "ConfigMap", Some(namespace));
        st.configmaps.insert((namespace.to_string(), name), cm);
    }

    /// Creates a LoadTest as `kubectl apply` would; returns it as stored.
    pub fn create_loadtest(&self, namespace: &str, lt: Value) -> Value {
        let mut st = self.state();
        match st.create_loadtest(&self.inner.events, namespace, lt) {
            Ok(v) => v,
            Err(resp) => panic!("create_loadtest refused: {resp:?}"),
        }
    }

    /// The LoadTest as stored now.
    pub fn loadtest(&self, namespace: &str, name: &str) -> Option<Value> {
        self.state()
            .loadtests
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Deletes a LoadTest as `kubectl delete` would.
    pub fn delete_loadtest(&self, namespace: &str, name: &str) -> bool {
        let mut st = self.state();
        st.delete_loadtest(&self.inner.events, namespace, name)
            .is_some()
    }

    /// Replaces a LoadTest's spec as `kubectl edit` would.
    pub fn set_spec(&self, namespace: &str, name: &str, spec: Value) {
        let mut st = self.state();
        let key = (namespace.to_string(), name.to_string());
        let Some(mut obj) = st.loadtests.get(&key).cloned() else {
            panic!("no loadtest {name}");
        };
        obj["spec"] = spec;
        st.write_loadtest(&self.inner.events, key, obj);
    }

    /// Answers 403 Forbidden to `verb` (`get`, `list`, `watch`, `create`,
    /// `update`, `patch`, `delete`, or `*`) on `resource` (`nodes`, `pods`,
    /// `configmaps`, `loadtests`, `loadtests/status`).
    pub fn forbid(&self, verb: &str, resource: &str) {
        self.state()
            .forbidden
            .push((verb.to_string(), resource.to_string()));
    }

    /// Ends every open watch, deletes the LoadTest and compacts history, all
    /// at once: as if the API server restarted and the deletion happened
    /// while clients were disconnected. A client that re-watches from its
    /// last version gets 410 Expired and must re-list to notice.
    pub fn delete_while_disconnected(&self, namespace: &str, name: &str) -> bool {
        let mut st = self.state();
        self.inner.epoch.send_modify(|e| *e += 1);
        let deleted = st.delete_loadtest(&self.inner.events, namespace, name);
        st.compacted = st.rv;
        deleted.is_some()
    }

    /// Holds `PUT …/status` requests until `parties` of them arrived, once.
    pub fn gate_status_puts(&self, parties: usize) {
        self.state().status_put_gate = Some(Arc::new(tokio::sync::Barrier::new(parties)));
    }

    /// Every version the LoadTest had, oldest first (deletion included).
    pub fn versions(&self, namespace: &str, name: &str) -> Vec<Value> {
        self.state()
            .versions
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// How many requests match `method` and end with `path_suffix`.
    pub fn count(&self, method: &Method, path_suffix: &str) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(path_suffix))
            .count()
    }
}

fn lock(inner: &Inner) -> MutexGuard<'_, State> {
    inner.state.lock().unwrap_or_else(|p| p.into_inner())
}

fn name_of(obj: &Value) -> String {
    obj["metadata"]["name"]
        .as_str()
        .expect("test objects have metadata.name")
        .to_string()
}

// === request handling ===

async fn handle(inner: &Inner, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let index = {
        let mut st = lock(inner);
        st.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: req.uri().query().unwrap_or("").to_string(),
            content_type: content_type.clone(),
            status: 0,
        });
        st.requests.len() - 1
    };
    let response = serve(inner, req, method, path, query, content_type).await;
    lock(inner).requests[index].status = response.status().as_u16();
    response
}

async fn serve(
    inner: &Inner,
    req: Request<Incoming>,
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    content_type: Option<String>,
) -> Response<Body> {
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
    if let Some(resp) = forbidden(inner, verb, resource, &route) {
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
        Route::LoadTests(ns, m, watch) => loadtests(ctx, &ns, &m, watch),
        Route::LoadTest(ns, name, m, status) => loadtest(ctx, &ns, &name, &m, status),
    }
}

enum Route {
    Node(String),
    Pods(String),
    ConfigMap(String, String),
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
            Route::LoadTests(_, m, watch) => match (m, watch) {
                (&Method::GET, true) => ("watch", "loadtests"),
                (&Method::GET, false) => ("list", "loadtests"),
                (m, _) => (verb_of(m), "loadtests"),
            },
            Route::LoadTest(_, _, m, false) => (verb_of(m), "loadtests"),
            Route::LoadTest(_, _, m, true) => (verb_of(m), "loadtests/status"),
        }
    }

    fn namespace(&self) -> Option<&str> {
        match self {
            Route::Node(_) => None,
            Route::Pods(ns)
            | Route::ConfigMap(ns, _)
            | Route::LoadTests(ns, ..)
            | Route::LoadTest(ns, ..) => Some(ns),
        }
    }
}

fn forbidden(inner: &Inner, verb: &str, resource: &str, route: &Route) -> Option<Response<Body>> {
    let st = lock(inner);
    let refused = st
        .forbidden
        .iter()
        .any(|(v, r)| (v == "*" || v == verb) && r == resource);
    if !refused {
        return None;
    }
    let (base, sub) = resource.split_once('/').unwrap_or((resource, ""));
    let group = if base == "loadtests" {
        "volley.dev"
    } else {
        ""
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
        Method::DELETE => match st.delete_loadtest(events, ns, name) {
            Some(v) => json_response(200, &v),
            None => not_found("loadtests", "volley.dev", name),
        },
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

fn event_line(kind: &str, obj: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": obj}))
        .expect("invariant: JSON values serialize");
    line.push(b'\n');
    Bytes::from(line)
}

// === state changes ===

impl State {
    /// Fills the metadata the API server owns.
    fn stamp(&mut self, mut obj: Value, api_version: &str, kind: &str, ns: Option<&str>) -> Value {
        self.rv += 1;
        self.uids += 1;
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(kind);
        let meta = &mut obj["metadata"];
        meta["resourceVersion"] = json!(self.rv.to_string());
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", self.uids));
        meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        if let Some(ns) = ns {
            meta["namespace"] = json!(ns);
        }
        obj
    }

    fn emit(&mut self, events: &broadcast::Sender<Arc<Event>>, kind: &str, ns: &str, obj: &Value) {
        self.versions
            .entry((ns.to_string(), name_of(obj)))
            .or_default()
            .push(obj.clone());
        let event = Arc::new(Event {
            rv: self.rv,
            namespace: ns.to_string(),
            line: event_line(kind, obj),
        });
        self.history.push(event.clone());
        let _ = events.send(event);
    }

    fn create_loadtest(
        &mut self,
        events: &broadcast::Sender<Arc<Event>>,
        ns: &str,
        mut obj: Value,
    ) -> Result<Value, Failure> {
        let Some(name) = obj["metadata"]["name"].as_str().map(str::to_string) else {
            return Err(Failure::new(
                422,
                "Invalid",
                "metadata.name: Required value",
            ));
        };
        let key = (ns.to_string(), name.clone());
        if self.loadtests.contains_key(&key) {
            return Err(Failure::new(
                409,
                "AlreadyExists",
                &format!("loadtests.volley.dev \"{name}\" already exists"),
            ));
        }
        // With a status subresource, create ignores the status.
        if let Some(map) = obj.as_object_mut() {
            map.remove("status");
        }
        let mut obj = self.stamp(obj, LT_API_VERSION, "LoadTest", Some(ns));
        obj["metadata"]["generation"] = json!(1);
        self.loadtests.insert(key, obj.clone());
        self.emit(events, "ADDED", ns, &obj);
        Ok(obj)
    }

    /// Stores a changed LoadTest: new resourceVersion, a new generation
    /// when the spec changed, a MODIFIED event. A write that changes
    /// nothing returns the stored object untouched.
    fn write_loadtest(
        &mut self,
        events: &broadcast::Sender<Arc<Event>>,
        key: Key,
        mut obj: Value,
    ) -> Value {
        let Some(old) = self.loadtests.get(&key).cloned() else {
            return obj;
        };
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        obj["metadata"]["generation"] = old["metadata"]["generation"].clone();
        if obj == old {
            return old;
        }
        if obj["spec"] != old["spec"] {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            obj["metadata"]["generation"] = json!(generation);
        }
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.loadtests.insert(key.clone(), obj.clone());
        self.emit(events, "MODIFIED", &key.0, &obj);
        obj
    }

    fn delete_loadtest(
        &mut self,
        events: &broadcast::Sender<Arc<Event>>,
        ns: &str,
        name: &str,
    ) -> Option<Value> {
        let mut obj = self.loadtests.remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.emit(events, "DELETED", ns, &obj);
        Some(obj)
    }
}

// === helpers ===

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).expect("invariant: JSON values serialize");
    Response::builder()
        .status(StatusCode::from_u16(code).expect("invariant: valid status code"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(BodyExt::boxed_unsync(Full::new(Bytes::from(bytes))))
        .expect("invariant: static response parts are valid")
}

/// An error answer before it becomes a response.
#[derive(Debug)]
struct Failure {
    code: u16,
    reason: &'static str,
    message: String,
}

impl Failure {
    fn new(code: u16, reason: &'static str, message: &str) -> Failure {
        Failure {
            code,
            reason,
            message: message.to_string(),
        }
    }

    fn response(&self) -> Response<Body> {
        status_error(self.code, self.reason, &self.message)
    }
}

fn status_error(code: u16, reason: &str, message: &str) -> Response<Body> {
    json_response(
        code,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }),
    )
}

fn not_found(resource: &str, group: &str, name: &str) -> Response<Body> {
    let full = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    status_error(404, "NotFound", &format!("{full} \"{name}\" not found"))
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One requirement of an equality-based label selector.
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

impl Requirement {
    fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        match self {
            Requirement::Equals(k, v) => labels[k].as_str() == Some(v),
            Requirement::NotEquals(k, v) => labels[k].as_str() != Some(v),
            Requirement::Exists(k) => labels.get(k).is_some(),
            Requirement::Absent(k) => labels.get(k).is_none(),
        }
    }
}

fn parse_selector(text: &str) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let req = if let Some((k, v)) = part.split_once("!=") {
            Requirement::NotEquals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some(k) = part.strip_prefix('!') {
            Requirement::Absent(k.trim().into())
        } else if part.contains(' ') || part.contains('(') {
            return Err(format!(
                "unable to parse requirement {part:?}: set-based selectors are not served by this fake"
            ));
        } else {
            Requirement::Exists(part.into())
        };
        out.push(req);
    }
    Ok(out)
}
