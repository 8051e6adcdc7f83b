use std::collections::BTreeMap;
use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test address")
}

fn sample() -> MemberInfo {
    let mut info = MemberInfo::new(
        "node-a",
        42,
        addr("10.0.0.1:7280"),
        addr("10.0.0.1:7281"),
        addr("10.0.0.1:7282"),
        2.5,
    );
    info.labels.insert("zone", "eu-west-1a").expect("label");
    info.labels
        .insert("topology.kubernetes.io/region", "eu-west-1")
        .expect("label");
    info.state = AgentState::Running;
    info.test = Some("checkout-2024-05".to_owned());
    info.phase = Some("ramping up: 40/100 VUs".to_owned());
    info.announcement = Some(Announcement {
        id: "checkout-2024-05".to_owned(),
        digest: "sha256:9f86d081884c7d65".to_owned(),
        origin: "node-a".to_owned(),
        start_ms: 1_717_000_000_000,
        rev: 3,
    });
    info
}

fn kv_of(info: &MemberInfo) -> BTreeMap<String, String> {
    info.to_kv().into_iter().collect()
}

fn decode(kv: &BTreeMap<String, String>) -> Result<MemberInfo, KeyError> {
    MemberInfo::from_kv("node-a", 42, addr("10.0.0.1:7280"), kv)
}

