//! Percent-encoding, with the `percent-encoding` crate as its one owner:
//! the byte sets Volley writes with and the decoder it reads with.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};

/// Everything but RFC 3986's unreserved bytes (`A-Z a-z 0-9 - _ . ~`).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Everything but `A-Z a-z 0-9 . _ -`: what a file name may keep.
const FILE_NAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

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
    }
}
