//! The `preset` configuration: an LLM-serving preset with benchmark parameters.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::decode::{self, Cx, D, fields};
use super::node::{Node, Value};
use super::profile::{PROFILE_KEYS, ProfileParams};
use super::service::GatewayChoice;
use super::values::{self, Env};

/// The model a preset serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetModel {
    /// An exact model repository.
    pub repo: Option<String>,
    /// A base model whose variants are acceptable.
    pub base: Option<String>,
    /// The name clients use.
    pub name: Option<String>,
}

impl Serialize for PresetModel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let fields = [
            ("repo", &self.repo),
            ("base", &self.base),
            ("name", &self.name),
        ];
        let mut st = s.serialize_struct("PresetModel", 3)?;
        for (key, value) in fields {
            if let Some(v) = value {
                st.serialize_field(key, v)?;
            } else {
                st.skip_field(key)?;
            }
        }
        st.end()
    }
}

/// The benchmark prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// The prompt text.
    Text(String),
    /// A file with the prompt.
    Path(String),
}

impl Serialize for Prompt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Prompt::Text(t) => s.serialize_str(t),
            Prompt::Path(p) => {
                let mut st = s.serialize_struct("PromptFile", 1)?;
                st.serialize_field("path", p)?;
                st.end()
            }
        }
    }
}

/// A `preset` configuration.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PresetConfiguration {
    /// Always `preset`.
    #[serde(rename = "type")]
    #[schemars(with = "String")]
    pub kind: &'static str,
    /// Preset name.
    pub name: Option<String>,
    /// The model.
    #[schemars(with = "Option<crate::config::schema::PresetModelInput>")]
    pub model: PresetModel,
    /// Shorthand for `model: {base: ...}` (always unset after parsing).
    pub base: Option<String>,
    /// Shorthand for `model: {repo: ...}` (always unset after parsing).
    pub repo: Option<String>,
    /// Benchmark prompt.
    #[schemars(with = "Option<crate::config::schema::PromptInput>")]
    pub prompt: Option<Prompt>,
    /// Minimal context length.
    pub min_context_length: Option<i64>,
    /// Maximal time to first token, seconds.
    pub max_ttft: Option<f64>,
    /// Number of trials.
    pub trials: Option<i64>,
    /// Earlier preset runs to compare with.
    pub previous: Option<Vec<String>>,
    /// Concurrent requests.
    pub concurrency: Option<i64>,
    /// Input tokens per request.
    #[schemars(with = "Option<i64>")]
    pub input_tokens: i64,
    /// Output tokens per request.
    #[schemars(with = "Option<i64>")]
    pub output_tokens: i64,
    /// Tokens shared between requests.
    pub shared_prefix_tokens: Option<i64>,
    /// Data set of prompts.
    #[schemars(with = "Option<String>")]
    pub dataset: String,
    /// Run a baseline.
    #[schemars(with = "Option<bool>")]
    pub baseline: bool,
    /// Gateway choice.
    #[schemars(with = "Option<crate::config::schema::GatewayInput>")]
    pub gateway: Option<GatewayChoice>,
    /// Environment variables.
    #[schemars(with = "Option<crate::config::schema::EnvInput>")]
    pub env: Env,
    /// Profile parameters.
    #[serde(flatten)]
    pub profile: ProfileParams,
}

const OWN_KEYS: &[&str] = &[
    "name",
    "model",
    "base",
    "repo",
    "prompt",
    "min_context_length",
    "max_ttft",
    "trials",
    "previous",
    "concurrency",
    "input_tokens",
    "output_tokens",
    "shared_prefix_tokens",
    "dataset",
    "baseline",
    "gateway",
    "env",
];

fn positive(cx: &mut Cx, n: &Node) -> D<i64> {
    decode::integer_in(cx, n, Some(1), None)
}

fn model(cx: &mut Cx, n: &Node) -> D<PresetModel> {
    if !matches!(n.value, Value::Map(_)) {
        return Ok(PresetModel {
            repo: Some(decode::string(cx, n)?),
            base: None,
            name: None,
        });
    }
    let (ok, f) = fields!(cx, n, [], { repo, base, name });
    let repo = decode::opt(cx, "repo", f.repo, decode::string);
    let base = decode::opt(cx, "base", f.base, decode::string);
    let name = decode::opt(cx, "name", f.name, decode::string);
    ok?;
    let m = PresetModel {
        repo: repo?,
        base: base?,
        name: name?,
    };
    match (&m.repo, &m.base) {
        (Some(_), Some(_)) => Err(cx.error(n, "`base` and `repo` are mutually exclusive")),
        (None, None) => Err(cx.error(n, "Either `repo` or `base` must be specified")),
        _ => Ok(m),
    }
}

