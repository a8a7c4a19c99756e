//! `when = { … }` on a route step: a few predicates, all of which must hold for the step to
//! run — still data, never a language (anything more is a script's job).

use serde_json::Value;

use super::template::{Scope, Template, ValueTemplate};

/// The predicates of one step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct When {
    /// `in_room = "{0.room}"`: the socket is in that room.
    pub in_room: Option<Template>,
    /// `equals = ["{socket.data.role}", "host"]`: both resolve, to equal values.
    pub equals: Option<(ValueTemplate, ValueTemplate)>,
    /// `exists = "{jwt.sub}"`: it resolves, to something other than null.
    pub exists: Option<ValueTemplate>,
}

impl When {
    /// Whether every predicate holds for `scope`.
    pub fn holds(&self, scope: &dyn Scope) -> bool {
        let in_room = self.in_room.as_ref().is_none_or(|t| {
            t.resolve_text(scope)
                .is_some_and(|room| scope.in_room(&room))
        });
        let equals = self.equals.as_ref().is_none_or(
            |(a, b)| matches!((a.resolve(scope), b.resolve(scope)), (Some(x), Some(y)) if x == y),
        );
        let exists = self
            .exists
            .as_ref()
            .is_none_or(|t| t.resolve(scope).is_some_and(|v| v != Value::Null));
        in_room && equals && exists
    }
}
