//! Plan loading (YAML → validated `Plan`) and template rendering, the two
//! plan costs: one paid once per test, the other on every request; and the
//! admission check a submit adds to the load.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use volley::plan::{self, Format, FsFiles, LoadOptions, RenderContext, admission};

const PLAN: &str = r#"
env:
  BASE: http://127.0.0.1:8080
scenarios:
  browse:
    executor: ramping-vus
    stages:
      - { duration: 30s, target: 50 }
      - { duration: 1m, target: 50 }
    flow:
      - group:
          name: login
          flow:
            - request:
                method: POST
                url: "${env.BASE}/login"
                json: { user: "user-${vu}", password: "${uuid}" }
                check:
                  - status: 200
                  - json: { pointer: /token }
                capture:
                  - { var: token, json: /token }
      - request:
          url: "${env.BASE}/items/${random(1,1000)}?page=${iter}"
          headers:
            Authorization: "Bearer ${token}"
          check:
            - status: [200, 304]
            - header: Content-Type
      - sleep: { min: 1s, max: 3s }
  api:
    executor: constant-arrival-rate
    rate: 500
    duration: 1m
    preAllocatedVUs: 20
    maxVUs: 200
    flow:
      - request:
          url: "${env.BASE}/json"
thresholds:
  http_req_duration: ["p(95)<200", "p(99)<500"]
  "http_req_duration{scenario:api}": ["avg<100"]
  http_req_failed: ["rate<0.01"]
  checks: ["rate>0.99"]
"#;

fn bench(c: &mut Criterion) {
    let opts = LoadOptions::default();
    c.bench_function("plan/parse_and_validate", |b| {
        b.iter(|| plan::parse(black_box(PLAN), Format::Yaml, &opts, &FsFiles).expect("valid plan"))
    });

    let plan = plan::parse(PLAN, Format::Yaml, &opts, &FsFiles).expect("valid plan");
    let limits = admission::Limits::fleet(
        admission::MachineLimits::from_capacity(2.0, Some(8 << 30), admission::Knobs::AGENT),
        "agent-0",
        2.0,
        &[2.0; 5],
    );
    c.bench_function("plan/admission_check", |b| {
        b.iter(|| admission::check(&admission::Demand::of(black_box(&plan)), &limits))
    });
    let vars = vec![Some("eyJhbGciOiJIUzI1NiJ9.token".to_string())];
    let cx = RenderContext {
        vu: 17,
        iter: 4242,
        scenario: "browse",
        vars: &vars,
        row: None,
    };
    let url = &plan
        .requests
        .iter()
        .find(|r| r.url.source().contains("items"))
        .expect("the items request")
        .url;
    let header = plan
        .requests
        .iter()
        .flat_map(|r| r.headers.iter())
        .find(|(name, _)| name.as_str() == "authorization")
        .map(|(_, value)| value)
        .expect("the Authorization header");
    let mut out = String::with_capacity(128);
    c.bench_function("template/render_url", |b| {
        b.iter(|| {
            out.clear();
            url.render_into(black_box(&cx), &mut out);
            black_box(out.len())
        })
    });
    c.bench_function("template/render_header", |b| {
        b.iter(|| {
            out.clear();
            header.render_into(black_box(&cx), &mut out);
            black_box(out.len())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