impl PresetConfiguration {
    /// Decodes a `type: preset` mapping.
    pub fn decode(cx: &mut Cx, n: &Node) -> D<PresetConfiguration> {
        let known: Vec<&str> = OWN_KEYS
            .iter()
            .chain(PROFILE_KEYS.iter())
            .copied()
            .collect();
        let ok = decode::collect_fields(cx, n, &known, &["type"], |k, _| known.contains(&k));
        let f = super::profile::pick!(n, {
            name, model, base, repo, prompt, min_context_length, max_ttft, trials, previous,
            concurrency, input_tokens, output_tokens, shared_prefix_tokens, dataset, baseline,
            gateway, env,
        });
        let name = decode::opt(cx, "name", f.name, decode::string);
        let model_v = decode::opt(cx, "model", f.model, model);
        let base = decode::opt(cx, "base", f.base, decode::string);
        let repo = decode::opt(cx, "repo", f.repo, decode::string);
        let prompt = decode::opt(cx, "prompt", f.prompt, |cx, n| {
            if n.as_map().is_some() {
                let (ok, f) = fields!(cx, n, [], { path });
                let path = decode::req(cx, n, "path", f.path, decode::string);
                ok?;
                return Ok(Prompt::Path(path?));
            }
            let text = decode::string(cx, n)?;
            if text.chars().count() > 10_000 {
                return Err(cx.error(n, "String should have at most 10000 characters"));
            }
            Ok(Prompt::Text(text))
        });
        let min_context_length =
            decode::opt(cx, "min_context_length", f.min_context_length, positive);
        let max_ttft = decode::opt(cx, "max_ttft", f.max_ttft, |cx, n| {
            let v = decode::float(cx, n)?;
            if v <= 0.0 {
                return Err(cx.error(n, "Input should be greater than 0"));
            }
            Ok(v)
        });
        let trials = decode::opt(cx, "trials", f.trials, positive);
        let previous = decode::opt(cx, "previous", f.previous, decode::string_list);
        let concurrency = decode::opt(cx, "concurrency", f.concurrency, positive);
        let input_tokens = decode::def(cx, "input_tokens", f.input_tokens, || 1024, positive);
        let output_tokens = decode::def(
            cx,
            "output_tokens",
            f.output_tokens,
            || 1024,
            |cx, n| decode::integer_in(cx, n, Some(2), None),
        );
        let shared = decode::opt(
            cx,
            "shared_prefix_tokens",
            f.shared_prefix_tokens,
            |cx, n| decode::integer_in(cx, n, Some(0), None),
        );
        let dataset = decode::def(
            cx,
            "dataset",
            f.dataset,
            || "random".to_string(),
            decode::string,
        );
        let baseline = decode::def(cx, "baseline", f.baseline, || true, decode::boolean);
        let gateway = decode::opt(cx, "gateway", f.gateway, |cx, n| match &n.value {
            Value::Bool(b) => Ok(GatewayChoice::Enabled(*b)),
            _ => values::entity_reference(cx, n).map(GatewayChoice::Named),
        });
        let env = decode::def(cx, "env", f.env, Env::default, values::env);
        let profile = ProfileParams::decode(cx, n);
        ok?;
        let (model_v, base, repo) = (model_v?, base?, repo?);
        let model = match (model_v, base, repo) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(cx.error(
                    n,
                    "`model` cannot be combined with the `base`/`repo` shorthand",
                ));
            }
            (None, Some(_), Some(_)) => {
                return Err(cx.error(n, "`base` and `repo` are mutually exclusive"));
            }
            (Some(m), None, None) => m,
            (None, Some(base), None) => PresetModel {
                repo: None,
                base: Some(base),
                name: None,
            },
            (None, None, Some(repo)) => PresetModel {
                repo: Some(repo),
                base: None,
                name: None,
            },
            (None, None, None) => {
                return Err(cx.at("model", |cx| {
                    cx.error(n, "Field required: set `model`, `base` or `repo`")
                }));
            }
        };
        let (input_tokens, shared) = (input_tokens?, shared?);
        let dataset = dataset?;
        if let Some(s) = shared
            && s >= input_tokens
        {
            return Err(cx.at("shared_prefix_tokens", |cx| {
                cx.error(n, "`shared_prefix_tokens` must be less than `input_tokens`")
            }));
        }
        if dataset != "random" {
            for key in ["input_tokens", "output_tokens", "shared_prefix_tokens"] {
                if n.get(key).is_some() {
                    return Err(cx.at(key, |cx| {
                        cx.error(
                            n,
                            format!("`{key}` is only supported with `dataset: random`"),
                        )
                    }));
                }
            }
        }
        Ok(PresetConfiguration {
            kind: "preset",
            name: name?,
            model,
            base: None,
            repo: None,
            prompt: prompt?,
            min_context_length: min_context_length?,
            max_ttft: max_ttft?,
            trials: trials?,
            previous: previous?,
            concurrency: concurrency?,
            input_tokens,
            output_tokens: output_tokens?,
            shared_prefix_tokens: shared,
            dataset,
            baseline: baseline?,
            gateway: gateway?,
            env: env?,
            profile: profile?,
        })
    }
}
