//! Typed events: the JSON Schema an event's arguments must satisfy (`schema = "…"` on its
//! route), compiled once per load. The instance checked is the array of the event's
//! arguments (a binary argument stands as its placeholder object).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

/// Largest schema file read.
const MAX_SCHEMA_BYTES: u64 = 1024 * 1024;
/// Longest description of why arguments were refused.
const MAX_DETAIL: usize = 200;

/// A compiled schema of an event's arguments.
#[derive(Clone)]
pub struct EventSchema {
    /// The file, as found from the routes file's folder.
    pub path: PathBuf,
    /// The file as the routes file names it, for messages.
    pub name: String,
    /// The schema.
    pub value: Value,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for EventSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSchema")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for EventSchema {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.value == other.value
    }
}

impl EventSchema {
    /// Read and compile the schema at `path` (named `name` in routes.toml).
    pub fn load(path: &Path, name: &str) -> Result<EventSchema, String> {
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cannot read schema `{name}`: {e}"))?
            .len();
        if size > MAX_SCHEMA_BYTES {
            return Err(format!("schema `{name}` is over 1 MiB"));
        }
        let text = std::fs::read(path).map_err(|e| format!("cannot read schema `{name}`: {e}"))?;
        let value: Value = serde_json::from_slice(&text)
            .map_err(|e| format!("schema `{name}` is not JSON: {e}"))?;
        let validator = jsonschema::validator_for(&value)
            .map_err(|e| format!("schema `{name}` is not a valid JSON Schema: {e}"))?;
        Ok(EventSchema {
            path: path.to_owned(),
            name: name.to_owned(),
            value,
            validator: Arc::new(validator),
        })
    }

    /// Whether `args` (the array of an event's arguments) satisfies it; why not, briefly.
    pub fn check(&self, args: &Value) -> Result<(), String> {
        match self.validator.validate(args) {
            Ok(()) => Ok(()),
            Err(e) => {
                let at = e.instance_path().to_string();
                let mut why = format!("{}: {e}", if at.is_empty() { "/" } else { &at });
                super::diag::clip(&mut why, MAX_DETAIL, "…");
                Err(why)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(value: Value) -> EventSchema {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-schema-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.json");
        std::fs::write(&path, value.to_string()).unwrap();
        let s = EventSchema::load(&path, "s.json").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        s
    }

    #[test]
    fn arguments_are_checked_as_an_array() {
        let s = schema(json!({
            "type": "array",
            "prefixItems": [{ "type": "string", "maxLength": 5 }],
            "items": false
        }));
        assert_eq!(s.check(&json!(["hi"])), Ok(()));
        let why = s.check(&json!(["too long"])).unwrap_err();
        assert!(why.starts_with("/0: "), "{why}");
        assert!(s.check(&json!(["hi", 2])).is_err(), "no more arguments");
    }

    #[test]
    fn a_file_that_is_no_schema_is_refused() {
        let dir =
            std::env::temp_dir().join(format!("switchboard-schema-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.json"), "{ nope").unwrap();
        std::fs::write(dir.join("b.json"), r#"{"type": 12}"#).unwrap();
        assert!(
            EventSchema::load(&dir.join("a.json"), "a.json")
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            EventSchema::load(&dir.join("b.json"), "b.json")
                .unwrap_err()
                .contains("not a valid JSON Schema")
        );
        assert!(
            EventSchema::load(&dir.join("c.json"), "c.json")
                .unwrap_err()
                .contains("cannot read")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
