//! Maps a key path (`stage[1].lr`) back to `file:line:column` in the TOML
//! source, so every spec error points at the text the user wrote.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// One step of a key path inside a spec document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index (0-based).
    Index(usize),
}

/// Renders a path as users write it: `stage[1].lr`.
pub fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A parsed source file kept for locating keys.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    doc: Option<toml_edit::Document<String>>,
}

impl Source {
    pub fn new(path: &Path, text: String) -> Self {
        let doc = toml_edit::Document::parse(text.clone()).ok();
        Self {
            path: path.to_path_buf(),
            text,
            doc,
        }
    }

    /// `file:line:column` of the deepest part of `path` found in this file.
    /// Returns `None` when not even the first key is in this file.
    pub fn locate(&self, path: &[Seg]) -> Option<String> {
        let doc = self.doc.as_ref()?;
        let span = find_span(doc.as_table(), path)?;
        Some(self.position(span.start))
    }

    /// Whether this file itself sets the key at `path` (not only a table
    /// above it).
    pub fn sets(&self, path: &[Seg]) -> bool {
        let Some(doc) = self.doc.as_ref() else {
            return false;
        };
        let mut item = doc.as_item();
        for seg in path {
            let next = match seg {
                Seg::Key(k) => item.get(k.as_str()),
                Seg::Index(i) => item.get(*i),
            };
            match next {
                Some(next) => item = next,
                None => return false,
            }
        }
        true
    }

    /// The index in this file of its `nth` (from 0) `[[stage]]` with this `id`.
    pub fn stage_index(&self, id: &str, nth: usize) -> Option<usize> {
        let stages = self.doc.as_ref()?.get("stage")?.as_array_of_tables()?;
        stages
            .iter()
            .enumerate()
            .filter(|(_, t)| t.get("id").and_then(|v| v.as_str()) == Some(id))
            .nth(nth)
            .map(|(i, _)| i)
    }

    /// `file:line:column` of a byte offset.
    pub fn position(&self, offset: usize) -> String {
        let (line, col) = line_col(&self.text, offset);
        format!("{}:{line}:{col}", self.path.display())
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, col)
}

fn find_span(table: &toml_edit::Table, path: &[Seg]) -> Option<Range<usize>> {
    let Some((Seg::Key(first), rest)) = path.split_first() else {
        return None;
    };
    let (key, item) = table.get_key_value(first)?;
    let here = key.span().or_else(|| item.span());
    Some(descend_item(item, rest).or(here)?)
}

fn descend_item(item: &toml_edit::Item, path: &[Seg]) -> Option<Range<usize>> {
    let Some((seg, rest)) = path.split_first() else {
        return None;
    };
    match (item, seg) {
        (toml_edit::Item::Table(t), Seg::Key(_)) => find_span(t, path),
        (toml_edit::Item::ArrayOfTables(a), Seg::Index(i)) => {
            let t = a.get(*i)?;
            if rest.is_empty() {
                return t.span();
            }
            find_span(t, rest).or_else(|| t.span())
        }
        (toml_edit::Item::Value(v), _) => descend_value(v, path),
        _ => None,
    }
}

fn descend_value(value: &toml_edit::Value, path: &[Seg]) -> Option<Range<usize>> {
    let Some((seg, rest)) = path.split_first() else {
        return value.span();
    };
    match (value, seg) {
        (toml_edit::Value::Array(a), Seg::Index(i)) => {
            let v = a.get(*i)?;
            descend_value(v, rest).or_else(|| v.span())
        }
        (toml_edit::Value::InlineTable(t), Seg::Key(k)) => {
            let (key, item) = t.get_key_value(k)?;
            let here = key.span().or_else(|| item.span());
            match item {
                toml_edit::Item::Value(v) if !rest.is_empty() => descend_value(v, rest).or(here),
                _ => here,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_array_tables() {
        let text = "[train]\nlr = 0.1\n\n[[stage]]\nid = \"a\"\n\n[[stage]]\nid = \"b\"\nmnl = 3\n";
        let src = Source::new(Path::new("s.toml"), text.to_string());
        let p = |v: &[Seg]| src.locate(v).unwrap();
        assert_eq!(
            p(&[Seg::Key("train".into()), Seg::Key("lr".into())]),
            "s.toml:2:1"
        );
        assert_eq!(
            p(&[
                Seg::Key("stage".into()),
                Seg::Index(1),
                Seg::Key("mnl".into())
            ]),
            "s.toml:9:1"
        );
        assert_eq!(
            display_path(&[
                Seg::Key("stage".into()),
                Seg::Index(1),
                Seg::Key("mnl".into())
            ]),
            "stage[1].mnl"
        );
    }
}
