//! `env`: a list of `KEY[=VALUE]` items or a mapping, kept in order.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::config::decode::{self, Cx, D};
use crate::config::node::{Node, Value};

/// Environment variables in order. A `None` value means "take it from the caller's environment"
/// (a bare `- KEY` list item).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Env(pub Vec<(String, Option<String>)>);

impl Env {
    /// The value of `key`, if set (`Some(None)` for an inherited placeholder).
    pub fn get(&self, key: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }

    /// Sets `key`, replacing an existing entry in place.
    pub fn set(&mut self, key: &str, value: Option<String>) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    /// Whether there are no variables.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Env {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Splits `KEY=VALUE` / `KEY` (`None` value); `None` when the name is not a valid variable name.
pub fn parse_env_item(item: &str) -> Option<(String, Option<String>)> {
    let (name, value) = match item.split_once('=') {
        Some((name, value)) => (name, Some(value.to_string())),
        None => (item, None),
    };
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        || value.as_deref().is_some_and(|v| v.contains('\n'))
    {
        return None;
    }
    Some((name.to_string(), value))
}

/// `env`: a list of `KEY=VALUE` / `KEY` items, or a mapping of strings.
pub fn env(cx: &mut Cx, n: &Node) -> D<Env> {
    match &n.value {
        Value::Seq(items) => {
            let mut out = Env::default();
            let mut seen = std::collections::HashSet::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                let parsed = cx.at_index(i, |cx| {
                    let s = decode::string(cx, item)?;
                    parse_env_item(&s).ok_or_else(|| {
                        cx.error_help(
                            item,
                            format!("String should match pattern '^([a-zA-Z_][a-zA-Z0-9_]*)(=.*$|$)', got `{s}`"),
                            "write `NAME=value`, or a bare `NAME` to pass the variable from your environment".into(),
                        )
                    })
                    .map(|kv| (kv, s))
                });
                match parsed {
                    Ok(((key, value), text)) => {
                        if !seen.insert(key.clone()) {
                            cx.at_index(i, |cx| {
                                cx.error(item, format!("Duplicate environment variable: {text}"))
                            });
                            ok = false;
                        } else {
                            out.0.push((key, value));
                        }
                    }
                    Err(_) => ok = false,
                }
            }
            if ok { Ok(out) } else { Err(decode::Invalid) }
        }
        Value::Map(entries) => {
            let mut out = Env::default();
            // Position of each key, so a repeated key replaces in place in constant time.
            let mut index: std::collections::HashMap<String, usize> =
                std::collections::HashMap::new();
            let mut ok = true;
            for (k, v) in entries {
                let key = k.scalar_text().unwrap_or_default();
                match cx.at(&key, |cx| decode::string(cx, v)) {
                    Ok(value) => match index.get(&key) {
                        Some(&i) => out.0[i].1 = Some(value),
                        None => {
                            index.insert(key.clone(), out.0.len());
                            out.0.push((key, Some(value)));
                        }
                    },
                    Err(_) => ok = false,
                }
            }
            if ok { Ok(out) } else { Err(decode::Invalid) }
        }
        _ => Err(cx.error(
            n,
            format!(
                "expected a list of `KEY=VALUE` items or a mapping, got {}",
                n.kind_name()
            ),
        )),
    }
}
