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
//! - `GET /api/v1/namespaces/{ns}/configmaps/{name}` and `…/secrets/{name}`
//! - `POST /apis/events.k8s.io/v1/namespaces/{ns}/events` and `PATCH` of
//!   one Event (merge patch), as kube's event `Recorder` writes them;
//! - `LoadTest`s under `/apis/volley.dev/v1alpha1/namespaces/{ns}/loadtests`:
//!   `GET` one and list, `POST`, `PUT`, `PATCH`, `DELETE` (honouring
//!   `DeleteOptions.preconditions`: 409 when the uid differs), and
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
//!
//! RBAC: [`FakeApi::client`] carries the agent's credentials, and its calls
//! are judged by the rules of `deploy/rbac.yaml` or, with
//! [`FakeApi::start_with_rbac`], of a chart render (403 for anything they do
//! not grant, as on a cluster; a rule with `resourceNames` grants only calls
//! on those objects by name); [`FakeApi::admin_client`] is a person with
//! kubectl, granted everything.

mod rbac;
mod routes;
mod wire;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::Method;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;

use routes::handle;
use wire::{Failure, event_line};

/// The namespace the tests use.
pub const NAMESPACE: &str = "volley";
/// `apiVersion` of `LoadTest`s.
pub const LT_API_VERSION: &str = "volley.dev/v1alpha1";
/// The `Authorization` header of [`FakeApi::client`]: the agent's service
/// account, whose calls the RBAC rules judge.
const AGENT_AUTHORIZATION: &str = "Bearer volley-agent";

pub use rbac::Rbac;

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
    /// `(API group, resource, verb)` of a routed request, as RBAC names it.
    pub grant: Option<(String, String, String)>,
    /// The one object the call is about (RBAC's `resourceNames`), if any.
    pub name: Option<String>,
    /// Sent with the agent's credentials ([`FakeApi::client`]).
    pub as_agent: bool,
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
    secrets: BTreeMap<Key, Value>,
    loadtests: BTreeMap<Key, Value>,
    /// Events (`events.k8s.io/v1`) with their namespace, in creation order.
    events: Vec<(String, Value)>,
    /// Every LoadTest event, for watches that start from an older version.
    history: Vec<Arc<Event>>,
    /// Watches from before this version get 410 Expired, as after an etcd
    /// compaction; the client must re-list.
    compacted: u64,
    /// `(verb, resource)` pairs answered with 403; verb `*` is any verb.
    forbidden: Vec<(String, String)>,
    /// The agent's RBAC rules: calls of [`FakeApi::client`] they do not
    /// grant get 403. `None`: everything is granted.
    rbac: Option<Rbac>,
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
    /// Starts the server on `127.0.0.1:0`, judging the agent's calls by the
    /// RBAC rules of `deploy/rbac.yaml` (the chart renders the same grants;
    /// `.ci/k8s-check` holds both to the calls the agent makes).
    pub async fn start() -> FakeApi {
        let api = FakeApi::start_without_rbac().await;
        api.state().rbac = Some(Rbac::deploy());
        api
    }

    /// Starts the server judging the agent's calls by `rbac` (e.g. a
    /// chart render's rules).
    pub async fn start_with_rbac(rbac: Rbac) -> FakeApi {
        let api = FakeApi::start_without_rbac().await;
        api.state().rbac = Some(rbac);
        api
    }

    /// Starts the server granting the agent everything.
    pub async fn start_without_rbac() -> FakeApi {
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

    /// A kube client with the agent's credentials, default namespace
    /// [`NAMESPACE`]: its calls are judged by the RBAC rules.
    pub fn client(&self) -> kube::Client {
        self.client_with(Some(AGENT_AUTHORIZATION.trim_start_matches("Bearer ")))
    }

    /// A kube client of a cluster admin (a person with kubectl): no RBAC.
    pub fn admin_client(&self) -> kube::Client {
        self.client_with(None)
    }

    fn client_with(&self, token: Option<&str>) -> kube::Client {
        let url = format!("http://{}", self.addr)
            .parse()
            .expect("loopback URL");
        let mut config = kube::Config::new(url);
        config.default_namespace = NAMESPACE.to_string();
        config.auth_info.token = token.map(|t| t.to_string().into());
        kube::Client::try_from(config).expect("client for the fake API server")
    }

    /// The `(API group, resource, verb)` of every call the agent made that
    /// was answered with success.
    pub fn agent_calls(&self) -> std::collections::BTreeSet<(String, String, String)> {
        self.state()
            .requests
            .iter()
            .filter(|r| r.as_agent && (200..300).contains(&r.status))
            .filter_map(|r| r.grant.clone())
            .collect()
    }

    /// The `((API group, resource, verb), name)` of every call on one
    /// object by name the agent made that was answered with success.
    pub fn agent_named_calls(
        &self,
    ) -> std::collections::BTreeSet<((String, String, String), String)> {
        self.state()
            .requests
            .iter()
            .filter(|r| r.as_agent && (200..300).contains(&r.status))
            .filter_map(|r| Some((r.grant.clone()?, r.name.clone()?)))
            .collect()
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

    /// Stores a Secret `name` in `namespace` with these keys and values
    /// (base64-encoded in `data`, as the API server serves them).
    pub fn put_secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(b64.encode(v))))
            .collect();
        let mut st = self.state();
        let secret = st.stamp(
            json!({"metadata": {"name": name}, "type": "Opaque", "data": data}),
            "v1",
            "Secret",
            Some(namespace),
        );
        st.secrets
            .insert((namespace.to_string(), name.to_string()), secret);
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
    /// `configmaps`, `secrets`, `events`, `loadtests`, `loadtests/status`).
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

    /// The Events (`events.k8s.io/v1`) regarding one object, oldest first.
    pub fn events_about(&self, namespace: &str, name: &str) -> Vec<Value> {
        self.state()
            .events
            .iter()
            .filter(|(ns, e)| ns == namespace && e["regarding"]["name"] == name)
            .map(|(_, e)| e.clone())
            .collect()
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

// === impl State: writes as the real API server makes them ===

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
