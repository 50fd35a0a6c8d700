//! Who is calling the admin API. Today: a bearer token from the config,
//! compared in constant time. The check returns an [`Identity`], so a
//! client-certificate subject (mTLS on the admin listener) can become a
//! second way to produce one without touching the methods.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tonic::metadata::MetadataMap;

use crate::config::Secret;

use super::ApiError;

/// The authenticated caller, named in audit events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The holder of the configured admin token, by its configured name.
    Token { name: Arc<str> },
}

impl Identity {
    /// The name audit events show.
    pub fn name(&self) -> &str {
        match self {
            Identity::Token { name } => name,
        }
    }
}

/// Checks the bearer token. The configured token is never kept in clear:
/// both it and the presented one are MACed with a per-process random key,
/// and the MACs (equal length whatever the inputs) are compared with a fold
/// over every byte, so timing reveals neither length nor prefix.
#[derive(Clone)]
pub struct TokenAuth {
    key: [u8; 32],
    expected: [u8; 32],
    name: Arc<str>,
}

impl std::fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuth")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn mac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: the error branch cannot happen; it
    // falls back to a zero key rather than panic.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default()));
    m.update(data);
    m.finalize().into_bytes().into()
}

impl TokenAuth {
    /// Accepts `token`, naming its holder `name` in audit events.
    pub fn new(token: &Secret, name: &str) -> Self {
        let key: [u8; 32] = rand::random();
        TokenAuth {
            expected: mac(&key, token.expose().as_bytes()),
            key,
            name: name.into(),
        }
    }

    /// Whether `presented` is the token (in constant time; never for an
    /// empty string).
    pub fn matches(&self, presented: &str) -> bool {
        let got = mac(&self.key, presented.as_bytes());
        let diff = got
            .iter()
            .zip(&self.expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0 && !presented.is_empty()
    }

    /// The identity of a request's caller, or [`ApiError::Unauthenticated`].
    pub fn identify(&self, metadata: &MetadataMap) -> Result<Identity, ApiError> {
        let presented = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if self.matches(presented) {
            Ok(Identity::Token {
                name: self.name.clone(),
            })
        } else {
            Err(ApiError::Unauthenticated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn with(auth: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(a) = auth {
            m.insert("authorization", MetadataValue::try_from(a).unwrap());
        }
        m
    }

    #[test]
    fn only_the_exact_token_passes_and_failures_look_alike() {
        let token = "a-very-long-admin-token-of-32-bytes-or-more";
        let auth = TokenAuth::new(&Secret::new(token), "support");
        let ok = auth
            .identify(&with(Some(&format!("Bearer {token}"))))
            .unwrap();
        assert_eq!(ok.name(), "support");
        let bad = [
            None,
            Some(token.to_string()),
            Some(format!("Bearer {token}x")),
            Some(format!("Bearer {}", &token[..10])),
            Some("Bearer ".to_string()),
            Some(format!("bearer {token}")),
        ];
        for b in bad {
            let e = tonic::Status::from(auth.identify(&with(b.as_deref())).unwrap_err());
            assert_eq!(e.code(), tonic::Code::Unauthenticated);
            assert_eq!(e.message(), crate::api::UNAUTHENTICATED, "{b:?}");
        }
        assert!(!format!("{auth:?}").contains(token));
    }
}
