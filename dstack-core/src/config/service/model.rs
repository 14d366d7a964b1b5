//! `model`: the model a service serves, for the OpenAI-compatible model endpoint.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::config::decode::{self, Cx, D, fields};
use crate::config::node::{Node, Value};

/// The model a service serves, for the OpenAI-compatible model endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// The service speaks the OpenAI API under `prefix`.
    OpenAi {
        /// Model name clients ask for.
        name: String,
        /// Path prefix of the OpenAI API in the service (default `/v1`).
        prefix: String,
    },
    /// A TGI service.
    Tgi {
        /// Model name clients ask for.
        name: String,
        /// Chat template override.
        chat_template: Option<String>,
        /// End-of-sequence token override.
        eos_token: Option<String>,
    },
}

impl ModelSpec {
    /// The model name.
    pub fn name(&self) -> &str {
        match self {
            ModelSpec::OpenAi { name, .. } | ModelSpec::Tgi { name, .. } => name,
        }
    }
}

impl Serialize for ModelSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ModelSpec::OpenAi { name, prefix } => {
                let mut st = s.serialize_struct("OpenAIChatModel", 4)?;
                st.serialize_field("type", "chat")?;
                st.serialize_field("name", name)?;
                st.serialize_field("format", "openai")?;
                st.serialize_field("prefix", prefix)?;
                st.end()
            }
            ModelSpec::Tgi {
                name,
                chat_template,
                eos_token,
            } => {
                let mut st = s.serialize_struct("TGIChatModel", 5)?;
                st.serialize_field("type", "chat")?;
                st.serialize_field("name", name)?;
                st.serialize_field("format", "tgi")?;
                st.serialize_field("chat_template", chat_template)?;
                st.serialize_field("eos_token", eos_token)?;
                st.end()
            }
        }
    }
}

pub(super) fn model(cx: &mut Cx, n: &Node) -> D<ModelSpec> {
    if !matches!(n.value, Value::Map(_)) {
        return Ok(ModelSpec::OpenAi {
            name: decode::string(cx, n)?,
            prefix: "/v1".into(),
        });
    }
    let chat_type = |cx: &mut Cx, n: &Node| decode::one_of(cx, n, &[("chat", ())]);
    match n.get("format").and_then(Node::as_str) {
        Some("openai") => {
            let (ok, f) = fields!(cx, n, ["format"], { r#type, name, prefix });
            let t = decode::opt(cx, "type", f.r#type, chat_type);
            let name = decode::req(cx, n, "name", f.name, decode::string);
            let prefix = decode::def(cx, "prefix", f.prefix, || "/v1".to_string(), decode::string);
            ok?;
            t?;
            Ok(ModelSpec::OpenAi {
                name: name?,
                prefix: prefix?,
            })
        }
        Some("tgi") => {
            let (ok, f) = fields!(cx, n, ["format"], { r#type, name, chat_template, eos_token });
            let t = decode::opt(cx, "type", f.r#type, chat_type);
            let name = decode::req(cx, n, "name", f.name, decode::string);
            let chat_template = decode::opt(cx, "chat_template", f.chat_template, decode::string);
            let eos_token = decode::opt(cx, "eos_token", f.eos_token, decode::string);
            ok?;
            t?;
            Ok(ModelSpec::Tgi {
                name: name?,
                chat_template: chat_template?,
                eos_token: eos_token?,
            })
        }
        Some(other) => Err(cx.at("format", |cx| {
            cx.error(
                n.get("format").unwrap_or(n),
                format!("Input tag '{other}' found using 'format' does not match any of the expected tags: 'openai', 'tgi'"),
            )
        })),
        None => Err(cx.error_help(
            n,
            "Unable to extract tag using discriminator 'format'",
            "add `format: openai` (or `tgi`), or write the model name as a plain string".into(),
        )),
    }
}
