//! The `preset` configuration: an LLM-serving preset with benchmark parameters.
//!
//! Follows the original's `PresetConfiguration` (`core/models/presets.py`): optional fields stay
//! unset (`null`) when omitted, their defaults (`input_tokens` 1024, `output_tokens` 1024,
//! `dataset` `random`, `baseline` true) are applied by whoever reads them
//! ([`PresetConfiguration::effective_input_tokens`] and friends).

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::Issue;
use super::decode::{self, Cx, D, Invalid, fields};
use super::node::{Node, Value};
use super::profile::{PROFILE_KEYS, ProfileParams};
use super::values::{self, EntityReference, Env};

/// `input_tokens` when unset.
pub const DEFAULT_INPUT_TOKENS: i64 = 1024;
/// `output_tokens` when unset.
pub const DEFAULT_OUTPUT_TOKENS: i64 = 1024;
/// `dataset` when unset.
pub const DEFAULT_DATASET: &str = "random";
/// The longest inline `prompt`, in characters.
pub const MAX_PROMPT_LENGTH: usize = 10_000;

/// The model a preset serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresetModel {
    /// An exact model repository (`PresetModelRepo`), with the name clients use (default: the
    /// repository).
    Repo {
        /// The repository or path to deploy.
        repo: String,
        /// The client-facing model name.
        name: Option<String>,
    },
    /// A base model whose compatible variants are acceptable (`PresetModelBase`).
    Base {
        /// The base model.
        base: String,
    },
}

impl PresetModel {
    /// The name clients ask for.
    pub fn api_model_name(&self) -> &str {
        match self {
            PresetModel::Repo { repo, name } => name.as_deref().unwrap_or(repo),
            PresetModel::Base { base } => base,
        }
    }
}

impl Serialize for PresetModel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PresetModel::Repo { repo, name } => {
                let mut st = s.serialize_struct("PresetModelRepo", 2)?;
                st.serialize_field("repo", repo)?;
                st.serialize_field("name", name)?;
                st.end()
            }
            PresetModel::Base { base } => {
                let mut st = s.serialize_struct("PresetModelBase", 1)?;
                st.serialize_field("base", base)?;
                st.end()
            }
        }
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
                let mut st = s.serialize_struct("PresetPromptFile", 1)?;
                st.serialize_field("path", p)?;
                st.end()
            }
        }
    }
}

/// A preset's `gateway`: the original keeps a name as the string given (no reference parsing
/// here, unlike a service's `gateway`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresetGateway {
    /// `true` = the default gateway, `false` = none.
    Enabled(bool),
    /// `{project, name}`.
    Reference(EntityReference),
    /// A name, as written.
    Name(String),
}

impl Serialize for PresetGateway {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PresetGateway::Enabled(b) => s.serialize_bool(*b),
            PresetGateway::Reference(r) => r.serialize(s),
            PresetGateway::Name(n) => s.serialize_str(n),
        }
    }
}

/// A `preset` configuration.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PresetConfiguration {
    /// Always `preset`.
    #[schemars(rename = "type", with = "String")]
    pub kind: &'static str,
    /// Preset name.
    pub name: Option<String>,
    /// The model.
    #[schemars(with = "Option<crate::config::schema::PresetModelInput>")]
    pub model: PresetModel,
    /// Shorthand for `model: {base: ...}` (unset after parsing).
    pub base: Option<String>,
    /// Shorthand for `model: {repo: ...}` (unset after parsing).
    pub repo: Option<String>,
    /// Benchmark prompt.
    #[schemars(with = "Option<crate::config::schema::PromptInput>")]
    pub prompt: Option<Prompt>,
    /// Minimal context length.
    pub min_context_length: Option<i64>,
    /// Maximal p50 time to first token, milliseconds.
    pub max_ttft: Option<i64>,
    /// Number of trials.
    pub trials: Option<i64>,
    /// Earlier presets to improve on.
    pub previous: Option<Vec<String>>,
    /// Concurrent requests.
    pub concurrency: Option<i64>,
    /// Input tokens per request (default 1024).
    pub input_tokens: Option<i64>,
    /// Output tokens per request (default 1024).
    pub output_tokens: Option<i64>,
    /// Tokens shared between requests (default 0).
    pub shared_prefix_tokens: Option<i64>,
    /// Data set of prompts (default `random`).
    pub dataset: Option<String>,
    /// Run a baseline first (default true).
    pub baseline: Option<bool>,
    /// Gateway choice.
    #[schemars(with = "Option<crate::config::schema::PresetGatewayInput>")]
    pub gateway: Option<PresetGateway>,
    /// Environment variables.
    #[schemars(with = "Option<crate::config::schema::EnvInput>")]
    pub env: Env,
    /// Profile parameters.
    #[schemars(flatten)]
    pub profile: ProfileParams,
}

