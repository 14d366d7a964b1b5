//! The `.dstack.yml` language: text → [`Node`] tree → validated [`Configuration`].
//!
//! Parsing is pure (no I/O, clock or environment). It runs in two stages: [`yaml`] loads the text
//! into nodes that remember their positions, then the decoders in the submodules turn nodes into
//! typed configurations, collecting every problem as an [`Issue`] with a property path and a
//! line and column. Serialising a [`Configuration`] to JSON gives the original's wire shape
//! (`run_spec.configuration` in the server API).

pub mod apply;
pub mod decode;
pub mod fleet;
pub mod gateway;
pub mod interpolate;
pub mod node;
pub mod preset;
pub mod profile;
pub mod references;
pub mod resources;
pub mod run;
pub mod schema;

pub mod service;
pub mod values;
pub mod yaml;

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

pub use fleet::FleetConfiguration;
pub use gateway::{GatewayConfiguration, VolumeConfiguration};
pub use node::{Mark, Node, Value};
pub use preset::PresetConfiguration;
pub use profile::ProfileParams;
pub use run::{DevEnvironmentConfiguration, RunCommon, TaskConfiguration};
pub use service::ServiceConfiguration;

/// One step of a property path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// A mapping key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// Renders a property path: `resources.gpu`, `groups[1].commands[0]`.
pub fn render_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSeg::Index(i) => {
                out.push_str(&format!("[{i}]"));
            }
        }
    }
    out
}

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Where in the document (empty = the whole document).
    pub path: Vec<PathSeg>,
    /// What is wrong.
    pub message: String,
    /// Where in the text.
    pub mark: Mark,
    /// How to fix it, when we know.
    pub help: Option<String>,
}

impl Issue {
    /// The rendered property path.
    pub fn path_string(&self) -> String {
        render_path(&self.path)
    }
}

impl Issue {
    /// Whether this is an unknown property (pydantic's `Extra inputs are not permitted`): the
    /// original checks those in a second pass, after everything else validated.
    pub fn is_unknown_property(&self) -> bool {
        self.message.starts_with("Extra inputs are not permitted")
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path_string();
        if !path.is_empty() {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A configuration could not be parsed. Holds every issue found and the source, so it can be
/// rendered with the offending lines.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// The file name (or `<input>`).
    pub source_name: String,
    /// The text that was parsed.
    pub source_text: Arc<str>,
    /// The problems, in document order.
    pub issues: Vec<Issue>,
}

impl fmt::Display for ConfigError {
    /// One line per issue: `file:line:column: path: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if issue.mark.is_known() {
                write!(
                    f,
                    "{}:{}:{}: {issue}",
                    self.source_name, issue.mark.line, issue.mark.column
                )?;
            } else {
                write!(f, "{}: {issue}", self.source_name)?;
            }
        }
        Ok(())
    }
}

impl ConfigError {
    /// Each issue as a miette diagnostic with the source attached, for graphical rendering.
    pub fn diagnostics(&self) -> Vec<IssueDiagnostic> {
        self.issues
            .iter()
            .map(|issue| IssueDiagnostic {
                message: issue.to_string(),
                help: issue.help.clone(),
                location: issue.mark.is_known().then(|| {
                    format!(
                        "{}:{}:{}",
                        self.source_name, issue.mark.line, issue.mark.column
                    )
                }),
                span: (issue.mark.is_known()
                    && self
                        .source_text
                        .is_char_boundary(issue.mark.offset as usize))
                .then(|| {
                    let len = label_len(&self.source_text, issue.mark);
                    miette::SourceSpan::new((issue.mark.offset as usize).into(), len)
                }),
                src: miette::NamedSource::new(self.source_name.clone(), self.source_text.clone()),
            })
            .collect()
    }
}

/// The length to underline: the node's text on its first line.
fn label_len(text: &str, mark: Mark) -> usize {
    let Some(rest) = text.get(mark.offset as usize..) else {
        return 0;
    };
    let line_end = rest.find('\n').unwrap_or(rest.len());
    let len = if mark.len == 0 {
        line_end
    } else {
        (mark.len as usize).min(line_end)
    };
    // Never split a character.
    (0..=len)
        .rev()
        .find(|&l| rest.is_char_boundary(l))
        .unwrap_or(0)
}

/// One issue, ready for miette's report handlers.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct IssueDiagnostic {
    message: String,
    help: Option<String>,
    location: Option<String>,
    span: Option<miette::SourceSpan>,
    src: miette::NamedSource<Arc<str>>,
}

impl IssueDiagnostic {
    /// `file:line:column`, when the issue points into the text.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }
}

impl miette::Diagnostic for IssueDiagnostic {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.span.map(|_| &self.src as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let span = self.span?;
        Some(Box::new(std::iter::once(
            miette::LabeledSpan::new_with_span(None, span),
        )))
    }
}

/// Any configuration `dstack apply` accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Configuration {
    /// `type: dev-environment`
    DevEnvironment(Box<DevEnvironmentConfiguration>),
    /// `type: task`
    Task(Box<TaskConfiguration>),
    /// `type: service`
    Service(Box<ServiceConfiguration>),
    /// `type: fleet`
    Fleet(Box<FleetConfiguration>),
    /// `type: gateway`
    Gateway(Box<GatewayConfiguration>),
    /// `type: volume`
    Volume(Box<VolumeConfiguration>),
    /// `type: preset`
    Preset(Box<PresetConfiguration>),
}

