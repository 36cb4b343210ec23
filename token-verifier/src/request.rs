//! The framework-free view of a request that the token check reads, and the RFC 6750 §2.1
//! rules for finding a bearer token in it.

use http::{HeaderMap, Method, Uri, header};

use crate::error::VerifyError;

/// The parts of an HTTP request a token check may read, borrowed from whatever framework
/// holds the request (poem and axum both speak the `http` crate's types).
///
/// A bearer check reads only the `Authorization` header. The method, the request target and
/// the other headers are here for proof-of-possession (DPoP, RFC 9449: the `DPoP` header's
/// proof names the method and the URL it was made for), so that adding it changes what the
/// check does with this view, not what every adapter hands over.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request target as received (behind a gateway, not the public URL: a DPoP check
    /// will combine its path with the API's configured public origin).
    pub uri: &'a Uri,
    /// Every request header.
    pub headers: &'a HeaderMap,
}

impl<'a> RequestParts<'a> {
    pub fn new(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Self {
        Self {
            method,
            uri,
            headers,
        }
    }

    /// The view of an `http::Request` (tower services see requests in this form).
    pub fn of_request<B>(request: &'a http::Request<B>) -> Self {
        Self::new(request.method(), request.uri(), request.headers())
    }

    /// The view of request parts already split from their body (axum extractors get these).
    pub fn of_parts(parts: &'a http::request::Parts) -> Self {
        Self::new(&parts.method, &parts.uri, &parts.headers)
    }
}

/// How an access token was presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer …` (RFC 6750).
    Bearer,
    /// `Authorization: DPoP …` with a `DPoP` proof header (RFC 9449 §7.1).
    Dpop,
}

impl Scheme {
    /// The scheme's name in a `WWW-Authenticate` challenge.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Bearer => "Bearer",
            Scheme::Dpop => "DPoP",
        }
    }
}

/// The token of an `Authorization: Bearer …` or `Authorization: DPoP …` header, with its
/// scheme. No header, or another scheme, is no token; two headers or an empty token is a
/// malformed one.
pub(crate) fn credentials(headers: &HeaderMap) -> Result<Option<(Scheme, &str)>, VerifyError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(VerifyError::Malformed);
    }
    let value = value.to_str().map_err(|_| VerifyError::Malformed)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Ok(None);
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(VerifyError::Malformed);
    }
    Ok(Some((scheme, token)))
}

/// The one `DPoP` header's proof; `None` if there is none or more than one (RFC 9449 §4.3:
/// exactly one).
pub(crate) fn dpop_proof(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all("dpop").iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok().map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, VerifyError> {
        Ok(credentials(headers)?
            .and_then(|(scheme, token)| (scheme == Scheme::Bearer).then_some(token)))
    }

    fn headers_with(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_bearer_scheme_is_matched_case_insensitively() {
        assert_eq!(
            bearer_token(&headers_with(&["bearer abc"])),
            Ok(Some("abc"))
        );
        assert_eq!(
            bearer_token(&headers_with(&["Bearer  abc "])),
            Ok(Some("abc"))
        );
    }

    #[test]
    fn dpop_and_bearer_schemes_are_told_apart() {
        assert_eq!(
            credentials(&headers_with(&["DPoP abc"])),
            Ok(Some((Scheme::Dpop, "abc")))
        );
        assert_eq!(
            credentials(&headers_with(&["dpop  abc "])),
            Ok(Some((Scheme::Dpop, "abc")))
        );
        assert_eq!(
            credentials(&headers_with(&["Bearer abc"])),
            Ok(Some((Scheme::Bearer, "abc")))
        );
        assert_eq!(
            credentials(&headers_with(&["DPoP"])),
            Err(VerifyError::Malformed)
        );
        assert_eq!(credentials(&headers_with(&["Basic eA=="])), Ok(None));
    }

    #[test]
    fn exactly_one_dpop_header_is_a_proof() {
        let mut headers = HeaderMap::new();
        assert_eq!(dpop_proof(&headers), None);
        headers.append("dpop", HeaderValue::from_static("a.b.c"));
        assert_eq!(dpop_proof(&headers), Some("a.b.c"));
        headers.append("dpop", HeaderValue::from_static("d.e.f"));
        assert_eq!(dpop_proof(&headers), None);
    }

    #[test]
    fn another_scheme_or_no_header_is_no_token() {
        assert_eq!(bearer_token(&headers_with(&[])), Ok(None));
        assert_eq!(
            bearer_token(&headers_with(&["Basic Zm9vOmJhcg=="])),
            Ok(None)
        );
    }

    #[test]
    fn an_empty_bearer_or_two_headers_are_malformed() {
        assert_eq!(
            bearer_token(&headers_with(&["Bearer"])),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            bearer_token(&headers_with(&["Bearer   "])),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            bearer_token(&headers_with(&["Bearer a", "Bearer b"])),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn a_header_that_is_not_visible_ascii_is_malformed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert_eq!(bearer_token(&headers), Err(VerifyError::Malformed));
    }
}
