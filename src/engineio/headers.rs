//! The request headers a session keeps from its handshake, in one allocation: every idle
//! connection holds them for its whole life, and an `http::HeaderMap` of a browser's dozen
//! headers costs well over a kilobyte (buckets, index table, a buffer per value), where
//! their text alone is a few hundred bytes.

use std::fmt;

/// Header lines `name:value\n`, names lowercase as HTTP/1 parsing leaves them. A name never
/// holds `:` and a value never holds `\n`, so the text splits back unambiguously.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Box<[u8]>);

impl Headers {
    /// Keep `headers` in their order, up to `budget` bytes of names and values (nobody makes
    /// a session hold hundreds of kilobytes of them): the header that would pass the budget
    /// and those after it are dropped. Copied: hyper's parsed values share its read buffer,
    /// which they would keep alive.
    pub fn keep(headers: &http::HeaderMap, budget: usize) -> Headers {
        let mut text = Vec::new();
        let mut used = 0;
        for (name, value) in headers {
            used += name.as_str().len() + value.len();
            if used > budget {
                break;
            }
            text.extend_from_slice(name.as_str().as_bytes());
            text.push(b':');
            text.extend_from_slice(value.as_bytes());
            text.push(b'\n');
        }
        Headers(text.into_boxed_slice())
    }

    /// Every header, in order, as name and raw value (repeated names appear as often as
    /// they were sent).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                let name = std::str::from_utf8(&line[..colon]).ok()?;
                Some((name, &line[colon + 1..]))
            })
    }

    /// Every header whose value is visible ASCII (what `HeaderValue::to_str` accepts), as text.
    pub fn iter_str(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter()
            .filter_map(|(name, value)| Some((name, visible_ascii(value)?)))
    }

    /// The first value of `name` (any case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The first value of `name` (any case) as text, when it is visible ASCII.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        visible_ascii(self.get(name)?)
    }

    /// Whether `name` (any case) was sent.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether no header was kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `value` as text when every byte is visible ASCII or a tab, as `HeaderValue::to_str` asks.
fn visible_ascii(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| b == b'\t' || (32..127).contains(&b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(name, value)| (name, String::from_utf8_lossy(value))),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn map(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn headers_come_back_in_order_with_repeats_and_colons_in_values() {
        let kept = Headers::keep(
            &map(&[
                ("host", b"127.0.0.1:3000"),
                ("cookie", b"a=1"),
                ("cookie", b"b=2"),
                ("x-empty", b""),
            ]),
            usize::MAX,
        );
        let all: Vec<(&str, &[u8])> = kept.iter().collect();
        assert_eq!(
            all,
            [
                ("host", &b"127.0.0.1:3000"[..]),
                ("cookie", b"a=1"),
                ("cookie", b"b=2"),
                ("x-empty", b""),
            ]
        );
        assert_eq!(kept.get_str("Cookie"), Some("a=1"));
        assert_eq!(kept.get_str("HOST"), Some("127.0.0.1:3000"));
        assert!(kept.contains("x-empty"));
        assert!(!kept.contains("origin"));
    }

    #[test]
    fn a_value_that_is_not_visible_ascii_is_no_text_but_stays_bytes() {
        let kept = Headers::keep(&map(&[("x-raw", b"caf\xe9"), ("x-ok", b"a\tb")]), 1000);
        assert_eq!(kept.get("x-raw"), Some(&b"caf\xe9"[..]));
        assert_eq!(kept.get_str("x-raw"), None);
        let text: Vec<_> = kept.iter_str().collect();
        assert_eq!(text, [("x-ok", "a\tb")]);
    }

    #[test]
    fn the_budget_counts_names_and_values_and_drops_the_header_that_passes_it() {
        let headers = map(&[("aa", b"12"), ("bb", b"34"), ("cc", b"5")]);
        let kept = Headers::keep(&headers, 8);
        let names: Vec<&str> = kept.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["aa", "bb"]);
        assert!(Headers::keep(&headers, 3).is_empty());
    }
}
