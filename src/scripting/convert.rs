//! JSON values in and out of scripts. Binary arguments are blobs inside a script and
//! attachments (with placeholders) outside. What comes out is bounded: in depth (a value is
//! used, and dropped, far from the script thread's large stack) and in bytes (what one call
//! may send or keep).

use bytes::Bytes;
use rhai::{Array, Blob, Dynamic, Map};
use serde_json::Value;

/// A JSON value as a Rhai value; `{"_placeholder":true,"num":N}` becomes the blob of
/// `attachments[N]`.
pub(crate) fn to_dynamic(value: &Value, attachments: &[Bytes]) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(0.0).into(),
        },
        Value::String(s) => s.clone().into(),
        Value::Array(items) => {
            let array: Array = items.iter().map(|v| to_dynamic(v, attachments)).collect();
            array.into()
        }
        Value::Object(map) => {
            if map.get("_placeholder") == Some(&Value::Bool(true))
                && let Some(bytes) = map
                    .get("num")
                    .and_then(Value::as_u64)
                    .and_then(|n| attachments.get(n as usize))
            {
                let blob: Blob = bytes.to_vec();
                return Dynamic::from_blob(blob);
            }
            let out: Map = map
                .iter()
                .map(|(k, v)| (k.as_str().into(), to_dynamic(v, attachments)))
                .collect();
            out.into()
        }
    }
}

/// Deepest nesting of a value leaving a script.
pub(crate) const MAX_DEPTH: usize = 64;

/// What a script's output may still take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Bytes left (JSON text, roughly, and attachments).
    pub(crate) bytes: usize,
}

/// Why a value cannot leave a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Overflow {
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("a value nested deeper than {MAX_DEPTH} levels")]
    Depth,
    /// Over the call's byte budget.
    #[error("more than script_output_bytes sent or kept by one call")]
    Bytes,
}

impl Budget {
    pub(crate) fn take(&mut self, n: usize) -> Result<(), Overflow> {
        self.bytes = self.bytes.checked_sub(n).ok_or(Overflow::Bytes)?;
        Ok(())
    }
}

/// A Rhai value as JSON; each blob becomes a placeholder and is pushed to `attachments`.
/// Fails past [`MAX_DEPTH`] or `budget`.
pub(crate) fn from_dynamic(
    value: &Dynamic,
    attachments: &mut Vec<Bytes>,
    budget: &mut Budget,
) -> Result<Value, Overflow> {
    convert(value, attachments, budget, 0)
}

fn convert(
    value: &Dynamic,
    attachments: &mut Vec<Bytes>,
    budget: &mut Budget,
    depth: usize,
) -> Result<Value, Overflow> {
    if depth > MAX_DEPTH {
        return Err(Overflow::Depth);
    }
    // Scalars and punctuation count a few bytes; text and binary their length.
    budget.take(8)?;
    Ok(if value.is_unit() {
        Value::Null
    } else if let Ok(b) = value.as_bool() {
        Value::Bool(b)
    } else if let Ok(i) = value.as_int() {
        Value::from(i)
    } else if let Ok(f) = value.as_float() {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    } else if value.is_string() || value.is_char() {
        let text = value.to_string();
        budget.take(text.len())?;
        Value::String(text)
    } else if value.is_blob() {
        let blob = value.read_lock::<Blob>().expect("checked is_blob");
        budget.take(blob.len())?;
        attachments.push(Bytes::copy_from_slice(&blob));
        serde_json::json!({ "_placeholder": true, "num": attachments.len() - 1 })
    } else if let Some(array) = value.read_lock::<Array>() {
        let mut out = Vec::with_capacity(array.len());
        for item in array.iter() {
            out.push(convert(item, attachments, budget, depth + 1)?);
        }
        Value::Array(out)
    } else if let Some(map) = value.read_lock::<Map>() {
        let mut out = serde_json::Map::new();
        for (k, v) in map.iter() {
            budget.take(k.len())?;
            out.insert(k.to_string(), convert(v, attachments, budget, depth + 1)?);
        }
        Value::Object(out)
    } else {
        let text = value.to_string();
        budget.take(text.len())?;
        Value::String(text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_with_blobs_for_attachments() {
        let attachments = vec![Bytes::from_static(&[1, 2, 3])];
        let value = json!({"a": [1, 2.5, "s", true, null], "b": {"_placeholder": true, "num": 0}});
        let dynamic = to_dynamic(&value, &attachments);
        let map = dynamic.clone().cast::<Map>();
        assert!(map["b"].is_blob());
        let mut out = Vec::new();
        let mut budget = Budget { bytes: 1000 };
        assert_eq!(from_dynamic(&dynamic, &mut out, &mut budget), Ok(value));
        assert_eq!(out, attachments);
        assert!(
            budget.bytes < 1000 - 3,
            "the blob and the rest were counted"
        );
    }

    #[test]
    fn deep_or_large_values_do_not_leave_the_script() {
        let mut deep = Dynamic::from(Array::new());
        for _ in 0..100 {
            deep = Dynamic::from(vec![deep]);
        }
        let mut budget = Budget { bytes: usize::MAX };
        assert_eq!(
            from_dynamic(&deep, &mut Vec::new(), &mut budget),
            Err(Overflow::Depth)
        );
        let big = Dynamic::from("x".repeat(100));
        let mut budget = Budget { bytes: 50 };
        assert_eq!(
            from_dynamic(&big, &mut Vec::new(), &mut budget),
            Err(Overflow::Bytes)
        );
    }
}
