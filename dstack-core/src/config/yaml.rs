//! YAML text → [`Node`] tree, with positions and YAML 1.1 scalar resolution.
//!
//! This is the only module that knows which YAML library we use (libyaml, through the same
//! `unsafe-libyaml` crate that `serde_yaml` is built on), so the library can be swapped here alone.
//! We read events rather than `serde_yaml::Value` because we need the position of every node and
//! the style of every scalar: the original loads with PyYAML (YAML 1.1), where plain `off` is a
//! boolean, `3.10` is the float 3.1 and `2222:22` is a base-60 integer, while a quoted `"off"`
//! stays a string.
//!
//! All `unsafe` code of the crate lives here, confined to driving the libyaml parser.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::mem::MaybeUninit;

use super::node::{Mark, Node, Value};

/// The YAML text could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// What went wrong, in libyaml's words.
    pub message: String,
    /// Where.
    pub mark: Mark,
}

/// A cap on nodes created, so that aliases cannot blow a small file up ("billion laughs").
const MAX_NODES: usize = 1_000_000;

/// Loads one YAML document. An empty stream loads as `null`.
pub fn load(text: &str) -> Result<Node, YamlError> {
    let mut parser = Parser::new(text);
    let mut builder = Builder::default();
    let mut documents = 0usize;
    loop {
        let event = parser.next()?;
        match event {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::DocumentStart(mark) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        message: "expected a single document in the stream".into(),
                        mark,
                    });
                }
            }
            Event::StreamEnd => break,
            other => builder.feed(other)?,
        }
    }
    Ok(builder.root.unwrap_or(Node::new(Value::Null)))
}

enum Event {
    StreamStart,
    StreamEnd,
    DocumentStart(Mark),
    DocumentEnd,
    Alias(String, Mark),
    Scalar {
        value: String,
        plain: bool,
        tag: Option<String>,
        anchor: Option<String>,
        mark: Mark,
    },
    SeqStart(Option<String>, Mark),
    SeqEnd,
    MapStart(Option<String>, Mark),
    MapEnd,
}

enum Frame {
    Seq {
        items: Vec<Node>,
        anchor: Option<String>,
        mark: Mark,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        merges: Vec<Node>,
        anchor: Option<String>,
        mark: Mark,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<String, Node>,
    root: Option<Node>,
    nodes: usize,
}

impl Builder {
    fn feed(&mut self, event: Event) -> Result<(), YamlError> {
        match event {
            Event::Scalar {
                value,
                plain,
                tag,
                anchor,
                mark,
            } => {
                let is_merge_key = plain && tag.is_none() && value == "<<" && self.expects_key();
                let node = if is_merge_key {
                    Node {
                        value: Value::Str(MERGE_KEY.into()),
                        mark,
                    }
                } else {
                    Node {
                        value: resolve_scalar(value, plain, tag.as_deref(), mark)?,
                        mark,
                    }
                };
                if let Some(anchor) = anchor {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node)
            }
            Event::Alias(name, mark) => {
                let node = self.anchors.get(&name).cloned().ok_or_else(|| YamlError {
                    message: format!("found undefined alias {name:?}"),
                    mark,
                })?;
                self.nodes += count_nodes(&node);
                self.push(node)
            }
            Event::SeqStart(anchor, mark) => {
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    mark,
                });
                Ok(())
            }
            Event::MapStart(anchor, mark) => {
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    merges: Vec::new(),
                    anchor,
                    mark,
                });
                Ok(())
            }
            Event::SeqEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    items,
                    anchor,
                    mark,
                }) => self.finish(Value::Seq(items), anchor, mark),
                _ => Err(internal("unbalanced sequence end")),
            },
            Event::MapEnd => match self.stack.pop() {
                Some(Frame::Map {
                    entries,
                    merges,
                    anchor,
                    mark,
                    ..
                }) => {
                    let entries = apply_merges(entries, merges)?;
                    self.finish(Value::Map(entries), anchor, mark)
                }
                _ => Err(internal("unbalanced mapping end")),
            },
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => Ok(()),
        }
    }

    fn expects_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn finish(
        &mut self,
        value: Value,
        anchor: Option<String>,
        mark: Mark,
    ) -> Result<(), YamlError> {
        let node = Node { value, mark };
        if let Some(anchor) = anchor {
            self.anchors.insert(anchor, node.clone());
        }
        self.push(node)
    }

    fn push(&mut self, node: Node) -> Result<(), YamlError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                message: format!("the document expands to more than {MAX_NODES} nodes"),
                mark: node.mark,
            });
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                key,
                merges,
                ..
            }) => match key.take() {
                None => *key = Some(node),
                Some(k) if k.as_str() == Some(MERGE_KEY) => merges.push(node),
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }
}

