//! RHAI — optional handlers: a route or an auth rule names a function in a `.rhai` file.
//! Scripts compile once per (re)load, run sandboxed per event, and return actions; they
//! perform no I/O themselves (the app layer does, as for any route).

mod api;
mod convert;
pub mod engine;
mod pool;
mod scripts;

pub use api::{MAX_ROOM_LOOKUPS, RoomLookup};
pub use pool::{Busy, ScriptPool};
pub use scripts::{
    AuthDecision, CompileError, EventInput, EventOutput, ScriptError, ScriptLimits, ScriptSet,
};
