//! What differs between runs: their resolved specs flattened to key paths.

use std::collections::BTreeMap;

use crate::runs::RunRecord;

/// Flatten JSON into `path = value` pairs.
pub fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(m) => m.iter().for_each(|(k, x)| {
            flatten(
                &if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                },
                x,
                out,
            )
        }),
        serde_json::Value::Array(a)
            if a.iter().all(|x| x.is_object()) && a.iter().all(|x| x.get("id").is_some()) =>
        {
            a.iter().for_each(|x| {
                flatten(
                    &format!("{prefix}.{}", x["id"].as_str().unwrap_or("?")),
                    x,
                    out,
                )
            })
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Parameters that differ from the baseline: `path → [value per run]`.
pub fn changed_params(runs: &[RunRecord]) -> BTreeMap<String, Vec<String>> {
    let flat: Vec<BTreeMap<String, String>> = runs
        .iter()
        .map(|r| {
            let mut m = BTreeMap::new();
            let mut spec = r.spec.clone();
            // Where the spec came from is not a parameter.
            for k in ["path", "overrides", "point", "sweep", "data", "select"] {
                spec.as_object_mut().map(|o| o.remove(k));
            }
            flatten("", &spec, &mut m);
            m
        })
        .collect();
    let keys: std::collections::BTreeSet<&String> = flat.iter().flat_map(|m| m.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let vals: Vec<String> = flat
                .iter()
                .map(|m| m.get(k).cloned().unwrap_or_else(|| "-".into()))
                .collect();
            vals.iter()
                .any(|v| v != &vals[0])
                .then(|| (k.clone(), vals))
        })
        .collect()
}