impl Serialize for PresetConfiguration {
    /// The original's field order: the profile parameters (the base class) first.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shape<'a> {
            #[serde(flatten)]
            profile: &'a ProfileParams,
            #[serde(rename = "type")]
            kind: &'static str,
            name: &'a Option<String>,
            model: &'a PresetModel,
            base: &'a Option<String>,
            repo: &'a Option<String>,
            prompt: &'a Option<Prompt>,
            min_context_length: Option<i64>,
            max_ttft: Option<i64>,
            trials: Option<i64>,
            previous: &'a Option<Vec<String>>,
            concurrency: Option<i64>,
            input_tokens: Option<i64>,
            output_tokens: Option<i64>,
            shared_prefix_tokens: Option<i64>,
            dataset: &'a Option<String>,
            baseline: Option<bool>,
            gateway: &'a Option<PresetGateway>,
            env: &'a Env,
        }
        Shape {
            profile: &self.profile,
            kind: self.kind,
            name: &self.name,
            model: &self.model,
            base: &self.base,
            repo: &self.repo,
            prompt: &self.prompt,
            min_context_length: self.min_context_length,
            max_ttft: self.max_ttft,
            trials: self.trials,
            previous: &self.previous,
            concurrency: self.concurrency,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            shared_prefix_tokens: self.shared_prefix_tokens,
            dataset: &self.dataset,
            baseline: self.baseline,
            gateway: &self.gateway,
            env: &self.env,
        }
        .serialize(s)
    }
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

/// pydantic's `PositiveInt`.
fn positive(cx: &mut Cx, n: &Node) -> D<i64> {
    let v = decode::integer(cx, n)?;
    if v <= 0 {
        return Err(cx.error(n, "Input should be greater than 0"));
    }
    Ok(v)
}

/// The original's `_validate_model`: a string with something besides whitespace.
fn model_text(cx: &mut Cx, n: &Node, field: &str) -> D<String> {
    let s = decode::string(cx, n)?;
    if s.trim().is_empty() {
        return Err(cx.error(
            n,
            format!("Preset model {field} must be a non-empty string"),
        ));
    }
    Ok(s)
}

fn model_repo(cx: &mut Cx, n: &Node) -> D<PresetModel> {
    let (ok, f) = fields!(cx, n, [], { repo, name });
    let repo = decode::req(cx, n, "repo", f.repo, |cx, n| model_text(cx, n, "repo"));
    let name = decode::opt(cx, "name", f.name, |cx, n| model_text(cx, n, "name"));
    ok?;
    Ok(PresetModel::Repo {
        repo: repo?,
        name: name?,
    })
}

fn model_base(cx: &mut Cx, n: &Node) -> D<PresetModel> {
    let (ok, f) = fields!(cx, n, [], { base });
    let base = decode::req(cx, n, "base", f.base, |cx, n| model_text(cx, n, "base"));
    ok?;
    Ok(PresetModel::Base { base: base? })
}

/// `model`: a string is an exact repository; a mapping is `{repo, name?}` or `{base}` (the
/// first that fits; when neither does, both members' problems are reported, as pydantic does).
fn model(cx: &mut Cx, n: &Node) -> D<PresetModel> {
    if n.as_map().is_none() {
        if let Value::Str(_) = n.value {
            let repo = model_text(cx, n, "model")?;
            return Ok(PresetModel::Repo { repo, name: None });
        }
        return Err(cx.error(
            n,
            format!(
                "Input should be a valid dictionary or instance of PresetModelRepo, got {}",
                n.kind_name()
            ),
        ));
    }
    let (repo, repo_issues) = cx.attempt(|cx| model_repo(cx, n));
    if repo.is_ok() && repo_issues.is_empty() {
        return repo;
    }
    let (base, base_issues) = cx.attempt(|cx| model_base(cx, n));
    if base.is_ok() && base_issues.is_empty() {
        return base;
    }
    // The original validates with unknown properties ignored first: a member that fails only
    // by them is the value its other rules see, and both members' problems are reported.
    let only_unknown = |out: &D<PresetModel>, issues: &[Issue]| {
        out.is_ok() && issues.iter().all(Issue::is_unknown_property)
    };
    let value = if only_unknown(&repo, &repo_issues) {
        repo
    } else if only_unknown(&base, &base_issues) {
        base
    } else {
        Err(Invalid)
    };
    cx.record(repo_issues);
    cx.record(base_issues);
    value
}

