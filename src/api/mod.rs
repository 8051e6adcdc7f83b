//! The agent's HTTP API and its client.
//!
//! Every Volley agent serves this API; a plan submitted to any agent runs on
//! the whole fleet. This module owns only HTTP: routes, wire types, auth,
//! the Prometheus text, and the client the CLI uses. The coordination
//! behind it is the [`Agent`] trait, implemented by the agent (and by
//! fakes in tests).
//!
//! | route | auth | answer |
//! |---|---|---|
//! | `GET /healthz` | | 200 `ok` while the process serves |
//! | `GET /readyz` | | 200/503 [`ReadyView`]: joined the fleet and not draining |
//! | `GET /metrics` | | Prometheus text ([`PromSnapshot`]) |
//! | `GET /v1/members` | | [`MemberList`] |
//! | `POST /v1/tests` | bearer | 201 [`SubmitResponse`], `Location: /v1/tests/{id}` |
//! | `GET /v1/tests` | | [`TestList`] |
//! | `GET /v1/tests/{id}` | | [`TestView`] |
//! | `DELETE /v1/tests/{id}` | bearer | [`AbortResponse`] |
//! | `GET /v1/tests/{id}/summary` | | [`SummaryView`]; `?format=text`: the text alone |
//! | `GET /ui` | | the fleet's page (HTML): members, the running test, past tests |
//!
//! `POST /v1/tests` takes a JSON [`SubmitRequest`] (`application/json`) or
//! the plan itself (`application/yaml`, `text/yaml`, `application/x-yaml`,
//! `text/plain`) with options in the query string:
//! `?selector=region=eu,pool=load&minAgents=2&leadTime=3s&env=K=V&env=K2=V2&name=x&format=yaml`.
//! Errors are JSON [`ErrorBody`]s (see [`ApiError`]).
//!
//! Layout: `server` (config, accept loop, shutdown), `routes` (dispatch and
//! responses), `submit` (reading a submit body), `query` (query strings and
//! percent-encoding), `auth`, `dto`, `error`, `prom`, `client`; and
//! `dashboard`, the small server of `volley run --dashboard`.
//!
//! `/ui` is read-only and public like every `GET`: the page asks only the
//! `GET` endpoints of its own origin (its Content-Security-Policy allows
//! nothing else), so it needs no token and offers no start or abort.

mod auth;
mod client;
pub mod dashboard;
mod dto;
mod error;
mod prom;
mod query;
mod routes;
mod server;
pub(crate) mod submit;

pub use futures::future::BoxFuture;

pub use auth::{SecretToken, TokenError};
pub use client::{ApiClient, ClientError};
pub use dto::{
    AbortResponse, AgentState, AllocationEntry, LiveMetrics, LivePoint, MemberList, MemberView,
    PlanFormat, ReadyView, SubmitRequest, SubmitResponse, SummaryView, TestBrief, TestList,
    TestView,
};
pub use error::{ApiError, AuthFailure, Ending, ErrorBody, ErrorDetail, ROUTES};
pub use prom::{GeneratorFigures, PromSnapshot, ScenarioFigures, ShareFigures};
pub use server::{
    ApiConfig, ApiServerError, DEFAULT_MAX_BODY, DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT,
    serve,
};

/// What the API needs from the agent. Implemented by the agent's
/// coordination layer, and by fakes in tests; the API never sees more.
///
/// Methods that can fail return [`ApiError`]s, which the API answers with
/// their status and message as they are, so messages should be written for
/// the person who submitted the test.
pub trait Agent: Send + Sync + 'static {
    /// Starts a test on the fleet (already checked for an empty plan,
    /// `minAgents: 0` and a malformed `leadTime`).
    fn submit(&self, req: SubmitRequest) -> BoxFuture<'_, Result<SubmitResponse, ApiError>>;
    /// Every test this agent knows (it coordinated or took part in), newest
    /// first: `GET /v1/tests?scope=local`.
    fn list_tests(&self) -> BoxFuture<'_, Vec<TestBrief>>;
    /// Every test of the fleet (this agent's and each live member's), newest
    /// first: `GET /v1/tests`. An agent that cannot ask its peers answers
    /// with its own tests.
    fn list_fleet_tests(&self) -> BoxFuture<'_, Vec<TestBrief>> {
        self.list_tests()
    }
    fn get_test(&self, id: &str) -> BoxFuture<'_, Result<TestView, ApiError>>;
    /// The summary of an ended test ([`ApiError::Conflict`] while it runs).
    fn get_summary(&self, id: &str) -> BoxFuture<'_, Result<SummaryView, ApiError>>;
    fn abort(&self, id: &str) -> BoxFuture<'_, Result<AbortResponse, ApiError>>;
    fn members(&self) -> BoxFuture<'_, Vec<MemberView>>;
    /// For `/readyz`: joined the fleet and not draining.
    fn ready(&self) -> bool;
    /// The numbers behind `/metrics`; the API renders the text.
    fn prometheus(&self) -> BoxFuture<'_, PromSnapshot>;
}
