//! What cookies and redirects add to a request, apart from the network:
//! the `Cookie` header built from a jar of 5 cookies, 2 `Set-Cookie`s
//! stored, one redirect hop resolved, and the check a request without
//! cookies or redirects pays (an empty jar and a 200). Pure CPU.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Method, header};
use volley::engine::http::Response;
use volley::engine::http::cookies::CookieJar;
use volley::engine::http::follow::{self, Chain};
use volley::engine::http::redirect;

const URL: &str = "http://shop.test:8080/cart/items?page=2";
const NOW: i64 = 1_750_000_000;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("session");

    let ok = Response {
        status: 200,
        ..Response::default()
    };
    group.bench_function("plain request: empty jar, 200", |b| {
        let mut jar = CookieJar::default();
        b.iter(|| {
            let cookie = follow::cookie_header(&mut jar, &[], black_box(URL), || NOW);
            follow::store_cookies(&mut jar, URL, &ok, || NOW);
            black_box((cookie, redirect::is_redirect(ok.status)))
        });
    });

    let mut jar = CookieJar::default();
    let mut set = Response::default();
    for c in [
        "sid=0123456789abcdef; Path=/; HttpOnly",
        "theme=dark; Path=/",
        "cart=42; Path=/cart",
        "consent=yes; Max-Age=3600",
        "ab=variant-b; Domain=shop.test",
    ] {
        set.headers
            .push((header::SET_COOKIE, HeaderValue::from_static(c)));
    }
    follow::store_cookies(&mut jar, URL, &set, || NOW);
    group.bench_function("Cookie header from a jar of 5", |b| {
        b.iter(|| black_box(follow::cookie_header(&mut jar, &[], black_box(URL), || NOW)));
    });

    let mut two = Response::default();
    two.headers.push((
        header::SET_COOKIE,
        HeaderValue::from_static("sid=fedcba9876543210; Path=/; HttpOnly"),
    ));
    two.headers.push((
        header::SET_COOKIE,
        HeaderValue::from_static("seen=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT"),
    ));
    group.bench_function("store 2 Set-Cookies", |b| {
        let mut jar = jar.clone();
        b.iter(|| follow::store_cookies(&mut jar, black_box(URL), &two, || NOW));
    });

    let mut hop = Response {
        status: 302,
        ..Response::default()
    };
    hop.headers.push((
        header::LOCATION,
        HeaderValue::from_static("../checkout?step=1"),
    ));
    group.bench_function("one redirect hop resolved", |b| {
        b.iter(|| {
            let mut chain = Chain::new(&Method::POST, black_box(URL), 10);
            black_box(chain.advance(&mut hop));
            black_box(chain)
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