fn prompt(cx: &mut Cx, n: &Node) -> D<Prompt> {
    if n.as_map().is_some() {
        let (ok, f) = fields!(cx, n, [], { path });
        let path = decode::req(cx, n, "path", f.path, |cx, n| {
            let p = decode::string(cx, n)?;
            if p.trim().is_empty() {
                return Err(cx.error(n, "Prompt path must be a non-empty string"));
            }
            Ok(p)
        });
        ok?;
        return Ok(Prompt::Path(path?));
    }
    let text = decode::string(cx, n)?;
    if text.trim().is_empty() {
        return Err(cx.error(n, "Prompt must be a non-empty string"));
    }
    if text.chars().count() > MAX_PROMPT_LENGTH {
        return Err(cx.error(
            n,
            format!("Prompt must be at most {MAX_PROMPT_LENGTH} characters"),
        ));
    }
    Ok(Prompt::Text(text))
}

/// `gateway`: tried as a boolean, a reference mapping, then a string.
fn gateway(cx: &mut Cx, n: &Node) -> D<PresetGateway> {
    if let Some(b) = decode::lax_bool(n) {
        return Ok(PresetGateway::Enabled(b));
    }
    if n.as_map().is_some() {
        return values::entity_reference(cx, n).map(PresetGateway::Reference);
    }
    decode::string(cx, n).map(PresetGateway::Name)
}

/// Python truthiness of a shorthand value: present, not null, not `""`/`0`/`false`/empty.
fn truthy(n: Option<&Node>) -> bool {
    n.is_some_and(|n| match &n.value {
        Value::Null | Value::Bool(false) => false,
        Value::Str(s) => !s.is_empty(),
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Seq(items) => !items.is_empty(),
        Value::Map(entries) => !entries.is_empty(),
        _ => true,
    })
}

impl PresetConfiguration {
    /// `input_tokens`, or its default.
    pub fn effective_input_tokens(&self) -> i64 {
        self.input_tokens.unwrap_or(DEFAULT_INPUT_TOKENS)
    }

    /// `output_tokens`, or its default.
    pub fn effective_output_tokens(&self) -> i64 {
        self.output_tokens.unwrap_or(DEFAULT_OUTPUT_TOKENS)
    }

    /// `dataset`, or its default.
    pub fn effective_dataset(&self) -> &str {
        self.dataset.as_deref().unwrap_or(DEFAULT_DATASET)
    }

    /// `baseline`, or its default.
    pub fn effective_baseline(&self) -> bool {
        self.baseline.unwrap_or(true)
    }