/// A private spelling for the `<<` merge key, which cannot collide with a real key.
const MERGE_KEY: &str = "\u{0}<<";

/// Applies YAML merge keys the way PyYAML does: merged entries come first and keys written in
/// the mapping itself win over merged ones.
fn apply_merges(
    entries: Vec<(Node, Node)>,
    merges: Vec<Node>,
) -> Result<Vec<(Node, Node)>, YamlError> {
    if merges.is_empty() {
        return Ok(entries);
    }
    let mut merged: Vec<(Node, Node)> = Vec::new();
    for source in merges {
        let sources = match source.value {
            Value::Map(m) => vec![m],
            Value::Seq(items) => {
                let mut maps = Vec::new();
                for item in items {
                    match item.value {
                        Value::Map(m) => maps.push(m),
                        _ => {
                            return Err(YamlError {
                                message: "expected a mapping for merging".into(),
                                mark: item.mark,
                            });
                        }
                    }
                }
                maps
            }
            _ => {
                return Err(YamlError {
                    message: "expected a mapping or list of mappings for merging".into(),
                    mark: source.mark,
                });
            }
        };
        for map in sources {
            for (k, v) in map {
                if !merged.iter().any(|(m, _)| m.value == k.value) {
                    merged.push((k, v));
                }
            }
        }
    }
    merged.retain(|(k, _)| !entries.iter().any(|(e, _)| e.value == k.value));
    merged.extend(entries);
    Ok(merged)
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

fn internal(message: &str) -> YamlError {
    YamlError {
        message: message.into(),
        mark: Mark::NONE,
    }
}

/// Resolves a scalar to a value. Quoted and block scalars are strings; plain scalars follow
/// PyYAML's implicit resolvers for YAML 1.1; explicit standard tags are honoured.
fn resolve_scalar(
    text: String,
    plain: bool,
    tag: Option<&str>,
    mark: Mark,
) -> Result<Value, YamlError> {
    let bad = |what: &str| YamlError {
        message: format!("cannot read {text:?} as {what}"),
        mark,
    };
    match tag {
        None if plain => Ok(resolve_plain(text)),
        None | Some("!") => Ok(Value::Str(text)),
        Some("tag:yaml.org,2002:str") => Ok(Value::Str(text)),
        Some("tag:yaml.org,2002:null") => Ok(Value::Null),
        Some("tag:yaml.org,2002:bool") => match resolve_plain(text.clone()) {
            v @ Value::Bool(_) => Ok(v),
            _ => Err(bad("a boolean")),
        },
        Some("tag:yaml.org,2002:int") => match resolve_plain(text.clone()) {
            v @ Value::Int(_) => Ok(v),
            _ => Err(bad("an integer")),
        },
        Some("tag:yaml.org,2002:float") => match resolve_plain(text.clone()) {
            Value::Int(i) => Ok(Value::Float(i as f64)),
            v @ Value::Float(_) => Ok(v),
            _ => Err(bad("a float")),
        },
        Some(other) => Err(YamlError {
            message: format!("could not determine a constructor for the tag {other:?}"),
            mark,
        }),
    }
}

/// PyYAML's implicit resolution of a plain scalar.
fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        if let Some(i) = resolve_int(&text) {
            return Value::Int(i);
        }
        if let Some(f) = resolve_float(&text) {
            return Value::Float(f);
        }
    }
    Value::Str(text)
}

fn split_sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

/// `[-+]?(0b[01_]+ | 0[0-7_]+ | 0 | [1-9][0-9_]* | 0x[0-9a-fA-F_]+ | [1-9][0-9_]*(:[0-5]?[0-9])+)`
fn resolve_int(s: &str) -> Option<i64> {
    let (negative, body) = split_sign(s);
    let bytes = body.as_bytes();
    let magnitude: i64 = if let Some(bin) = body.strip_prefix("0b") {
        parse_radix(bin, 2)?
    } else if let Some(hex) = body.strip_prefix("0x") {
        parse_radix(hex, 16)?
    } else if body == "0" {
        0
    } else if bytes.first() == Some(&b'0') {
        parse_radix(&body[1..], 8)?
    } else if bytes.first().is_some_and(|b| (b'1'..=b'9').contains(b)) {
        if body.contains(':') {
            parse_sexagesimal(body)?
        } else {
            parse_radix(body, 10)?
        }
    } else {
        return None;
    };
    Some(if negative { -magnitude } else { magnitude })
}

