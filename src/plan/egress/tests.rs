use std::net::IpAddr;

use super::*;
use crate::plan::{Format, FsFiles, LoadOptions, parse};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test addresses parse")
}

fn rules(text: &str) -> Vec<Rule> {
    Rule::parse_list(text).expect("test rules parse")
}

fn denied_by(policy: &EgressPolicy, host: Option<&str>, addr: Option<&str>) -> Option<String> {
    match policy.check(host, addr.map(ip)) {
        Ok(()) => None,
        Err(d) => Some(
            d.rule
                .map_or_else(|| "no allow".to_owned(), |r| r.to_string()),
        ),
    }
}

#[test]
fn rules_parse_into_networks_and_host_patterns() {
    assert_eq!(Rule::parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
    assert_eq!(
        Rule::parse(" 127.0.0.1 ").unwrap().to_string(),
        "127.0.0.1/32"
    );
    assert_eq!(Rule::parse("[::1]").unwrap().to_string(), "::1/128");
    assert_eq!(Rule::parse("fd00::1/8").unwrap().to_string(), "fd00::/8");
    assert_eq!(Rule::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
    assert_eq!(
        Rule::parse("::ffff:169.254.0.0/112").unwrap().to_string(),
        "169.254.0.0/16"
    );
    assert_eq!(
        Rule::parse("*.Example.COM.").unwrap().to_string(),
        "*.example.com"
    );
    assert_eq!(Rule::parse("metadata").unwrap().to_string(), "metadata");
    assert_eq!(rules("a.test, ,10.0.0.0/8,").len(), 2);
}

#[test]
fn bad_rules_name_the_value_and_the_form() {
    for bad in [
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/x",
        "nothing/8",
        "*",
        "*.",
        "a..b",
        "exa mple.com",
        "http://a.test",
        "a.test:80",
    ] {
        let err = Rule::parse(bad).expect_err(bad);
        assert!(err.contains(&format!("{bad:?}")), "{err}");
        assert!(err.contains("expected a CIDR"), "{err}");
    }
    let err = Rule::parse_list("10.0.0.0/8,nope!").unwrap_err();
    assert!(err.contains("\"nope!\""), "{err}");
}

#[test]
fn the_defaults_deny_link_local_and_metadata() {
    let p = EgressPolicy::default();
    for addr in [
        "169.254.169.254",
        "169.254.0.0",
        "169.254.255.255",
        "::ffff:169.254.169.254",
        "fe80::1",
        "febf:ffff::1",
        "fd00:ec2::254",
        "100.100.100.200",
    ] {
        assert!(denied_by(&p, None, Some(addr)).is_some(), "{addr}");
    }
    for addr in [
        "169.253.255.255",
        "169.255.0.0",
        "fec0::1",
        "fd00:ec2::253",
        "100.100.100.201",
        "127.0.0.1",
        "::1",
    ] {
        assert_eq!(denied_by(&p, None, Some(addr)), None, "{addr}");
    }
    for host in [
        "metadata.google.internal",
        "METADATA.Google.Internal.",
        "x.metadata.google.internal",
        "metadata",
        "169.254.169.254",
        "[fe80::1]",
    ] {
        assert!(denied_by(&p, Some(host), None).is_some(), "{host}");
    }
    for host in [
        "google.internal",
        "notmetadata.google.internal",
        "metadata.example",
    ] {
        assert_eq!(denied_by(&p, Some(host), None), None, "{host}");
    }
    assert_eq!(
        EgressPolicy::open().check(None, Some(ip("169.254.169.254"))),
        Ok(())
    );
    assert!(
        EgressPolicy::new(Vec::new(), Vec::new(), false)
            .deny()
            .is_empty()
    );
}

#[test]
fn deny_wins_and_an_allow_list_is_exclusive() {
    let p = EgressPolicy::new(rules("10.0.0.0/8,*.corp.test"), rules("10.9.0.0/16"), true);
    assert_eq!(denied_by(&p, Some("api"), Some("10.1.2.3")), None);
    assert_eq!(
        denied_by(&p, Some("svc.corp.test"), Some("192.0.2.1")),
        None
    );
    assert_eq!(
        denied_by(&p, Some("api"), Some("10.9.1.1")).as_deref(),
        Some("10.9.0.0/16")
    );
    assert_eq!(
        denied_by(&p, Some("a.test"), Some("192.0.2.1")).as_deref(),
        Some("no allow")
    );
    // The exact name is not a subdomain of itself.
    assert_eq!(
        denied_by(&p, Some("corp.test"), Some("192.0.2.1")).as_deref(),
        Some("no allow")
    );
    // Before DNS, a name could still resolve into 10.0.0.0/8.
    assert_eq!(denied_by(&p, Some("a.test"), None), None);
    // IPv6 and mapped addresses.
    let v6 = EgressPolicy::new(rules("2001:db8::/32"), rules("::ffff:10.0.0.0/104"), false);
    assert_eq!(denied_by(&v6, None, Some("2001:db8::7")), None);
    assert_eq!(
        denied_by(&v6, None, Some("2001:db9::7")).as_deref(),
        Some("no allow")
    );
    assert_eq!(
        denied_by(&v6, None, Some("10.1.1.1")).as_deref(),
        Some("10.0.0.0/8")
    );
    // Only host rules in the allow list: a name is refused before DNS.
    let names = EgressPolicy::new(rules("api.test"), Vec::new(), false);
    assert_eq!(denied_by(&names, Some("API.test."), None), None);
    assert_eq!(
        denied_by(&names, Some("other.test"), None).as_deref(),
        Some("no allow")
    );
}

#[test]
fn a_policy_reads_as_its_rules() {
    assert_eq!(EgressPolicy::open().to_string(), "allow any; deny none");
    let p = EgressPolicy::new(rules("10.0.0.0/8,*.corp.test"), rules("10.9.0.0/16"), false);
    assert_eq!(
        p.to_string(),
        "allow 10.0.0.0/8, *.corp.test; deny 10.9.0.0/16"
    );
    assert!(
        EgressPolicy::default()
            .to_string()
            .starts_with("allow any; deny 169.254.0.0/16, fe80::/10")
    );
}

#[test]
fn denials_say_what_and_why() {
    let p = EgressPolicy::new(Vec::new(), rules("127.0.0.0/8"), true);
    let d = p
        .check(Some("localhost"), Some(ip("127.0.0.1")))
        .unwrap_err();
    assert_eq!(
        d.to_string(),
        "localhost (127.0.0.1) is denied by egress policy (deny rule 127.0.0.0/8)"
    );
    let d = p.check(Some("169.254.169.254"), None).unwrap_err();
    assert!(d.to_string().starts_with(
        "169.254.169.254 is denied by egress policy (default deny rule 169.254.0.0/16"
    ));
}

fn plan(text: &str) -> Plan {
    parse(text, Format::Yaml, &LoadOptions::default(), &FsFiles).expect("test plans load")
}

#[test]
fn plans_are_checked_where_their_hosts_are_literal() {
    let p = EgressPolicy::default();
    let metadata = plan(
        "vus: 1\niterations: 1\nflow:\n  - get: http://127.0.0.1:1/\n  - get: http://169.254.169.254/latest/meta-data/\n",
    );
    let refusal = p.check_plan(&metadata).unwrap_err();
    assert_eq!(refusal.path, "flow[1].get");
    assert_eq!(refusal.host, "169.254.169.254");
    assert!(
        refusal
            .to_string()
            .starts_with("flow[1].get: host \"169.254.169.254\": 169.254.169.254 is denied"),
        "{refusal}"
    );

    let prefixed = plan(
        "vus: 1\niterations: 1\nflow:\n  - request:\n      method: GET\n      url: \"http://user:pw@Metadata.Google.Internal:8080/x/${vu}\"\n",
    );
    let refusal = p.check_plan(&prefixed).unwrap_err();
    assert_eq!(refusal.path, "flow[0].request");
    assert_eq!(refusal.host, "metadata.google.internal");

    // A host that is templated is only known when sent.
    let templated = plan(
        "vus: 1\niterations: 1\nflow:\n  - get: \"http://h${vu}.test/\"\n  - get: \"http://169.254.169.254${iter}\"\n",
    );
    assert_eq!(p.check_plan(&templated), Ok(()));

    // The `hosts` option's address is checked with the name.
    let pinned = plan(
        "vus: 1\niterations: 1\nhosts:\n  api.test: 169.254.169.254\nflow:\n  - get: http://api.test/\n",
    );
    let refusal = p.check_plan(&pinned).unwrap_err();
    assert_eq!(refusal.host, "api.test");
    assert!(refusal.denial.destination.contains("169.254.169.254"));

    let v6 = plan("vus: 1\niterations: 1\nflow:\n  - get: \"http://[fe80::1]:8080/\"\n");
    assert_eq!(p.check_plan(&v6).unwrap_err().host, "fe80::1");
}

#[test]
fn literal_hosts_are_read_from_the_urls_prefix() {
    let host = |url: &str| literal_host(&Template::literal(url)).map(|(h, _)| h);
    assert_eq!(host("http://A.test").as_deref(), Some("a.test"));
    assert_eq!(host("https://a.test:8443/x?y#z").as_deref(), Some("a.test"));
    assert_eq!(
        literal_host(&Template::literal("https://a.test/")).map(|(_, p)| p),
        Some(Some(443))
    );
    assert_eq!(host("http://[::1]:80/").as_deref(), Some("::1"));
    assert_eq!(host("http:///x"), None);
}
