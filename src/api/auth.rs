//! Bearer-token authentication of the mutating endpoints: the
//! [`SecretToken`] type (never printed, compared in constant time) and the
//! check of an `Authorization` header against the agent's configuration.

use std::fmt;

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::error::AuthFailure;

/// The agent's API token. `Debug` and `Display` print `<redacted>`; the
/// only way to the text is [`SecretToken::expose_secret`], used to build
/// the client's `Authorization` header.
#[derive(Clone)]
pub struct SecretToken(String);

/// Why a token text cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the API token is empty (a token file must hold the token on one line)")]
    Empty,
    /// Position only: the token itself must not reach logs.
    #[error(
        "the API token has a character at byte {position} that cannot travel in an HTTP \
         header; use visible ASCII without spaces (e.g. `openssl rand -hex 32`)"
    )]
    BadCharacter { position: usize },
}

/// Who may call the mutating endpoints.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub(crate) token: Option<SecretToken>,
    /// Only consulted without a token: lets anyone mutate (loopback demo).
    pub(crate) allow_unauthenticated: bool,
}

// === impl SecretToken ===

impl SecretToken {
    /// A token from text as read from a token file: surrounding whitespace
    /// (the file's trailing newline) is dropped; the rest must be visible
    /// ASCII.
    pub fn new(text: &str) -> Result<Self, TokenError> {
        let token = text.trim();
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        if let Some(position) = token.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(TokenError::BadCharacter { position });
        }
        Ok(Self(token.to_owned()))
    }

    /// The token text, for sending it. Keep it out of logs and messages.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Constant-time equality with `candidate`: both sides are hashed first
    /// so neither the comparison time nor an early length check tells an
    /// attacker how much of a guess was right.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let ours = ring::digest::digest(&ring::digest::SHA256, self.0.as_bytes());
        let theirs = ring::digest::digest(&ring::digest::SHA256, candidate);
        let difference = ours
            .as_ref()
            .iter()
            .zip(theirs.as_ref())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        difference == 0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

impl fmt::Display for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// === impl Auth ===

impl Auth {
    /// Whether a request with `headers` may call a mutating endpoint.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), AuthFailure> {
        let Some(token) = &self.token else {
            return if self.allow_unauthenticated {
                Ok(())
            } else {
                Err(AuthFailure::NotConfigured)
            };
        };
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(match headers.contains_key(AUTHORIZATION) {
                true => AuthFailure::Malformed,
                false => AuthFailure::Missing,
            });
        };
        let presented = bearer(value.as_bytes()).ok_or(AuthFailure::Malformed)?;
        if token.matches(presented) {
            Ok(())
        } else {
            Err(AuthFailure::Wrong)
        }
    }
}

/// The credentials of a `Bearer <token>` header value (scheme in any case,
/// RFC 7235), or `None` for another scheme or an empty token.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    let (scheme, rest) = value.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) || rest.first() != Some(&b' ') {
        return None;
    }
    let credentials = rest.trim_ascii();
    (!credentials.is_empty()).then_some(credentials)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn token(text: &str) -> SecretToken {
        SecretToken::new(text).expect("valid test token")
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                AUTHORIZATION,
                HeaderValue::from_str(value).expect("valid header"),
            );
        }
        map
    }

    #[test]
    fn tokens_are_trimmed_and_checked() {
        assert_eq!(token("  s3cret\n").expose_secret(), "s3cret");
        assert_eq!(SecretToken::new(" \n").err(), Some(TokenError::Empty));
        assert_eq!(
            SecretToken::new("ab cd").err(),
            Some(TokenError::BadCharacter { position: 2 })
        );
        assert_eq!(
            SecretToken::new("tök").err(),
            Some(TokenError::BadCharacter { position: 1 })
        );
    }

    #[test]
    fn tokens_never_print() {
        let secret = token("hunter2-very-secret");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert!(!format!("{secret:?}").contains("hunter2"));
        let error = SecretToken::new("hunter2 x").expect_err("space");
        assert!(!error.to_string().contains("hunter2"));
    }

    #[test]
    fn matching_is_exact() {
        let secret = token("abc123");
        assert!(secret.matches(b"abc123"));
        assert!(!secret.matches(b"abc12"));
        assert!(!secret.matches(b"abc1234"));
        assert!(!secret.matches(b"ABC123"));
        assert!(!secret.matches(b""));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bEaReR   abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bearerabc"), None);
        assert_eq!(bearer(b"Basic YWJj"), None);
        assert_eq!(bearer(b"Be"), None);
    }

    #[test]
    fn check_covers_every_case() {
        let auth = Auth {
            token: Some(token("abc123")),
            allow_unauthenticated: false,
        };
        assert_eq!(auth.check(&headers(&[])), Err(AuthFailure::Missing));
        assert_eq!(
            auth.check(&headers(&["Basic abc123"])),
            Err(AuthFailure::Malformed)
        );
        assert_eq!(
            auth.check(&headers(&["Bearer nope"])),
            Err(AuthFailure::Wrong)
        );
        assert_eq!(auth.check(&headers(&["Bearer abc123"])), Ok(()));
        assert_eq!(
            auth.check(&headers(&["Bearer abc123", "Bearer abc123"])),
            Err(AuthFailure::Malformed),
            "two Authorization headers are ambiguous"
        );

        // A configured token is always required, even with the demo switch on.
        let both = Auth {
            allow_unauthenticated: true,
            ..auth
        };
        assert_eq!(both.check(&headers(&[])), Err(AuthFailure::Missing));

        let none = Auth {
            token: None,
            allow_unauthenticated: false,
        };
        assert_eq!(
            none.check(&headers(&["Bearer abc123"])),
            Err(AuthFailure::NotConfigured)
        );
        let open = Auth {
            token: None,
            allow_unauthenticated: true,
        };
        assert_eq!(open.check(&headers(&[])), Ok(()));
    }
}