fn invalid_key(result: Result<MemberInfo, KeyError>) -> &'static str {
    match result {
        Err(KeyError::Invalid { key, .. }) => key,
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn full_info_round_trips_through_key_values() {
    let info = sample();
    info.validate().expect("sample is valid");
    let kv = kv_of(&info);
    assert_eq!(kv.len(), ALL.len(), "every key is published: {kv:?}");
    assert_eq!(
        kv[LABELS],
        "topology.kubernetes.io/region=eu-west-1,zone=eu-west-1a"
    );
    assert_eq!(kv[STATE], "running");
    assert_eq!(kv[CAPACITY], "2.5");
    assert_eq!(
        kv[ANNOUNCE],
        r#"{"id":"checkout-2024-05","digest":"sha256:9f86d081884c7d65","origin":"node-a","start_ms":1717000000000,"rev":3}"#
    );
    assert_eq!(decode(&kv), Ok(info));
}

#[test]
fn minimal_info_leaves_optional_keys_out() {
    let info = MemberInfo::new(
        "node-a",
        42,
        addr("10.0.0.1:7280"),
        addr("[fd00::1]:7281"),
        addr("10.0.0.1:7282"),
        1.0,
    );
    let kv = kv_of(&info);
    let keys: Vec<&str> = kv.keys().map(String::as_str).collect();
    assert_eq!(keys, [API, CAPACITY, PROTO, QUIC, STATE, VERSION]);
    assert_eq!(kv[PROTO], PROTOCOL_VERSION.to_string());
    assert_eq!(kv[VERSION], env!("CARGO_PKG_VERSION"));
    assert_eq!(decode(&kv), Ok(info));
}

#[test]
fn every_required_key_is_reported_when_missing() {
    for key in [PROTO, VERSION, CAPACITY, API, QUIC, STATE] {
        let mut kv = kv_of(&sample());
        kv.remove(key);
        match decode(&kv) {
            Err(KeyError::Missing {
                key: missing,
                expected,
            }) => {
                assert_eq!(missing, key);
                assert!(!expected.is_empty());
            }
            other => panic!("removing {key} gave {other:?}"),
        }
    }
}

#[test]
fn optional_keys_may_be_absent() {
    for key in [LABELS, TEST, PHASE, ANNOUNCE] {
        let mut kv = kv_of(&sample());
        kv.remove(key);
        assert!(decode(&kv).is_ok(), "without {key}");
    }
}

#[test]
fn bad_values_name_their_key() {
    let cases: &[(&str, &str)] = &[
        (PROTO, "one"),
        (PROTO, "-1"),
        (VERSION, ""),
        (VERSION, "0.1 beta"),
        (LABELS, "Zone=a"),
        (LABELS, "zone"),
        (CAPACITY, "0"),
        (CAPACITY, "-2"),
        (CAPACITY, "NaN"),
        (CAPACITY, "inf"),
        (CAPACITY, "1e12"),
        (CAPACITY, "two"),
        (API, "localhost:7281"),
        (API, "10.0.0.1:0"),
        (API, "0.0.0.0:7281"),
        (QUIC, "10.0.0.1"),
        (STATE, "IDLE"),
        (STATE, "stopped"),
        (TEST, ""),
        (TEST, "a b"),
        (PHASE, "line\nbreak"),
        (ANNOUNCE, "{}"),
        (ANNOUNCE, "not json"),
    ];
    for (key, value) in cases {
        let mut kv = kv_of(&sample());
        kv.insert((*key).to_owned(), (*value).to_owned());
        let result = decode(&kv);
        assert_eq!(
            invalid_key(result.clone()),
            *key,
            "{key}={value:?}: {result:?}"
        );
        let message = result.expect_err("checked above").to_string();
        assert!(message.contains(key), "message names the key: {message}");
        assert!(
            message.contains("expected"),
            "message says what is expected: {message}"
        );
    }
}

#[test]
fn unknown_volley_keys_are_ignored() {
    let mut kv = kv_of(&sample());
    kv.insert("volley.future".to_owned(), "whatever".to_owned());
    kv.insert("other.key".to_owned(), "x".to_owned());
    assert_eq!(decode(&kv), Ok(sample()));
}

#[test]
fn long_garbage_is_shortened_in_errors() {
    let mut kv = kv_of(&sample());
    kv.insert(STATE.to_owned(), "x".repeat(50_000));
    let error = decode(&kv).expect_err("garbage state");
    let message = error.to_string();
    assert!(
        message.len() < 400,
        "message stays short: {} bytes",
        message.len()
    );
    assert!(message.contains("(50000 bytes)"), "{message}");
}

#[test]
fn phase_is_limited_to_64_characters() {
    let mut info = sample();
    info.phase = Some("é".repeat(MAX_PHASE_CHARS));
    info.validate().expect("64 characters (128 bytes) are fine");
    info.phase = Some("é".repeat(MAX_PHASE_CHARS + 1));
    assert_eq!(info.validate().map_err(|e| e.key()), Err(PHASE));
}

#[test]
fn validate_refuses_what_peers_would_refuse() {
    let mut info = sample();
    info.capacity = 0.0;
    assert_eq!(info.validate().map_err(|e| e.key()), Err(CAPACITY));
    info.capacity = f64::NAN;
    assert_eq!(info.validate().map_err(|e| e.key()), Err(CAPACITY));

    let mut info = sample();
    info.api = addr("10.0.0.1:0");
    assert_eq!(info.validate().map_err(|e| e.key()), Err(API));

    let mut info = sample();
    info.quic = SocketAddr::V6(std::net::SocketAddrV6::new(
        "fd00::1".parse().expect("ip"),
        7282,
        7,
        0,
    ));
    assert_eq!(
        info.validate().map_err(|e| e.key()),
        Err(QUIC),
        "a flow label is not gossiped"
    );

    let mut info = sample();
    info.test = Some("has space".to_owned());
    assert_eq!(info.validate().map_err(|e| e.key()), Err(TEST));

    let mut info = sample();
    info.version = String::new();
    assert_eq!(info.validate().map_err(|e| e.key()), Err(VERSION));
}

#[test]
fn agent_states_round_trip() {
    for state in AgentState::ALL {
        assert_eq!(state.as_str().parse::<AgentState>(), Ok(state));
        assert_eq!(state.to_string(), state.as_str());
    }
}

#[test]
fn labels_parse_and_print() {
    let labels = Labels::parse("zone=a,pool=,node.kubernetes.io/instance-type=m5.large")
        .expect("valid labels");
    assert_eq!(labels.len(), 3);
    assert_eq!(labels.get("pool"), Some(""));
    assert_eq!(labels.get("zone"), Some("a"));
    assert_eq!(
        labels.to_string(),
        "node.kubernetes.io/instance-type=m5.large,pool=,zone=a"
    );
    assert_eq!(Labels::parse(""), Ok(Labels::new()));
}

#[test]
fn labels_refuse_bad_input() {
    for text in [
        "zone=a,zone=b",
        "=a",
        "zone=a,",
        "zone=a=b",
        "ZONE=a",
        "zone a=b",
        "zone=a\u{7}",
    ] {
        assert!(Labels::parse(text).is_err(), "{text:?} must be refused");
    }
    let long = format!("k={}", "v".repeat(MAX_LABELS_BYTES));
    assert!(Labels::parse(&long).is_err());

    let mut labels = Labels::new();
    assert!(labels.insert("k", &"v".repeat(MAX_LABELS_BYTES)).is_err());
    assert!(
        labels.is_empty(),
        "a refused insert leaves the labels unchanged"
    );
    assert!(labels.insert("k", "a,b").is_err());
    labels.insert("k", "v").expect("plain label");
    assert_eq!(labels.iter().count(), 1);
}

#[test]
fn announcements_are_checked() {
    let good = sample().announcement.expect("sample has one");
    let json = good.encode().expect("valid");
    assert_eq!(Announcement::decode(&json), Ok(good.clone()));

    let with_extra = json.replace(r#""rev":3"#, r#""rev":3,"plan":"inline""#);
    assert!(
        Announcement::decode(&with_extra).is_err(),
        "unknown fields are refused"
    );

    let mut big = good.clone();
    big.origin = "o".repeat(250);
    big.id = "i".repeat(MAX_TEST_ID_CHARS);
    big.digest = "d".repeat(128);
    assert!(
        big.encode().is_ok(),
        "a large but legal announcement fits in 1 kB"
    );

    let mut bad = good.clone();
    bad.digest = "sha256 abc".to_owned();
    assert_eq!(bad.encode().map_err(|e| e.key()), Err(ANNOUNCE));
    let mut bad = good.clone();
    bad.origin = String::new();
    assert!(bad.encode().is_err());
    let mut bad = good;
    bad.id = "x".repeat(MAX_TEST_ID_CHARS + 1);
    assert!(bad.encode().is_err());

    let oversized = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_ANNOUNCEMENT_BYTES));
    let error = Announcement::decode(&oversized).expect_err("too big");
    assert!(error.to_string().contains("1024 bytes"), "{error}");
}