impl Serialize for Configuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Configuration::DevEnvironment(c) => c.serialize(s),
            Configuration::Task(c) => c.serialize(s),
            Configuration::Service(c) => c.serialize(s),
            Configuration::Fleet(c) => c.serialize(s),
            Configuration::Gateway(c) => c.serialize(s),
            Configuration::Volume(c) => c.serialize(s),
            Configuration::Preset(c) => c.serialize(s),
        }
    }
}

/// The `type` values, in the original's order.
pub const CONFIGURATION_TYPES: &[&str] = &[
    "dev-environment",
    "task",
    "service",
    "fleet",
    "gateway",
    "preset",
    "volume",
];

impl Configuration {
    /// The `type` value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Configuration::DevEnvironment(_) => "dev-environment",
            Configuration::Task(_) => "task",
            Configuration::Service(_) => "service",
            Configuration::Fleet(_) => "fleet",
            Configuration::Gateway(_) => "gateway",
            Configuration::Volume(_) => "volume",
            Configuration::Preset(_) => "preset",
        }
    }

    /// The configured name, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Configuration::DevEnvironment(c) => c.common.name.as_deref(),
            Configuration::Task(c) => c.common.name.as_deref(),
            Configuration::Service(c) => c.common.name.as_deref(),
            Configuration::Fleet(c) => c.name.as_deref(),
            Configuration::Gateway(c) => c.name.as_deref(),
            Configuration::Volume(c) => c.name.as_deref(),
            Configuration::Preset(c) => c.name.as_deref(),
        }
    }

    /// The shared run properties, for run configurations.
    pub fn run_common(&self) -> Option<&RunCommon> {
        match self {
            Configuration::DevEnvironment(c) => Some(&c.common),
            Configuration::Task(c) => Some(&c.common),
            Configuration::Service(c) => Some(&c.common),
            _ => None,
        }
    }

    /// The configuration as the original's JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Decodes a loaded document.
    pub fn from_node(node: &Node) -> Result<Configuration, Vec<Issue>> {
        let mut cx = decode::Cx::new();
        match decode_configuration(&mut cx, node) {
            Ok(c) if !cx.has_issues() => Ok(c),
            _ => Err(cx.into_issues()),
        }
    }

    /// Decodes a configuration received as JSON (the server API's `run_spec.configuration`).
    pub fn from_json(value: &serde_json::Value) -> Result<Configuration, Vec<Issue>> {
        Configuration::from_node(&Node::from_json(value))
    }
}

fn decode_configuration(cx: &mut decode::Cx, n: &Node) -> decode::D<Configuration> {
    if n.as_map().is_none() {
        return Err(cx.error_help(
            n,
            format!("a configuration must be a mapping, got {}", n.kind_name()),
            "start the file with `type: service` (or task, dev-environment, fleet, gateway, volume)".into(),
        ));
    }
    let Some(kind) = n.get("type") else {
        return Err(cx.error_help(
            n,
            "Unable to extract tag using discriminator 'type'",
            "add `type:` with one of dev-environment, task, service, fleet, gateway, volume, preset".into(),
        ));
    };
    let text = kind.as_str().unwrap_or_default();
    let config = match text {
        "dev-environment" => {
            Configuration::DevEnvironment(Box::new(DevEnvironmentConfiguration::decode(cx, n)?))
        }
        "task" => Configuration::Task(Box::new(TaskConfiguration::decode(cx, n)?)),
        "service" => Configuration::Service(Box::new(ServiceConfiguration::decode(cx, n)?)),
        "fleet" => Configuration::Fleet(Box::new(FleetConfiguration::decode(cx, n)?)),
        "gateway" => Configuration::Gateway(Box::new(GatewayConfiguration::decode(cx, n)?)),
        "volume" => Configuration::Volume(Box::new(VolumeConfiguration::decode(cx, n)?)),
        "preset" => Configuration::Preset(Box::new(PresetConfiguration::decode(cx, n)?)),
        _ => {
            let help = decode::did_you_mean(text, CONFIGURATION_TYPES)
                .map(|m| format!("did you mean `{m}`?"));
            let expected = CONFIGURATION_TYPES
                .iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(cx.at("type", |cx| {
                cx.error_at(
                    kind.mark,
                    format!("Input tag '{kind}' found using 'type' does not match any of the expected tags: {expected}"),
                    help,
                )
            }));
        }
    };
    Ok(config)
}

/// Loads and validates a configuration from YAML text. `source_name` names it in errors.
pub fn parse_str(source_name: &str, text: &str) -> Result<Configuration, ConfigError> {
    let fail = |issues| ConfigError {
        source_name: source_name.to_string(),
        source_text: Arc::from(text),
        issues,
    };
    let node = yaml::load(text).map_err(|e| {
        fail(vec![Issue {
            path: Vec::new(),
            message: format!("invalid YAML: {}", e.message),
            mark: e.mark,
            help: None,
        }])
    })?;
    // Files also get the check of `${{ }}` references by place, which the original does only
    // later (at `dstack apply`, on the server, or in the job); decoding alone
    // (`Configuration::from_node`, `from_json`) accepts what the original's parser accepts.
    let mut cx = decode::Cx::new();
    if let Some(kind) = node.get("type").and_then(Node::as_str) {
        references::check(&mut cx, &node, kind);
    }
    let mut issues = match Configuration::from_node(&node) {
        Ok(c) if !cx.has_issues() => return Ok(c),
        Ok(_) => Vec::new(),
        Err(issues) => issues,
    };
    issues.extend(cx.into_issues());
    issues.sort_by_key(|i| (i.mark.line == 0, i.mark.line, i.mark.column));
    Err(fail(issues))
}