    /// Decodes a `type: preset` mapping.
    pub fn decode(cx: &mut Cx, n: &Node) -> D<PresetConfiguration> {
        let known: Vec<&str> = OWN_KEYS
            .iter()
            .chain(PROFILE_KEYS.iter())
            .copied()
            .collect();
        let f = super::profile::pick!(n, {
            name, model, base, repo, prompt, min_context_length, max_ttft, trials, previous,
            concurrency, input_tokens, output_tokens, shared_prefix_tokens, dataset, baseline,
            gateway, env,
        });
        // The `base`/`repo` shorthand is resolved before anything else is looked at, and its
        // errors are the only ones reported (the original's `mode="before"` validator).
        let (shorthand_base, shorthand_repo) = (truthy(f.base), truthy(f.repo));
        if shorthand_base && shorthand_repo {
            return Err(cx.error(n, "`base` and `repo` are mutually exclusive"));
        }
        let shorthand = if shorthand_base {
            f.base.map(|b| ("base", b))
        } else if shorthand_repo {
            f.repo.map(|r| ("repo", r))
        } else {
            None
        };
        if shorthand.is_some() && f.model.is_some_and(|m| !m.is_null()) {
            return Err(cx.error(
                n,
                "`model` cannot be combined with the `base`/`repo` shorthand",
            ));
        }
        let ok = decode::collect_fields(cx, n, &known, &["type"], |k, _| known.contains(&k));
        let name = decode::opt(cx, "name", f.name, decode::string);
        let model = match shorthand {
            Some((key, node)) => cx.at("model", |cx| {
                cx.at(key, |cx| model_text(cx, node, key)).map(|text| {
                    if key == "base" {
                        PresetModel::Base { base: text }
                    } else {
                        PresetModel::Repo {
                            repo: text,
                            name: None,
                        }
                    }
                })
            }),
            None => match f.model.filter(|m| !m.is_null()) {
                Some(m) => cx.at("model", |cx| model(cx, m)),
                None => cx.at("model", |cx| {
                    Err(cx.error(n, "Field required: set `model`, `base` or `repo`"))
                }),
            },
        };
        let (base, repo) = if shorthand.is_some() {
            (Ok(None), Ok(None))
        } else {
            (
                decode::opt(cx, "base", f.base, decode::string),
                decode::opt(cx, "repo", f.repo, decode::string),
            )
        };
        let prompt = decode::opt(cx, "prompt", f.prompt, prompt);
        let min_context_length =
            decode::opt(cx, "min_context_length", f.min_context_length, positive);
        let max_ttft = decode::opt(cx, "max_ttft", f.max_ttft, positive);
        let trials = decode::opt(cx, "trials", f.trials, positive);
        let previous = decode::opt(cx, "previous", f.previous, decode::string_list);
        let concurrency = decode::opt(cx, "concurrency", f.concurrency, positive);
        let input_tokens = decode::opt(cx, "input_tokens", f.input_tokens, positive);
        let output_tokens = decode::opt(cx, "output_tokens", f.output_tokens, |cx, n| {
            decode::integer_in(cx, n, Some(2), None)
        });
        let shared = decode::opt(
            cx,
            "shared_prefix_tokens",
            f.shared_prefix_tokens,
            |cx, n| decode::integer_in(cx, n, Some(0), None),
        );
        let dataset = decode::opt(cx, "dataset", f.dataset, |cx, n| {
            let d = decode::string(cx, n)?;
            let d = d.trim();
            if d.is_empty() {
                return Err(cx.error(n, "dataset must be a non-empty string"));
            }
            Ok(d.to_string())
        });
        let baseline = decode::opt(cx, "baseline", f.baseline, decode::boolean);
        let gateway = decode::opt(cx, "gateway", f.gateway, gateway);
        let env = decode::def(cx, "env", f.env, Env::default, values::env);
        let profile = ProfileParams::decode(cx, n);
        ok?;
        let preset = PresetConfiguration {
            kind: "preset",
            name: name?,
            model: model?,
            base: base?,
            repo: repo?,
            prompt: prompt?,
            min_context_length: min_context_length?,
            max_ttft: max_ttft?,
            trials: trials?,
            previous: previous?,
            concurrency: concurrency?,
            input_tokens: input_tokens?,
            output_tokens: output_tokens?,
            shared_prefix_tokens: shared?,
            dataset: dataset?,
            baseline: baseline?,
            gateway: gateway?,
            env: env?,
            profile: profile?,
        };
        // The original's model validators, in order.
        if preset.effective_dataset() != DEFAULT_DATASET {
            let set: Vec<&str> = [
                ("input_tokens", preset.input_tokens),
                ("output_tokens", preset.output_tokens),
                ("shared_prefix_tokens", preset.shared_prefix_tokens),
            ]
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| *k)
            .collect();
            if !set.is_empty() {
                return Err(cx.error(
                    n,
                    format!(
                        "{} can only be set with the `random` dataset; a custom dataset defines its own request shape",
                        set.join(", ")
                    ),
                ));
            }
        }
        if let Some(shared) = preset.shared_prefix_tokens {
            let input_tokens = preset.effective_input_tokens();
            if shared >= input_tokens {
                return Err(cx.at("shared_prefix_tokens", |cx| {
                    cx.error(
                        n,
                        format!(
                            "shared_prefix_tokens must be less than input_tokens ({input_tokens})"
                        ),
                    )
                }));
            }
        }
        Ok(preset)
    }
}
