//! Cache keys: sha256 over a canonical serialisation (sorted keys, no
//! whitespace) of everything that determines a stage's artefact.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything a stage's output depends on. Deliberately not the git commit:
/// editing a comment must never rerun a three-hour stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInputs {
    pub kind: String,
    pub kind_version: u32,
    /// The stage's resolved parameters.
    pub params: serde_json::Value,
    /// Artefact digest of each upstream stage, by role.
    pub inputs: BTreeMap<String, String>,
    /// Fingerprint of the data set the stage reads, if any.
    pub dataset: Option<String>,
    /// `backend/dtype`, only for stages whose results depend on it.
    pub backend: Option<String>,
}

impl KeyInputs {
    /// The hex sha256 cache key.
    pub fn key(&self) -> String {
        let value = serde_json::to_value(self).expect("key inputs serialize");
        sha256_hex(canonical_json(&value).as_bytes())
    }
}

/// JSON with object keys sorted at every level, independent of how the map
/// was built (serde_json may be compiled with `preserve_order`).
pub fn canonical_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<&String, &serde_json::Value> = map.iter().collect();
            let parts: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        serde_json::to_string(k).unwrap(),
                        canonical_json(v)
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

pub use crate::digest::sha256_hex;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs() -> KeyInputs {
        KeyInputs {
            kind: "train".into(),
            kind_version: 1,
            params: json!({"lr": 0.01, "epochs": 3, "net": "snet3"}),
            inputs: BTreeMap::from([("data".into(), "ab".repeat(32))]),
            dataset: Some("cd".repeat(32)),
            backend: Some("flex/f32".into()),
        }
    }

    #[test]
    fn same_inputs_same_key() {
        assert_eq!(inputs().key(), inputs().key());
        assert_eq!(inputs().key().len(), 64);
    }

    #[test]
    fn key_ignores_map_order() {
        let mut a = inputs();
        let mut b = inputs();
        a.params = serde_json::from_str(
            r#"{"lr": 0.01, "epochs": 3, "net": "snet3", "nested": {"x": 1, "y": 2}}"#,
        )
        .unwrap();
        b.params = serde_json::from_str(
            r#"{"nested": {"y": 2, "x": 1}, "net": "snet3", "epochs": 3, "lr": 0.01}"#,
        )
        .unwrap();
        assert_eq!(a.key(), b.key());
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = inputs().key();
        let mut changed = Vec::new();
        let mut k = inputs();
        k.kind = "evaluate".into();
        changed.push(k);
        let mut k = inputs();
        k.kind_version = 2;
        changed.push(k);
        let mut k = inputs();
        k.params["lr"] = json!(0.02);
        changed.push(k);
        let mut k = inputs();
        k.params["seed"] = json!(1);
        changed.push(k);
        let mut k = inputs();
        k.inputs.insert("data".into(), "ef".repeat(32));
        changed.push(k);
        let mut k = inputs();
        k.inputs.insert("model".into(), "ef".repeat(32));
        changed.push(k);
        let mut k = inputs();
        k.dataset = None;
        changed.push(k);
        let mut k = inputs();
        k.backend = Some("libtorch-cuda/f32".into());
        changed.push(k);
        let keys: std::collections::BTreeSet<String> = changed.iter().map(KeyInputs::key).collect();
        assert_eq!(keys.len(), changed.len());
        assert!(!keys.contains(&base));
    }
}
