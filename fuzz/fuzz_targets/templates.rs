//! Templates of route strings, parsed from any text and resolved against any arguments:
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard::routing::template::{Scope, Template, ValueTemplate};

struct Fuzzed {
    args: Option<Vec<Value>>,
    data: Value,
}

impl Scope for Fuzzed {
    fn args(&self) -> Option<&[Value]> {
        self.args.as_deref()
    }
    fn socket_id(&self) -> &str {
        "AAAAAAAAAAAAAAAAAAAA"
    }
    fn socket_data(&self) -> Option<&Value> {
        Some(&self.data)
    }
    fn auth(&self) -> Option<&Value> {
        Some(&self.data)
    }
    fn query(&self, key: &str) -> Option<&str> {
        (key == "room").then_some("lobby")
    }
}

fuzz_target!(|data: &[u8]| {
    // The template, then (after a NUL) the arguments as JSON.
    let (template, args) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"[]"[..]),
    };
    let Ok(text) = std::str::from_utf8(template) else {
        return;
    };
    let args: Option<Vec<Value>> = serde_json::from_slice(args).ok();
    let scope = Fuzzed {
        data: args
            .as_ref()
            .and_then(|a| a.first().cloned())
            .unwrap_or(Value::Null),
        args,
    };
    if let Ok(t) = Template::parse(text) {
        let _ = t.resolve(&scope);
        let _ = t.resolve_text(&scope);
        let _ = t.reads_args();
    }
    if let Ok(v) = ValueTemplate::compile(&Value::String(text.to_owned())) {
        let _ = v.resolve(&scope);
    }
});