fn parse_radix(digits: &str, radix: u32) -> Option<i64> {
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    let mut any = false;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(radix)? as i64;
        value = value.checked_mul(radix as i64)?.checked_add(d)?;
        any = true;
    }
    any.then_some(value)
}

fn parse_sexagesimal(body: &str) -> Option<i64> {
    let mut parts = body.split(':');
    let head = parts.next()?;
    let mut value = parse_radix(head, 10)?;
    for part in parts {
        if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if part.len() == 2 && part.as_bytes()[0] > b'5' {
            return None;
        }
        let digit: i64 = part.parse().ok()?;
        value = value.checked_mul(60)?.checked_add(digit)?;
    }
    Some(value)
}

/// PyYAML's float resolver: a dot is required (`1e5` is a string), the exponent needs a sign.
fn resolve_float(s: &str) -> Option<f64> {
    let (negative, body) = split_sign(s);
    let sign = if negative { -1.0 } else { 1.0 };
    match body {
        ".inf" | ".Inf" | ".INF" => return Some(sign * f64::INFINITY),
        ".nan" | ".NaN" | ".NAN" if s == body => return Some(f64::NAN),
        _ => {}
    }
    if body.contains(':') {
        // base 60 float: [0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*
        let (int_part, frac) = body.split_once('.')?;
        let whole = parse_sexagesimal_loose(int_part)?;
        let frac = parse_fraction(frac)?;
        return Some(sign * (whole as f64 + frac));
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.')?;
    let int_ok = if int_part.is_empty() {
        // `.5` form: no sign allowed before the dot, and the fraction must start with a digit
        !negative && s == body && frac_part.as_bytes().first().is_some_and(u8::is_ascii_digit)
    } else {
        int_part.as_bytes()[0].is_ascii_digit()
            && int_part.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    };
    if !int_ok || !frac_part.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return None;
    }
    if let Some(exp) = exponent {
        let (first, rest) = exp.split_at(exp.len().min(1));
        if !matches!(first, "+" | "-")
            || rest.is_empty()
            || !rest.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
    }
    let cleaned: String = s.chars().filter(|&c| c != '_').collect();
    cleaned.parse().ok()
}

fn parse_sexagesimal_loose(body: &str) -> Option<i64> {
    if !body.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    parse_sexagesimal(body)
}

fn parse_fraction(frac: &str) -> Option<f64> {
    let digits: String = frac.chars().filter(|&c| c != '_').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.is_empty() {
        return Some(0.0);
    }
    format!("0.{digits}").parse().ok()
}

/// Writes a JSON value as block-style YAML (for the small config files the server and CLI
/// write). Strings stay plain only when YAML 1.1 would read them back as the same string.
pub fn to_yaml(value: &serde_json::Value) -> String {
    let mut out = String::new();
    emit(value, 0, &mut out);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn scalar_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "null".into(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => {
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_./-@".contains(c))
                && resolve_plain(s.clone()) == Value::Str(s.clone());
            if plain {
                s.clone()
            } else {
                serde_json::Value::String(s.clone()).to_string()
            }
        }
        serde_json::Value::Array(a) if a.is_empty() => "[]".into(),
        serde_json::Value::Object(o) if o.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

fn is_block(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::Object(o) => !o.is_empty(),
        _ => false,
    }
}

fn emit(value: &serde_json::Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = scalar_text(&serde_json::Value::String(k.clone()));
                if is_block(v) {
                    out.push_str(&format!("{pad}{key}:\n"));
                    let child = if v.is_array() { indent } else { indent + 2 };
                    emit(v, child, out);
                } else {
                    out.push_str(&format!("{pad}{key}: {}\n", scalar_text(v)));
                }
            }
        }
        serde_json::Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_block(item) && item.is_object() {
                    let mut inner = String::new();
                    emit(item, indent + 2, &mut inner);
                    let trimmed = inner.trim_start_matches(' ');
                    out.push_str(&format!("{pad}- {trimmed}"));
                } else if is_block(item) {
                    out.push_str(&format!("{pad}-\n"));
                    emit(item, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar_text(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar_text(other))),
    }
}

