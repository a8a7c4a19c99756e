//! What route templates read for one event: arguments (parsed only if a template needs
//! them), the socket id, and the handshake's auth and query.

use std::cell::OnceCell;

use serde_json::Value;

use crate::adapter::Adapter;
use crate::routing::Scope;
use crate::socketio::Socket;

/// Template values for one event of one socket.
pub(crate) struct EventScope<'a> {
    socket: &'a Socket,
    /// Its namespace's rooms, for `when = { in_room = … }`.
    adapter: &'a dyn Adapter,
    sid: crate::engineio::Sid,
    raw_args: Option<&'a [u8]>,
    args: OnceCell<Option<Vec<Value>>>,
    auth: OnceCell<Option<Value>>,
    data: OnceCell<Value>,
    claims: OnceCell<Option<std::sync::Arc<Value>>>,
}

impl<'a> EventScope<'a> {
    /// A scope for `socket` of the namespace `adapter` holds; `raw_args` are the event's
    /// arguments as received (`None` for connect and disconnect routes).
    pub(crate) fn new(
        socket: &'a Socket,
        adapter: &'a dyn Adapter,
        raw_args: Option<&'a [u8]>,
    ) -> Self {
        EventScope {
            socket,
            adapter,
            sid: socket.id(),
            raw_args,
            args: OnceCell::new(),
            auth: OnceCell::new(),
            data: OnceCell::new(),
            claims: OnceCell::new(),
        }
    }
}

impl Scope for EventScope<'_> {
    fn args(&self) -> Option<&[Value]> {
        self.args
            .get_or_init(|| {
                let raw = self.raw_args?;
                let mut text = Vec::with_capacity(raw.len() + 2);
                text.push(b'[');
                text.extend_from_slice(raw);
                text.push(b']');
                serde_json::from_slice(&text).ok()
            })
            .as_deref()
    }

    fn socket_id(&self) -> &str {
        self.sid.as_str()
    }

    fn socket_data(&self) -> Option<&Value> {
        Some(self.data.get_or_init(|| self.socket.data()))
    }

    fn auth(&self) -> Option<&Value> {
        self.auth
            .get_or_init(|| match self.socket.auth() {
                Some(raw) => serde_json::from_str(raw.get()).ok(),
                // socket.io's `handshake.auth` is `{}` when the client sent none.
                None => Some(Value::Object(serde_json::Map::new())),
            })
            .as_ref()
    }

    fn query(&self, key: &str) -> Option<&str> {
        self.socket.handshake().query_value(key)
    }

    fn jwt(&self) -> Option<&Value> {
        self.claims.get_or_init(|| self.socket.claims()).as_deref()
    }

    fn recovered(&self) -> bool {
        self.socket.recovered()
    }

    fn in_room(&self, room: &str) -> bool {
        self.adapter.is_in(self.sid, room)
    }

    fn room_members(&self, room: &str) -> Option<Vec<String>> {
        Some(self.adapter.presence_members(room, usize::MAX))
    }
}