fn arb_info() -> impl Strategy<Value = MemberInfo> {
    (
        "[a-z0-9.-]{1,20}",
        any::<u64>(),
        any::<u16>().prop_map(|port| port.max(1)),
        1u32..10_000,
        proptest::collection::btree_map("[a-z0-9._/-]{1,12}", "[^,=\\p{Cc}]{0,12}", 0..5),
        prop_oneof![Just(None), "[a-zA-Z0-9._:-]{1,40}".prop_map(Some)],
        prop_oneof![Just(None), "[^\\p{Cc}]{0,64}".prop_map(Some)],
        proptest::sample::select(AgentState::ALL.to_vec()),
    )
        .prop_map(
            |(node_id, generation, port, capacity_milli, labels, test, phase, state)| {
                let ip = std::net::Ipv4Addr::new(10, 1, (port >> 8) as u8, port as u8);
                let mut info = MemberInfo::new(
                    node_id,
                    generation,
                    SocketAddr::from((ip, port)),
                    SocketAddr::from((ip, port.wrapping_add(1).max(1))),
                    SocketAddr::from((ip, port.wrapping_add(2).max(1))),
                    f64::from(capacity_milli) / 1000.0,
                );
                for (key, value) in labels {
                    info.labels
                        .insert(&key, &value)
                        .expect("generated labels are valid");
                }
                info.test = test;
                info.phase = phase;
                info.state = state;
                info
            },
        )
}

proptest! {
    #[test]
    fn valid_infos_round_trip(info in arb_info()) {
        prop_assert_eq!(info.validate(), Ok(()));
        let kv = kv_of(&info);
        let decoded = MemberInfo::from_kv(&info.node_id, info.generation, info.gossip_addr, &kv);
        prop_assert_eq!(decoded, Ok(info));
    }

    #[test]
    fn garbage_values_never_panic(
        key in proptest::sample::select(ALL.to_vec()),
        value in any::<String>(),
    ) {
        let mut kv = kv_of(&sample());
        kv.insert(key.to_owned(), value);
        // Either accepted or refused with a reason; never a panic.
        let _ = decode(&kv);
    }

    #[test]
    fn garbage_maps_never_panic(
        kv in proptest::collection::btree_map(
            proptest::sample::select(ALL.to_vec()).prop_map(str::to_owned),
            ".{0,80}",
            0..ALL.len(),
        ),
    ) {
        if let Err(error) = decode(&kv) {
            prop_assert!(ALL.contains(&error.key()));
        }
    }
}
