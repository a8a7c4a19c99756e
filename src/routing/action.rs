//! Compiled routes and the actions they resolve to. Plain data: the app layer performs
//! actions; nothing here touches a socket.

use bytestring::ByteString;
use serde_json::Value;

use super::template::{Template, ValueTemplate};

/// Who receives a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The sender only.
    Emit,
    /// Every socket of the namespace but the sender.
    Broadcast,
    /// Every socket in a room (but the sender, unless `include_sender`).
    Room {
        /// The room name or template.
        room: Template,
        /// Whether the sender receives it too (`io.to(room)` rather than `socket.to(room)`).
        include_sender: bool,
    },
    /// Every socket of the namespace.
    Io,
}

/// The arguments a delivery carries.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSpec {
    /// The incoming arguments, as received.
    Forward,
    /// A template that yields the whole argument list (`"{args}"`).
    List(ValueTemplate),
    /// One value per argument.
    Values(Vec<ValueTemplate>),
}

/// One delivery of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Deliver {
    /// Who receives it.
    pub target: Target,
    /// The event name delivered; the incoming one when `None`.
    pub event: Option<ByteString>,
    /// The arguments.
    pub data: DataSpec,
    /// socket.io's `volatile`: dropped for a recipient that is behind rather than queued.
    pub volatile: bool,
    /// Another namespace of the server it goes to (`io` or `room` there).
    pub namespace: Option<String>,
    /// With a room target: the room keeps its last messages.
    pub history: Option<HistorySpec>,
}

/// `history = { size, ttl }`: how many messages a room keeps, and how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySpec {
    /// Most messages kept. Defaults to 50.
    pub size: usize,
    /// Longest a message is kept. Defaults to 1 hour.
    pub ttl: std::time::Duration,
}

/// One table of a route: what it joins, leaves, delivers and answers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Step {
    /// A room the sender joins.
    pub join: Option<Template>,
    /// A room the sender leaves.
    pub leave: Option<Template>,
    /// A delivery.
    pub deliver: Option<Deliver>,
    /// The sender's ack answer.
    pub ack: Option<DataSpec>,
    /// A Rhai handler that decides.
    pub script: Option<ScriptRef>,
    /// The app's backend decides (an HTTP route step).
    pub http: Option<HttpCall>,
    /// The step runs only when these hold.
    pub when: Option<super::when::When>,
    /// With `join`: the room's history is sent to the socket once it has joined.
    pub replay: bool,
    /// Its `data` or `ack` reads `{room.size}` / `{room.members}`.
    pub reads_room: bool,
}

/// An HTTP route step: the event is POSTed to `url`, whose answer is a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpCall {
    /// Where the event goes.
    pub url: String,
    /// Longest wait for the answer.
    pub timeout: std::time::Duration,
}

/// A Rhai function in a script file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScriptRef {
    /// The file, as found from the routes file's folder.
    pub path: std::path::PathBuf,
    /// The file as the routes file names it, for messages.
    pub name: String,
    /// The function called. Defaults to `on_event` (`authorize` for auth scripts).
    pub function: String,
}

/// A compiled route: its steps in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Route {
    /// The steps, applied in order.
    pub steps: Vec<Step>,
    /// What the event's arguments must satisfy (`schema = "…"`); checked before any step.
    pub schema: Option<super::schema::EventSchema>,
}

/// Who a resolved delivery reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// The sender.
    Sender,
    /// The namespace, with or without the sender.
    Namespace {
        /// Whether the sender is included.
        include_sender: bool,
    },
    /// A room, with or without the sender.
    Room {
        /// The resolved room name.
        room: String,
        /// Whether the sender is included.
        include_sender: bool,
    },
    /// Another namespace of the server: all of it, or one of its rooms.
    Elsewhere {
        /// The namespace.
        namespace: String,
        /// The room there, if only that room.
        room: Option<String>,
    },
}

/// Arguments of a resolved delivery or ack.
#[derive(Debug, Clone, PartialEq)]
pub enum Args {
    /// The incoming arguments, binary attachments included, as received.
    Forward,
    /// New arguments.
    Values(Vec<Value>),
    /// New arguments holding binary data: `{"_placeholder":true,"num":N}` objects in the
    /// values stand for `attachments[N]`.
    Binary(Vec<Value>, Vec<bytes::Bytes>),
}

/// The actions of one event's route, in order: held inline up to two (most routes resolve to
/// one or two: a delivery, an ack), so resolving a plain route allocates nothing.
pub type Actions = smallvec::SmallVec<[Action; 2]>;

/// What the app layer performs for one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The sender joins a room.
    Join(String),
    /// The sender leaves a room.
    Leave(String),
    /// Deliver an event.
    Deliver {
        /// Who receives it.
        to: Recipients,
        /// The event name: shared, not copied, from the route or the incoming event.
        event: ByteString,
        /// Its arguments.
        args: Args,
        /// Whether a recipient that is behind may miss it (socket.io's `volatile`).
        volatile: bool,
    },
    /// Answer the sender's ack.
    Ack(Args),
    /// Run a script; it decides the actions.
    Script(ScriptRef),
    /// Ask the app's backend; its answer decides the actions.
    Http(HttpCall),
    /// Remove the sender from the namespace (a server-side disconnect).
    Disconnect,
    /// The room keeps the message just delivered to it.
    Remember {
        /// The room.
        room: String,
        /// How much it keeps.
        spec: HistorySpec,
    },
    /// Send the sender what the room keeps (it has just joined).
    Replay(String),
}
