use super::*;

const NOW: i64 = 1_750_000_000;

fn url<'a>(host: &'a str, path: &'a str) -> CookieUrl<'a> {
    CookieUrl {
        https: false,
        host,
        path,
    }
}

fn header(jar: &mut CookieJar, u: CookieUrl<'_>) -> String {
    let mut s = String::new();
    jar.header_into(u, NOW, &mut s);
    s
}

#[test]
fn set_cookie_attributes_parse() {
    let c = SetCookie::parse(
        "sid=\"abc\"; Domain=.Example.com; Path=/app; Secure; HttpOnly; Max-Age=60; SameSite=Lax",
    )
    .expect("parses");
    assert_eq!(c.name, "sid");
    assert_eq!(c.value, "abc");
    assert_eq!(c.domain, "example.com");
    assert_eq!(c.path, "/app");
    assert!(c.secure && c.http_only);
    assert_eq!(c.max_age, Some(60));
    assert_eq!(c.expiry(NOW), Some(NOW + 60));
    assert!(SetCookie::parse("novalue").is_none());
    assert!(SetCookie::parse("=v").is_none());
    assert!(SetCookie::parse("bad name=v").is_none());
}

#[test]
fn cookie_dates_in_the_usual_forms() {
    let t = Some(1_445_412_480);
    assert_eq!(parse_cookie_date("Wed, 21 Oct 2015 07:28:00 GMT"), t);
    assert_eq!(parse_cookie_date("Wednesday, 21-Oct-15 07:28:00 GMT"), t);
    assert_eq!(parse_cookie_date("Wed Oct 21 07:28:00 2015"), t);
    assert_eq!(parse_cookie_date("Wed, 32 Oct 2015 07:28:00 GMT"), None);
    assert_eq!(parse_cookie_date("garbage"), None);
    assert_eq!(parse_cookie_date("Wed, 21 Oct 2015 25:28:00 GMT"), None);
}

#[test]
fn host_only_cookies_stay_on_their_host() {
    let mut jar = CookieJar::default();
    assert!(jar.store_header(url("a.test", "/login"), "sid=1", NOW));
    assert_eq!(header(&mut jar, url("a.test", "/x")), "sid=1");
    assert_eq!(header(&mut jar, url("sub.a.test", "/x")), "");
    assert_eq!(header(&mut jar, url("b.test", "/x")), "");
}

#[test]
fn domain_cookies_reach_subdomains_but_not_strangers() {
    let mut jar = CookieJar::default();
    assert!(jar.store_header(url("www.a.test", "/"), "d=1; Domain=a.test", NOW));
    assert_eq!(header(&mut jar, url("api.a.test", "/")), "d=1");
    assert_eq!(header(&mut jar, url("a.test", "/")), "d=1");
    assert_eq!(header(&mut jar, url("xa.test", "/")), "");
    // A host may not set a cookie for another domain, nor for an IP it is not.
    assert!(!jar.store_header(url("www.a.test", "/"), "e=1; Domain=b.test", NOW));
    assert!(!jar.store_header(url("127.0.0.1", "/"), "e=1; Domain=0.0.1", NOW));
    assert!(jar.store_header(url("127.0.0.1", "/"), "e=1; Domain=127.0.0.1", NOW));
}

#[test]
fn paths_match_on_segment_boundaries_and_default_to_the_directory() {
    let mut jar = CookieJar::default();
    jar.store_header(url("a.test", "/app/login?x=1"), "p=1", NOW);
    assert_eq!(header(&mut jar, url("a.test", "/app")), "p=1");
    assert_eq!(header(&mut jar, url("a.test", "/app/page")), "p=1");
    assert_eq!(header(&mut jar, url("a.test", "/apple")), "");
    assert_eq!(header(&mut jar, url("a.test", "/")), "");
}

#[test]
fn longer_paths_come_first_then_older_cookies() {
    let mut jar = CookieJar::default();
    jar.store_header(url("a.test", "/"), "a=1; Path=/", NOW);
    jar.store_header(url("a.test", "/"), "b=2; Path=/app", NOW);
    jar.store_header(url("a.test", "/"), "c=3; Path=/", NOW);
    assert_eq!(header(&mut jar, url("a.test", "/app/x")), "b=2; a=1; c=3");
}

#[test]
fn replacing_keeps_the_creation_order_and_expiry_deletes() {
    let mut jar = CookieJar::default();
    jar.store_header(url("a.test", "/"), "a=1", NOW);
    jar.store_header(url("a.test", "/"), "b=2", NOW);
    jar.store_header(url("a.test", "/"), "a=3", NOW);
    assert_eq!(header(&mut jar, url("a.test", "/")), "a=3; b=2");
    jar.store_header(url("a.test", "/"), "a=; Max-Age=0", NOW);
    assert_eq!(header(&mut jar, url("a.test", "/")), "b=2");
    jar.store_header(
        url("a.test", "/"),
        "b=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        NOW,
    );
    assert!(jar.is_empty());
    jar.store_header(url("a.test", "/"), "t=1; Max-Age=10", NOW);
    let mut later = String::new();
    jar.header_into(url("a.test", "/"), NOW + 11, &mut later);
    assert_eq!(later, "");
    assert!(jar.is_empty(), "expired cookies are dropped when seen");
}

#[test]
fn secure_cookies_only_over_https() {
    let mut jar = CookieJar::default();
    jar.store_header(url("a.test", "/"), "s=1; Secure", NOW);
    assert_eq!(header(&mut jar, url("a.test", "/")), "");
    let https = CookieUrl {
        https: true,
        host: "a.test",
        path: "/",
    };
    assert_eq!(header(&mut jar, https), "s=1");
}

#[test]
fn the_jar_is_bounded() {
    let mut jar = CookieJar::default();
    for i in 0..MAX_COOKIES + 10 {
        jar.store_header(url("a.test", "/"), &format!("c{i}=v"), NOW);
    }
    assert_eq!(jar.len(), MAX_COOKIES);
    assert!(!header(&mut jar, url("a.test", "/")).contains("c0="));
    let huge = format!("big={}", "x".repeat(MAX_COOKIE_BYTES));
    assert!(!jar.store_header(url("a.test", "/"), &huge, NOW));
}

#[test]
fn remove_by_name_or_all_for_a_url() {
    let mut jar = CookieJar::default();
    jar.store_header(url("a.test", "/"), "a=1", NOW);
    jar.store_header(url("a.test", "/"), "b=2", NOW);
    jar.store_header(url("b.test", "/"), "c=3", NOW);
    jar.remove(url("a.test", "/"), Some("a"), NOW);
    assert_eq!(header(&mut jar, url("a.test", "/")), "b=2");
    jar.remove(url("a.test", "/"), None, NOW);
    assert_eq!(header(&mut jar, url("a.test", "/")), "");
    assert_eq!(header(&mut jar, url("b.test", "/")), "c=3");
}
