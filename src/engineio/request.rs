//! What an Engine.IO request asks for, read from its query string.

use super::config::Transport;
use super::error::Error;
use super::sid::Sid;

/// The Engine.IO parameters of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestInfo {
    /// `transport`.
    pub transport: Transport,
    /// `sid`, for requests on an open session.
    pub sid: Option<Sid>,
    /// Whether `EIO=4`.
    pub eio4: bool,
}

impl RequestInfo {
    /// Read the query. An unknown transport is an error; an unknown sid is left for the
    /// session lookup to report (a malformed one can match no session). Nothing is copied:
    /// every poll and POST comes this way.
    pub fn parse(query: Option<&str>) -> Result<RequestInfo, Error> {
        // One pass; the first of a repeated key counts.
        let (mut transport, mut sid, mut eio) = (None, None, None);
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let slot = match &*key {
                "transport" => &mut transport,
                "sid" => &mut sid,
                "EIO" => &mut eio,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        let transport = transport
            .and_then(|t| Transport::parse(&t))
            .ok_or(Error::UnknownTransport)?;
        let sid = match sid {
            None => None,
            Some(s) => Some(s.parse::<Sid>().map_err(|_| Error::UnknownSid)?),
        };
        let eio4 = eio.is_some_and(|v| v == "4");
        Ok(RequestInfo {
            transport,
            sid,
            eio4,
        })
    }

    /// Every query parameter, decoded: what a handshake keeps for the session's life.
    pub fn query(query: Option<&str>) -> Vec<(String, String)> {
        form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_transport_sid_and_version() {
        let sid = Sid::random();
        let q = format!("EIO=4&transport=polling&t=abc&sid={sid}");
        let info = RequestInfo::parse(Some(&q)).unwrap();
        assert_eq!(info.transport, Transport::Polling);
        assert_eq!(info.sid, Some(sid));
        assert!(info.eio4);
        assert_eq!(RequestInfo::query(Some(&q)).len(), 4);
    }

    #[test]
    fn unknown_or_missing_transport_is_code_0() {
        assert_eq!(
            RequestInfo::parse(Some("EIO=4&transport=tobi")),
            Err(Error::UnknownTransport)
        );
        assert_eq!(RequestInfo::parse(None), Err(Error::UnknownTransport));
    }

    #[test]
    fn malformed_sid_is_unknown_and_old_versions_are_flagged() {
        assert_eq!(
            RequestInfo::parse(Some("transport=polling&sid=nope")),
            Err(Error::UnknownSid)
        );
        let info = RequestInfo::parse(Some("EIO=3&transport=websocket")).unwrap();
        assert!(!info.eio4);
    }
}