/// Owns a libyaml parser reading from a borrowed string.
struct Parser<'a> {
    raw: Box<MaybeUninit<unsafe_libyaml::yaml_parser_t>>,
    _input: &'a str,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Parser<'a> {
        let mut raw: Box<MaybeUninit<unsafe_libyaml::yaml_parser_t>> =
            Box::new(MaybeUninit::uninit());
        // SAFETY: `raw` is a valid allocation for a parser; libyaml initialises it in place
        // (it only fails on allocation failure, where it leaves the struct zeroed, which
        // `yaml_parser_delete` accepts). The input buffer outlives the parser through `'a`.
        unsafe {
            let parser = raw.as_mut_ptr();
            let _ = unsafe_libyaml::yaml_parser_initialize(parser);
            unsafe_libyaml::yaml_parser_set_encoding(parser, unsafe_libyaml::YAML_UTF8_ENCODING);
            unsafe_libyaml::yaml_parser_set_input_string(
                parser,
                input.as_ptr(),
                input.len() as u64,
            );
        }
        Parser { raw, _input: input }
    }

    fn next(&mut self) -> Result<Event, YamlError> {
        let mut event = MaybeUninit::<unsafe_libyaml::yaml_event_t>::uninit();
        // SAFETY: the parser was initialised in `new`; on success libyaml fills `event`, which
        // we read once and then release with `yaml_event_delete`. Strings are copied out before
        // the event is deleted.
        unsafe {
            let parser = self.raw.as_mut_ptr();
            let failed_before = (&*parser).error != unsafe_libyaml::YAML_NO_ERROR;
            if failed_before || unsafe_libyaml::yaml_parser_parse(parser, event.as_mut_ptr()).fail {
                return Err(parser_error(parser));
            }
            let event = event.as_mut_ptr();
            let converted = convert(&*event);
            unsafe_libyaml::yaml_event_delete(event);
            Ok(converted)
        }
    }
}

impl Drop for Parser<'_> {
    fn drop(&mut self) {
        // SAFETY: the parser was initialised in `new` and is deleted exactly once.
        unsafe { unsafe_libyaml::yaml_parser_delete(self.raw.as_mut_ptr()) }
    }
}

fn mark_of(start: &unsafe_libyaml::yaml_mark_t, end: &unsafe_libyaml::yaml_mark_t) -> Mark {
    Mark {
        line: start.line as u32 + 1,
        column: start.column as u32 + 1,
        offset: start.index as u32,
        len: end.index.saturating_sub(start.index) as u32,
    }
}

/// # Safety
/// `ptr` must be null or point to a NUL-terminated string.
unsafe fn c_string(ptr: *const u8) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    let cstr = unsafe { std::ffi::CStr::from_ptr(ptr.cast()) };
    Some(String::from_utf8_lossy(cstr.to_bytes()).into_owned())
}

/// # Safety
/// `event` must be a valid event returned by `yaml_parser_parse`.
unsafe fn convert(event: &unsafe_libyaml::yaml_event_t) -> Event {
    let mark = mark_of(&event.start_mark, &event.end_mark);
    // SAFETY: each union field is read only for the event type that defines it.
    unsafe {
        match event.type_ {
            unsafe_libyaml::YAML_STREAM_START_EVENT => Event::StreamStart,
            unsafe_libyaml::YAML_STREAM_END_EVENT => Event::StreamEnd,
            unsafe_libyaml::YAML_DOCUMENT_START_EVENT => Event::DocumentStart(mark),
            unsafe_libyaml::YAML_DOCUMENT_END_EVENT => Event::DocumentEnd,
            unsafe_libyaml::YAML_ALIAS_EVENT => {
                Event::Alias(c_string(event.data.alias.anchor).unwrap_or_default(), mark)
            }
            unsafe_libyaml::YAML_SCALAR_EVENT => {
                let s = &event.data.scalar;
                let bytes = std::slice::from_raw_parts(s.value, s.length as usize);
                Event::Scalar {
                    value: String::from_utf8_lossy(bytes).into_owned(),
                    plain: s.style == unsafe_libyaml::YAML_PLAIN_SCALAR_STYLE,
                    tag: c_string(s.tag),
                    anchor: c_string(s.anchor),
                    mark,
                }
            }
            unsafe_libyaml::YAML_SEQUENCE_START_EVENT => {
                Event::SeqStart(c_string(event.data.sequence_start.anchor), mark)
            }
            unsafe_libyaml::YAML_SEQUENCE_END_EVENT => Event::SeqEnd,
            unsafe_libyaml::YAML_MAPPING_START_EVENT => {
                Event::MapStart(c_string(event.data.mapping_start.anchor), mark)
            }
            _ => Event::MapEnd,
        }
    }
}

