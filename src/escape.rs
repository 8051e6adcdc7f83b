//! Percent-encoding, with the `percent-encoding` crate as its one owner:
//! the byte sets Volley writes with and the decoder it reads with.

use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};

/// Everything but RFC 3986's unreserved bytes (`A-Z a-z 0-9 - _ . ~`).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Everything but `A-Z a-z 0-9 . _ -`: what a file name may keep.
const FILE_NAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// What separates `KEY=VALUE&KEY=VALUE` options and `k=v,k=v` lists
/// (and `%` itself, and controls).
const OPTION: &AsciiSet = &CONTROLS.add(b'%').add(b'&').add(b',').add(b'=').add(b' ');

/// A value inside `KEY=VALUE&…` options or a `k=v,…` list: only the
/// separators (and `%`) escaped, so it reads as written otherwise.
pub fn option_value(s: &str) -> String {
    utf8_percent_encode(s, OPTION).to_string()
}

/// Decodes `%XX` escapes strictly: a `%` not followed by two hex digits,
/// or bytes that are not UTF-8, are an error saying so.
pub fn decode_strict(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3);
        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            return Err(format!("{s:?}: a % must start an escape such as %2C"));
        }
    }
    percent_decode(bytes)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| format!("{s:?}: escapes do not decode to UTF-8"))
}

/// A query parameter's value: unreserved bytes as they are, the rest `%XX`.
pub fn query_value(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Go's `url.QueryEscape`, as k6 encodes form values: unreserved bytes as
/// they are, space as `+`, everything else `%XX`.
pub fn form_value(s: &str, out: &mut String) {
    for part in utf8_percent_encode(s, UNRESERVED) {
        // A space is the only byte that becomes `%20` (a `%` becomes `%25`).
        if part == "%20" {
            out.push('+');
        } else {
            out.push_str(part);
        }
    }
}

/// `s` with every byte outside `A-Z a-z 0-9 . _ -` written as `%XX`.
pub fn file_name(s: &str) -> String {
    utf8_percent_encode(s, FILE_NAME).to_string()
}

/// Whether `file_name` leaves `b` as it is.
pub fn is_file_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as
/// it is.
pub fn decode(raw: &[u8], out: &mut Vec<u8>) {
    out.extend(percent_decode(raw));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_decoding() {
        assert_eq!(
            query_value("CREATE DATABASE \"k6\""),
            "CREATE%20DATABASE%20%22k6%22"
        );
        assert_eq!(query_value("a-b_c.d~e"), "a-b_c.d~e");
        let mut form = String::new();
        form_value("a b+c*~%", &mut form);
        assert_eq!(form, "a+b%2Bc%2A~%25");
        assert_eq!(file_name("10.0.0.7:7000/x~"), "10.0.0.7%3A7000%2Fx%7E");
        let mut out = Vec::new();
        decode(b"a%41%4%zz%+5%", &mut out);
        assert_eq!(out, b"aA%4%zz%+5%");
        assert_eq!(option_value("a=b&c, d%"), "a%3Db%26c%2C%20d%25");
        assert_eq!(
            decode_strict("a%3Db%26c%2C%20d%25").as_deref(),
            Ok("a=b&c, d%")
        );
        for bad in ["%+5", "%4", "%zz", "%"] {
            assert!(decode_strict(bad).is_err(), "{bad}");
        }
        assert!(decode_strict("%FF").is_err(), "not UTF-8");
    }
}
