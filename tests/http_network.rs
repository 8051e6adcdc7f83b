//! TLS and network options of YAML plans against real servers: client
//! certificates (`tlsAuth`) checked by nginx's `ssl_verify_client`, the
//! TLS versions and suites a plan offers (`tlsVersion`,
//! `tlsCipherSuites`) as nginx reports them, source addresses
//! (`localIPs`) as nginx sees them, and requests through a real proxy
//! (tinyproxy, with Basic credentials): absolute-form for `http://`, a
//! `CONNECT` tunnel for `https://`; and the `rps` cap.
//!
//! Certificates are made by the test (rcgen); servers come from
//! `common::servers` (`scripts/test` installs `nginx-light` and
//! `tinyproxy`).

mod common;

use common::servers::{self, Server};
use common::{base, check_counts, rate, run_yaml, start_target};
use volley::metrics::Metric;

/// A server certificate for `localhost`/`127.0.0.1` and a client
/// certificate (`CN=volley-client`) from a CA nginx trusts for clients.
struct Pki {
    server_cert: String,
    server_key: String,
    client_ca: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .self_signed(&server_key)
        .unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "volley test client CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "volley-client");
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &issuer).unwrap();
    Pki {
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client_ca: ca.pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

async fn tls_nginx(pki: &Pki) -> Server {
    servers::nginx(
        include_str!("fixtures/nginx/tls.conf"),
        &[
            ("server.crt", pki.server_cert.as_bytes()),
            ("server.key", pki.server_key.as_bytes()),
            ("client-ca.crt", pki.client_ca.as_bytes()),
        ],
    )
    .await
}

/// A plan (JSON, which is YAML) of `iterations` GETs of `url` with
/// `options` merged in and `checks` on each response.
fn plan(options: serde_json::Value, url: &str, vus: u64, checks: serde_json::Value) -> String {
    let mut doc = serde_json::json!({
        "scenarios": {"once": {"executor": "per-vu-iterations", "vus": vus, "iterations": 1}},
        "insecureSkipTLSVerify": true,
        "flow": [{"get": {"url": url, "check": checks}}],
    });
    if let (Some(d), serde_json::Value::Object(o)) = (doc.as_object_mut(), options) {
        d.extend(o);
    }
    doc.to_string()
}

fn client_auth(pki: &Pki, domains: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "tlsAuth": [{"cert": pki.client_cert, "key": pki.client_key, "domains": domains}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_reaches_the_hosts_it_is_for() {
    let pki = pki();
    let nginx = tls_nginx(&pki).await;
    let url = format!("https://localhost:{}/whoami", nginx.port);
    let checks = serde_json::json!([
        {"name": "accepted", "status": 200},
        {"name": "named", "bodyContains": "CN=volley-client"},
    ]);
    // For any host, and for the host it names: presented and verified.
    for domains in [&[][..], &["localhost"], &["*.other.test", "localhost"]] {
        let r = run_yaml(&plan(client_auth(&pki, domains), &url, 2, checks.clone())).await;
        assert_eq!(check_counts(&r, "accepted"), (2, 0), "domains {domains:?}");
        assert_eq!(check_counts(&r, "named"), (2, 0), "domains {domains:?}");
    }
    // For another host only, or none at all: nginx sees no certificate.
    for options in [client_auth(&pki, &["other.test"]), serde_json::json!({})] {
        let r = run_yaml(&plan(options, &url, 2, checks.clone())).await;
        assert_eq!(check_counts(&r, "accepted"), (0, 2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_uses_the_versions_and_suites_the_plan_offers() {
    let pki = pki();
    let nginx = tls_nginx(&pki).await;
    let url = format!("https://localhost:{}/whoami", nginx.port);
    let mut options = client_auth(&pki, &[]);
    let o = options.as_object_mut().unwrap();
    o.insert("tlsVersion".into(), "tls1.2".into());
    o.insert(
        "tlsCipherSuites".into(),
        serde_json::json!(["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"]),
    );
    let checks = serde_json::json!([{
        "name": "tls1.2 chacha",
        "bodyContains": "protocol=TLSv1.2 cipher=ECDHE-ECDSA-CHACHA20-POLY1305"
    }]);
    let r = run_yaml(&plan(options, &url, 1, checks)).await;
    assert_eq!(check_counts(&r, "tls1.2 chacha"), (1, 0));

    let checks = serde_json::json!([{"name": "tls1.3", "bodyContains": "protocol=TLSv1.3"}]);
    let r = run_yaml(&plan(client_auth(&pki, &[]), &url, 1, checks)).await;
    assert_eq!(check_counts(&r, "tls1.3"), (1, 0));

    // A suite the server does not accept: the handshake fails, counted.
    let options = serde_json::json!({
        "tlsVersion": "tls1.2",
        "tlsCipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
    });
    let r = run_yaml(&plan(options, &url, 1, serde_json::json!([]))).await;
    assert_eq!(rate(&r, Metric::HttpReqFailed), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_vu_connects_from_its_local_ip() {
    let pki = pki();
    let nginx = tls_nginx(&pki).await;
    let url = format!("https://127.0.0.1:{}/ip", nginx.port);
    let options = serde_json::json!({"localIPs": "127.0.0.2-127.0.0.3"});
    let checks = serde_json::json!([
        {"name": "from .2", "bodyContains": "127.0.0.2"},
        {"name": "from .3", "bodyContains": "127.0.0.3"},
    ]);
    let r = run_yaml(&plan(options, &url, 2, checks)).await;
    assert_eq!(check_counts(&r, "from .2"), (1, 1));
    assert_eq!(check_counts(&r, "from .3"), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_through_a_proxy_with_its_credentials() {
    let pki = pki();
    let nginx = tls_nginx(&pki).await;
    let target = start_target().await;
    let proxy = servers::tinyproxy("BasicAuth volley s3cret").await;
    let through = |password: &str| {
        serde_json::json!({
            "proxy": format!("http://volley:{password}@127.0.0.1:{}", proxy.port),
        })
    };

    // http: the request goes to the proxy in absolute form; its Via shows.
    let checks = serde_json::json!([
        {"name": "proxied", "header": "Via"},
        {"name": "ok", "status": 200},
    ]);
    let r = run_yaml(&plan(
        through("s3cret"),
        &format!("{}/", base(&target)),
        2,
        checks,
    ))
    .await;
    assert_eq!(check_counts(&r, "ok"), (2, 0));
    assert_eq!(check_counts(&r, "proxied"), (2, 0), "tinyproxy adds Via");

    // tinyproxy answers wrong credentials with 401, none with 407.
    let checks = serde_json::json!([{"name": "refused", "status": [401, 407]}]);
    let r = run_yaml(&plan(
        through("wrong"),
        &format!("{}/", base(&target)),
        1,
        checks,
    ))
    .await;
    assert_eq!(check_counts(&r, "refused"), (1, 0));

    // https: a CONNECT tunnel, then TLS with nginx end to end.
    let url = format!("https://localhost:{}/hello", nginx.port);
    let checks = serde_json::json!([{"name": "tunnelled", "bodyContains": "hello over TLSv1.3"}]);
    let r = run_yaml(&plan(through("s3cret"), &url, 2, checks)).await;
    assert_eq!(check_counts(&r, "tunnelled"), (2, 0));

    let r = run_yaml(&plan(through("wrong"), &url, 1, serde_json::json!([]))).await;
    assert_eq!(
        rate(&r, Metric::HttpReqFailed),
        (1, 1),
        "a refused tunnel fails"
    );
}

/// `rps` spaces requests of all VUs together: 11 requests at 20/s from 4
/// VUs cannot take less than 10 intervals of 50 ms, whatever the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rps_caps_all_vus_together() {
    let target = start_target().await;
    let yaml = format!(
        r#"
rps: 20
scenarios:
  main: {{executor: shared-iterations, vus: 4, iterations: 11}}
flow:
  - get: "{}/"
"#,
        base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(common::counter(&r, Metric::HttpReqs), 11.0);
    assert!(
        r.elapsed >= std::time::Duration::from_millis(500),
        "11 requests at 20/s took {:?}",
        r.elapsed
    );
}