/// # Safety
/// `parser` must be an initialised parser.
unsafe fn parser_error(parser: *const unsafe_libyaml::yaml_parser_t) -> YamlError {
    // SAFETY: guaranteed by the caller; libyaml's problem/context are static strings or null.
    unsafe {
        let state = &*parser;
        let problem = c_string(state.problem as *const u8).unwrap_or_else(|| "invalid YAML".into());
        let context = c_string(state.context as *const u8);
        let pm = &state.problem_mark;
        let message = match context {
            Some(context) => format!("{context}: {problem}"),
            None => problem,
        };
        YamlError {
            message,
            mark: Mark {
                line: pm.line as u32 + 1,
                column: pm.column as u32 + 1,
                offset: pm.index as u32,
                len: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Value {
        let doc = load(&format!("k: {text}\n")).expect("loads");
        doc.get("k").expect("key").value.clone()
    }

    #[test]
    fn yaml_11_scalars() {
        assert_eq!(scalar("off"), Value::Bool(false));
        assert_eq!(scalar("Yes"), Value::Bool(true));
        assert_eq!(scalar("'off'"), Value::Str("off".into()));
        assert_eq!(scalar("3.10"), Value::Float(3.1));
        assert_eq!(scalar("2222:22"), Value::Int(133342));
        assert_eq!(scalar("80:8000"), Value::Str("80:8000".into()));
        // the last part of a base-60 number is 0..59, so `8080:80` stays a string
        assert_eq!(scalar("8080:80"), Value::Str("8080:80".into()));
        assert_eq!(scalar("0x1F"), Value::Int(31));
        assert_eq!(scalar("010"), Value::Int(8));
        assert_eq!(scalar("1_000"), Value::Int(1000));
        assert_eq!(scalar("1e5"), Value::Str("1e5".into()));
        assert_eq!(scalar("1.0e+5"), Value::Float(100000.0));
        assert_eq!(scalar(".5"), Value::Float(0.5));
        assert_eq!(scalar("~"), Value::Null);
        assert_eq!(scalar(""), Value::Null);
        assert_eq!(scalar("-7"), Value::Int(-7));
        assert_eq!(scalar("A100:2"), Value::Str("A100:2".into()));
        assert_eq!(scalar("24GB..:2"), Value::Str("24GB..:2".into()));
        assert_eq!(scalar("1.."), Value::Str("1..".into()));
        assert_eq!(scalar("..4"), Value::Str("..4".into()));
        assert_eq!(scalar("!!str 5"), Value::Str("5".into()));
    }

    #[test]
    fn marks_are_one_based() {
        let doc = load("a: 1\nb:\n  c: x\n").expect("loads");
        let c = doc.get("b").and_then(|b| b.get("c")).expect("c");
        assert_eq!((c.mark.line, c.mark.column), (3, 6));
        assert_eq!(c.mark.offset, 13);
    }

    #[test]
    fn anchors_and_merges() {
        let doc = load("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n").expect("loads");
        let derived = doc.get("derived").expect("derived");
        assert_eq!(derived.get("x").map(|n| &n.value), Some(&Value::Int(1)));
        assert_eq!(derived.get("y").map(|n| &n.value), Some(&Value::Int(3)));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = load("a: [1, 2\nb: 3\n").expect_err("fails");
        assert!(err.mark.line >= 1, "{err:?}");
        let err = load("a: 1\n---\nb: 2\n").expect_err("two documents");
        assert!(err.message.contains("single document"));
    }

    #[test]
    fn emitted_yaml_reads_back() {
        let value = serde_json::json!({
            "projects": [{"default": true, "name": "main", "token": "1b2c-3d", "url": "http://127.0.0.1:3000", "backends": []}],
            "repos": [],
            "odd": ["yes", "1.5", "", "a b", "x: y"]
        });
        let text = to_yaml(&value);
        assert!(
            text.starts_with("projects:\n- default: true\n  name: main\n"),
            "{text}"
        );
        assert_eq!(load(&text).expect("reads back").to_json(), value);
    }

    #[test]
    fn garbage_does_not_panic() {
        for text in [
            "",
            ":",
            "- - -",
            "{",
            "a: *x",
            "&a [*a]",
            "\t",
            "? a\n: b",
            "%YAML 1.1\n---\na: 1",
        ] {
            let _ = load(text);
        }
    }
}
