//! Templates in route strings: `{0}`, `{0.room}`, `{args}`, `{event}`, `{socket.id}`,
//! `{socket.data.KEY}`, `{handshake.auth.KEY}`, `{handshake.query.KEY}`, `{jwt.CLAIM}`,
//! `{room.size}`, `{room.members}`. A string that is exactly one template
//! yields the value itself; inside a longer string it yields its text. `{{` and `}}` are
//! literal braces. Pure: values come from a [`Scope`] the caller provides.

use serde_json::Value;

/// What a template reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `{N}` or `{N.path}`: an argument of the event, or a field of it.
    Arg {
        /// Argument index.
        index: usize,
        /// Field path inside it.
        path: Vec<String>,
    },
    /// `{args}`: every argument.
    Args,
    /// `{event}`: the incoming event's name.
    Event,
    /// `{room.size}`: how many are in the step's room once the step's join or leave is done.
    RoomSize,
    /// `{room.members}`: their socket ids, sorted (at most [`MAX_MEMBERS`]).
    RoomMembers,
    /// `{socket.id}`.
    SocketId,
    /// `{socket.recovered}`: whether the socket came back by connection state recovery.
    SocketRecovered,
    /// `{socket.data}` / `{socket.data.KEY}`.
    SocketData(Vec<String>),
    /// `{handshake.auth}` / `{handshake.auth.KEY}`.
    Auth(Vec<String>),
    /// `{handshake.query.KEY}`.
    Query(String),
    /// `{jwt}` / `{jwt.CLAIM}` / `{jwt.CLAIM.FIELD}`: the socket's verified token claims.
    Jwt(Vec<String>),
}

impl Expr {
    fn parse(text: &str) -> Result<Expr, String> {
        let mut parts = text.split('.');
        let head = parts.next().unwrap_or_default();
        let rest: Vec<String> = parts.map(str::to_owned).collect();
        if rest.iter().any(String::is_empty) {
            return Err(format!("empty field name in `{{{text}}}`"));
        }
        if let Ok(index) = head.parse::<usize>() {
            return Ok(Expr::Arg { index, path: rest });
        }
        match (head, rest.first().map(String::as_str)) {
            ("args", None) => Ok(Expr::Args),
            ("event", None) => Ok(Expr::Event),
            ("room", Some("size")) if rest.len() == 1 => Ok(Expr::RoomSize),
            ("room", Some("members")) if rest.len() == 1 => Ok(Expr::RoomMembers),
            ("socket", Some("id")) if rest.len() == 1 => Ok(Expr::SocketId),
            ("socket", Some("recovered")) if rest.len() == 1 => Ok(Expr::SocketRecovered),
            ("socket", Some("data")) => Ok(Expr::SocketData(rest[1..].to_vec())),
            ("handshake", Some("auth")) => Ok(Expr::Auth(rest[1..].to_vec())),
            ("handshake", Some("query")) if rest.len() == 2 => Ok(Expr::Query(rest[1].clone())),
            ("jwt", _) => Ok(Expr::Jwt(rest)),
            _ => Err(format!(
                "unknown template `{{{text}}}`; expected {{N}}, {{N.field}}, {{args}}, {{event}}, \
                 {{socket.id}}, {{socket.recovered}}, {{socket.data.KEY}}, {{handshake.auth.KEY}}, {{handshake.query.KEY}}, \
                 {{jwt.CLAIM}}, {{room.size}} or {{room.members}}"
            )),
        }
    }

    fn resolve(&self, scope: &dyn Scope) -> Option<Value> {
        match self {
            Expr::Arg { index, path } => lookup(scope.args()?.get(*index)?, path).cloned(),
            Expr::Args => Some(Value::Array(scope.args()?.to_vec())),
            Expr::Event => scope.event().map(|e| Value::String(e.to_owned())),
            Expr::RoomSize => scope.step_room_members().map(|m| Value::from(m.len())),
            Expr::RoomMembers => scope.step_room_members().map(|mut m| {
                m.truncate(MAX_MEMBERS);
                Value::Array(m.into_iter().map(Value::String).collect())
            }),
            Expr::SocketId => Some(Value::String(scope.socket_id().to_owned())),
            Expr::SocketRecovered => Some(Value::Bool(scope.recovered())),
            Expr::SocketData(path) => lookup(scope.socket_data()?, path).cloned(),
            Expr::Auth(path) => lookup(scope.auth()?, path).cloned(),
            Expr::Query(key) => scope.query(key).map(|v| Value::String(v.to_owned())),
            Expr::Jwt(path) => lookup(scope.jwt()?, path).cloned(),
        }
    }

