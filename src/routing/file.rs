//! Reading routes.toml: the TOML is parsed into a tree in which every key and value keeps its
//! position, and these helpers read that tree, reporting a wrong type or an unknown key with
//! the offending span — every problem, not just the first, which a serde derive cannot do.

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::Diagnostic;

/// A value with its span.
pub type Node<'i> = Spanned<DeValue<'i>>;

/// Collects diagnostics while reading.
#[derive(Debug, Default)]
pub struct Reader {
    /// Everything found so far.
    pub diagnostics: Vec<Diagnostic>,
    /// What is valid but likely a mistake.
    pub warnings: Vec<Diagnostic>,
    /// Where each namespace is declared (its name), for warnings about it.
    pub declared: std::collections::BTreeMap<String, std::ops::Range<usize>>,
}

/// A TOML type's name for messages.
pub fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl Reader {
    /// Record a problem.
    pub fn error(&mut self, span: std::ops::Range<usize>, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(span, message));
    }

    fn wrong_type(&mut self, node: &Node<'_>, key: &str, expected: &str) {
        self.error(
            node.span(),
            format!(
                "`{key}` is {}, expected {expected}",
                type_name(node.get_ref())
            ),
        );
    }

    /// Report every key of `table` not in `allowed`.
    pub fn known_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], what: &str) {
        for (key, _) in table.iter() {
            let key_str: &str = key.get_ref().as_ref();
            if !allowed.contains(&key_str) {
                let hint = did_you_mean(key_str, allowed.iter().copied())
                    .map(|k| format!("did you mean `{k}`? "))
                    .unwrap_or_default();
                self.error(
                    key.span(),
                    format!(
                        "unknown key `{key_str}` in {what}; {hint}expected one of: {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    /// `node` as a table.
    pub fn table<'a, 'i>(&mut self, node: &'a Node<'i>, key: &str) -> Option<&'a DeTable<'i>> {
        match node.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(node, key, "a table");
                None
            }
        }
    }

    /// `node` as a string.
    pub fn string(&mut self, node: &Node<'_>, key: &str) -> Option<String> {
        match node.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.wrong_type(node, key, "a string");
                None
            }
        }
    }

    /// `node` as a boolean.
    pub fn boolean(&mut self, node: &Node<'_>, key: &str) -> Option<bool> {
        match node.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(node, key, "true or false");
                None
            }
        }
    }

    /// `node` as an array of strings.
    pub fn strings(&mut self, node: &Node<'_>, key: &str) -> Option<Vec<Spanned<String>>> {
        let DeValue::Array(items) = node.get_ref() else {
            self.wrong_type(node, key, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            let s = self.string(item, key)?;
            out.push(Spanned::new(item.span(), s));
        }
        Some(out)
    }

    /// `node` as a JSON value (datetimes become their text).
    pub fn json(&mut self, node: &Node<'_>, key: &str) -> Option<Value> {
        Some(match node.get_ref() {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Integer(i) => match i.to_string().replace('_', "").parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    self.wrong_type(node, key, "a decimal integer");
                    return None;
                }
            },
            DeValue::Float(f) => match f.to_string().replace('_', "").parse::<f64>() {
                Ok(n) => serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
                Err(_) => {
                    self.wrong_type(node, key, "a finite float");
                    return None;
                }
            },
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.json(i, key))
                    .collect::<Option<Vec<_>>>()?,
            ),
            DeValue::Table(t) => Value::Object(
                t.iter()
                    .map(|(k, v)| Some((k.get_ref().to_string(), self.json(v, key)?)))
                    .collect::<Option<serde_json::Map<_, _>>>()?,
            ),
        })
    }
}

/// Look up `key` in `table`.
pub fn get<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a Node<'i>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(_, v)| v)
}

/// The one of `known` that `typed` most likely meant — a close spelling (or the same word in
/// another case) — if any.
pub fn did_you_mean<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed_lower = typed.to_lowercase();
    known
        .into_iter()
        .map(|k| {
            let score = if k.to_lowercase() == typed_lower {
                1.0
            } else {
                strsim::jaro_winkler(&typed_lower, &k.to_lowercase())
            };
            (score, k)
        })
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}
