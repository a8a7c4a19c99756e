//! JSON values in and out of scripts. Binary arguments are blobs inside a script and
//! attachments (with placeholders) outside.

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

/// A Rhai value as JSON; each blob becomes a placeholder and is pushed to `attachments`.
pub(crate) fn from_dynamic(value: &Dynamic, attachments: &mut Vec<Bytes>) -> Value {
    if value.is_unit() {
        Value::Null
    } else if let Ok(b) = value.as_bool() {
        Value::Bool(b)
    } else if let Ok(i) = value.as_int() {
        Value::from(i)
    } else if let Ok(f) = value.as_float() {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    } else if value.is_string() || value.is_char() {
        Value::String(value.to_string())
    } else if value.is_blob() {
        let blob = value.clone().cast::<Blob>();
        attachments.push(Bytes::from(blob));
        serde_json::json!({ "_placeholder": true, "num": attachments.len() - 1 })
    } else if value.is_array() {
        let array = value.clone().cast::<Array>();
        Value::Array(array.iter().map(|v| from_dynamic(v, attachments)).collect())
    } else if value.is_map() {
        let map = value.clone().cast::<Map>();
        Value::Object(
            map.iter()
                .map(|(k, v)| (k.to_string(), from_dynamic(v, attachments)))
                .collect(),
        )
    } else {
        Value::String(value.to_string())
    }
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
        assert_eq!(from_dynamic(&dynamic, &mut out), value);
        assert_eq!(out, attachments);
    }
}