    /// Whether resolving needs the event's arguments parsed.
    fn reads_args(&self) -> bool {
        matches!(self, Expr::Arg { .. } | Expr::Args)
    }

    /// Whether it reads the step's room (`{room.size}`, `{room.members}`).
    fn reads_room(&self) -> bool {
        matches!(self, Expr::RoomSize | Expr::RoomMembers)
    }
}

/// Most socket ids `{room.members}` lists.
pub const MAX_MEMBERS: usize = 1000;

fn lookup<'v>(mut value: &'v Value, path: &[String]) -> Option<&'v Value> {
    for key in path {
        value = match value {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Where templates find their values.
pub trait Scope {
    /// The event's arguments; `None` when there are none to read.
    fn args(&self) -> Option<&[Value]>;
    /// The socket id.
    fn socket_id(&self) -> &str;
    /// `socket.data`.
    fn socket_data(&self) -> Option<&Value>;
    /// The CONNECT auth payload.
    fn auth(&self) -> Option<&Value>;
    /// A query parameter of the handshake.
    fn query(&self, key: &str) -> Option<&str>;
    /// The claims of the socket's verified token, if it has one.
    fn jwt(&self) -> Option<&Value> {
        None
    }
    /// The incoming event's name.
    fn event(&self) -> Option<&str> {
        None
    }
    /// Whether the socket came back by connection state recovery.
    fn recovered(&self) -> bool {
        false
    }
    /// Whether the socket is in `room` (as it was when the event arrived).
    fn in_room(&self, _room: &str) -> bool {
        false
    }
    /// The socket ids in `room`, sorted (as the event found them).
    fn room_members(&self, _room: &str) -> Option<Vec<String>> {
        None
    }
    /// The members of the step's room once the step's join or leave is done.
    fn step_room_members(&self) -> Option<Vec<String>> {
        None
    }
}

/// The room a step names, and whether the step has the socket join or leave it.
pub(crate) struct StepRoom {
    /// Its name.
    pub name: String,
    /// The step joins it.
    pub joins: bool,
    /// The step leaves it.
    pub leaves: bool,
}

/// A scope that also knows the event's name (`{event}`) and the step's room (`{room.*}`).
pub(crate) struct Named<'a> {
    /// What it adds to.
    pub scope: &'a dyn Scope,
    /// The event's name.
    pub event: &'a str,
    /// The step's room, once known.
    pub room: Option<StepRoom>,
}

impl Scope for Named<'_> {
    fn args(&self) -> Option<&[Value]> {
        self.scope.args()
    }
    fn socket_id(&self) -> &str {
        self.scope.socket_id()
    }
    fn socket_data(&self) -> Option<&Value> {
        self.scope.socket_data()
    }
    fn auth(&self) -> Option<&Value> {
        self.scope.auth()
    }
    fn query(&self, key: &str) -> Option<&str> {
        self.scope.query(key)
    }
    fn jwt(&self) -> Option<&Value> {
        self.scope.jwt()
    }
    fn event(&self) -> Option<&str> {
        Some(self.event)
    }
    fn recovered(&self) -> bool {
        self.scope.recovered()
    }
    fn in_room(&self, room: &str) -> bool {
        self.scope.in_room(room)
    }
    fn room_members(&self, room: &str) -> Option<Vec<String>> {
        self.scope.room_members(room)
    }
    fn step_room_members(&self) -> Option<Vec<String>> {
        let room = self.room.as_ref()?;
        let mut members = self.scope.room_members(&room.name)?;
        let me = self.scope.socket_id();
        let present = members.iter().position(|m| m == me);
        match present {
            None if room.joins => {
                members.push(me.to_owned());
                members.sort();
            }
            Some(i) if room.leaves => {
                members.remove(i);
            }
            _ => {}
        }
        Some(members)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Expr(Expr),
}

/// A string that may hold templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parse `text`; errors name the offending template and what is allowed.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let end = text[i..]
                        .find('}')
                        .map(|e| i + e)
                        .ok_or_else(|| format!("unclosed `{{` in `{text}`"))?;
                    let expr = Expr::parse(&text[i + 1..end])?;
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Expr(expr));
                    while chars.peek().is_some_and(|(j, _)| *j <= end) {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "unmatched `}}` in `{text}`; write `}}}}` for a brace"
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() || parts.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// The text, when the template is plain text (braces unescaped).
    pub fn literal_text(&self) -> Option<String> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                Part::Expr(_) => None,
            })
            .collect()
    }

    /// The single expression, when the whole string is one template.
    pub fn as_single(&self) -> Option<&Expr> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => Some(e),
            _ => None,
        }
    }

    /// Whether resolving needs the event's arguments.
    pub fn reads_args(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Expr(e) if e.reads_args()))
    }

    /// Whether it reads the step's room.
    pub fn reads_room(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Expr(e) if e.reads_room()))
    }

    /// The arguments it reads: `{N}` and `{N.path}`, as (N, path).
    pub fn args_read(&self) -> Vec<(usize, Vec<String>)> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Expr(Expr::Arg { index, path }) => Some((*index, path.clone())),
                _ => None,
            })
            .collect()
    }

    /// The value: the expression's own value for a single template, else the text.
    /// `None` when a template resolves to nothing.
    pub fn resolve(&self, scope: &dyn Scope) -> Option<Value> {
        if let Some(expr) = self.as_single() {
            return expr.resolve(scope);
        }
        self.resolve_text(scope).map(Value::String)
    }

    /// The text, with every template replaced by its value's text.
    pub fn resolve_text(&self, scope: &dyn Scope) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => match e.resolve(scope)? {
                    Value::String(s) => out.push_str(&s),
                    Value::Null => return None,
                    other => out.push_str(&other.to_string()),
                },
            }
        }
        Some(out)
    }
}

/// A JSON-like value whose strings may hold templates: `data` and `ack` of a route.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueTemplate {
    /// A value with no templates.
    Literal(Value),
    /// A string with templates.
    Text(Template),
    /// An array with templates inside.
    Array(Vec<ValueTemplate>),
    /// A table with templates inside.
    Object(Vec<(String, ValueTemplate)>),
}

impl ValueTemplate {
    /// Compile a value, parsing every string.
    pub fn compile(value: &Value) -> Result<ValueTemplate, String> {
        Ok(match value {
            Value::String(s) => {
                let t = Template::parse(s)?;
                match t.literal_text() {
                    // `{{` and `}}` already unescaped.
                    Some(text) => ValueTemplate::Literal(Value::String(text)),
                    None => ValueTemplate::Text(t),
                }
            }
            Value::Array(items) => {
                let items = items
                    .iter()
                    .map(ValueTemplate::compile)
                    .collect::<Result<Vec<_>, _>>()?;
                match items
                    .iter()
                    .map(ValueTemplate::as_literal)
                    .collect::<Option<Vec<_>>>()
                {
                    Some(values) => ValueTemplate::Literal(Value::Array(values)),
                    None => ValueTemplate::Array(items),
                }
            }
            Value::Object(map) => {
                let fields = map
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), ValueTemplate::compile(v)?)))
                    .collect::<Result<Vec<_>, String>>()?;
                match fields
                    .iter()
                    .map(|(k, v)| Some((k.clone(), v.as_literal()?)))
                    .collect::<Option<serde_json::Map<_, _>>>()
                {
                    Some(map) => ValueTemplate::Literal(Value::Object(map)),
                    None => ValueTemplate::Object(fields),
                }
            }
            other => ValueTemplate::Literal(other.clone()),
        })
    }

    fn as_literal(&self) -> Option<Value> {
        match self {
            ValueTemplate::Literal(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Whether this is exactly `"{args}"`.
    pub fn is_args(&self) -> bool {
        matches!(self, ValueTemplate::Text(t) if t.as_single() == Some(&Expr::Args))
    }

    /// Whether resolving needs the event's arguments.
    pub fn reads_args(&self) -> bool {
        self.any_text(&Template::reads_args)
    }

    /// Whether it reads the step's room.
    pub fn reads_room(&self) -> bool {
        self.any_text(&Template::reads_room)
    }

    /// The arguments its templates read, as (N, path).
    pub fn args_read(&self) -> Vec<(usize, Vec<String>)> {
        match self {
            ValueTemplate::Literal(_) => Vec::new(),
            ValueTemplate::Text(t) => t.args_read(),
            ValueTemplate::Array(items) => items.iter().flat_map(Self::args_read).collect(),
            ValueTemplate::Object(fields) => {
                fields.iter().flat_map(|(_, v)| v.args_read()).collect()
            }
        }
    }

    fn any_text(&self, pred: &dyn Fn(&Template) -> bool) -> bool {
        match self {
            ValueTemplate::Literal(_) => false,
            ValueTemplate::Text(t) => pred(t),
            ValueTemplate::Array(items) => items.iter().any(|i| i.any_text(pred)),
            ValueTemplate::Object(fields) => fields.iter().any(|(_, v)| v.any_text(pred)),
        }
    }

    /// The value; `None` when any template in it resolves to nothing.
    pub fn resolve(&self, scope: &dyn Scope) -> Option<Value> {
        Some(match self {
            ValueTemplate::Literal(v) => v.clone(),
            ValueTemplate::Text(t) => t.resolve(scope)?,
            ValueTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.resolve(scope))
                    .collect::<Option<Vec<_>>>()?,
            ),
            ValueTemplate::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| Some((k.clone(), v.resolve(scope)?)))
                    .collect::<Option<serde_json::Map<_, _>>>()?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct TestScope {
        args: Vec<Value>,
        data: Value,
        auth: Value,
    }

    impl Scope for TestScope {
        fn args(&self) -> Option<&[Value]> {
            Some(&self.args)
        }
        fn socket_id(&self) -> &str {
            "SID"
        }
        fn socket_data(&self) -> Option<&Value> {
            Some(&self.data)
        }
        fn auth(&self) -> Option<&Value> {
            Some(&self.auth)
        }
        fn query(&self, key: &str) -> Option<&str> {
            (key == "room").then_some("lobby")
        }
    }

    fn scope() -> TestScope {
        TestScope {
            args: vec![json!({"room": "r1", "n": 5, "list": [10, 20]}), json!("hi")],
            data: json!({"name": "ann"}),
            auth: json!({"token": "123"}),
        }
    }

    fn resolve(t: &str) -> Option<Value> {
        Template::parse(t).unwrap().resolve(&scope())
    }

    #[test]
    fn a_single_template_yields_the_value_itself() {
        assert_eq!(
            resolve("{0}"),
            Some(json!({"room": "r1", "n": 5, "list": [10, 20]}))
        );
        assert_eq!(resolve("{0.n}"), Some(json!(5)));
        assert_eq!(resolve("{0.list.1}"), Some(json!(20)));
        assert_eq!(
            resolve("{args}"),
            Some(json!([{"room": "r1", "n": 5, "list": [10, 20]}, "hi"]))
        );
        assert_eq!(resolve("{handshake.auth}"), Some(json!({"token": "123"})));
    }

    #[test]
    fn inside_text_templates_become_text() {
        assert_eq!(resolve("hi {socket.id}"), Some(json!("hi SID")));
        assert_eq!(
            resolve("{0.room}/{0.n}/{socket.data.name}"),
            Some(json!("r1/5/ann"))
        );
        assert_eq!(resolve("q={handshake.query.room}"), Some(json!("q=lobby")));
        assert_eq!(resolve("{{literal}}"), Some(json!("{literal}")));
    }

    #[test]
    fn missing_values_resolve_to_nothing() {
        assert_eq!(resolve("{5}"), None);
        assert_eq!(resolve("{0.nope}"), None);
        assert_eq!(resolve("x {1.deep}"), None);
        assert_eq!(resolve("{handshake.query.other}"), None);
    }

    #[test]
    fn bad_templates_are_compile_errors() {
        assert!(
            Template::parse("{nope}")
                .unwrap_err()
                .contains("unknown template `{nope}`")
        );
        assert!(Template::parse("{0.}").unwrap_err().contains("empty field"));
        assert!(Template::parse("{0").unwrap_err().contains("unclosed"));
        assert!(Template::parse("a}b").unwrap_err().contains("unmatched"));
        assert!(Template::parse("{socket.idx}").is_err());
    }

    #[test]
    fn value_templates_resolve_deeply() {
        let v = ValueTemplate::compile(
            &json!(["User left", "{socket.id}", {"by": "{socket.data.name}"}]),
        )
        .unwrap();
        assert!(!v.reads_args());
        assert_eq!(
            v.resolve(&scope()),
            Some(json!(["User left", "SID", {"by": "ann"}]))
        );
        let lit = ValueTemplate::compile(&json!({"a": [1, "b"]})).unwrap();
        assert_eq!(lit, ValueTemplate::Literal(json!({"a": [1, "b"]})));
        let braces = ValueTemplate::compile(&json!(["{{x}}", {"k": "}}"}])).unwrap();
        assert_eq!(braces, ValueTemplate::Literal(json!(["{x}", {"k": "}"}])));
        assert!(ValueTemplate::compile(&json!("{args}")).unwrap().is_args());
    }
}
