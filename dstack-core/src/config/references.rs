//! Where `${{ }}` references may appear, checked at parse time.
//!
//! The original interpolates references in a few places only, each with its own variables:
//! `commands` (`run.args`, `secrets.*`, groups IP references), `registry_auth` and probe
//! url/body/header values (`env.*`, `secrets.*`), `env` values (`secrets.*`), volume names
//! (`dstack.job_num`, `dstack.node_rank`) and a gateway's `domain` (`run.project_name`).
//! Anywhere else a reference would reach the job as literal text, so it is an error here.
//! Checking at parse time turns mistakes the original reports at `apply` or job start (or never)
//! into errors with a position.

use super::decode::Cx;
use super::interpolate;
use super::node::{Node, Value};

/// The variables a place accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// `commands`: `run.args`, `secrets.*`, groups IP references.
    Commands,
    /// `registry_auth`, probes: `env.*`, `secrets.*`.
    EnvAndSecrets,
    /// `env` values: `secrets.*` (groups references are left to the server rules).
    EnvValue,
    /// Volume names: `dstack.job_num`, `dstack.node_rank`.
    VolumeName,
    /// Gateway `domain`: `run.project_name`.
    Domain,
    /// Not interpolated.
    None,
}

impl Scope {
    fn allows(self, name: &str) -> bool {
        let ns = name.split_once('.').map_or(name, |(ns, _)| ns);
        match self {
            Scope::Commands => name == "run.args" || ns == "secrets",
            Scope::EnvAndSecrets => ns == "env" || ns == "secrets",
            Scope::EnvValue => ns == "secrets",
            Scope::VolumeName => name == "dstack.job_num" || name == "dstack.node_rank",
            Scope::Domain => name == "run.project_name",
            Scope::None => false,
        }
    }

    fn allows_groups_refs(self) -> bool {
        matches!(self, Scope::Commands | Scope::EnvValue)
    }

    fn available(self) -> &'static str {
        match self {
            Scope::Commands => "`${{ run.args }}` and `${{ secrets.NAME }}`",
            Scope::EnvAndSecrets => "`${{ env.NAME }}` and `${{ secrets.NAME }}`",
            Scope::EnvValue => "`${{ secrets.NAME }}`",
            Scope::VolumeName => "`${{ dstack.job_num }}` and `${{ dstack.node_rank }}`",
            Scope::Domain => "`${{ run.project_name }}`",
            Scope::None => "no references",
        }
    }
}

/// The scope of a string at `path` (keys only; list indexes are left out) in a configuration
/// of type `kind`.
fn scope_of(kind: &str, path: &[&str]) -> Scope {
    match (kind, path) {
        ("task" | "service", ["commands"] | ["groups" | "replicas", "commands"]) => Scope::Commands,
        ("task" | "service" | "dev-environment", ["registry_auth", "username" | "password"]) => {
            Scope::EnvAndSecrets
        }
        ("service", ["probes", "url" | "body"] | ["probes", "headers", "value"]) => {
            Scope::EnvAndSecrets
        }
        (_, ["env"] | ["env", _]) => Scope::EnvValue,
        ("task" | "service" | "dev-environment", ["volumes"] | ["volumes", "name"]) => {
            Scope::VolumeName
        }
        ("gateway", ["domain"]) => Scope::Domain,
        _ => Scope::None,
    }
}

/// Reports references used where the original does not interpolate them, and malformed ones.
pub fn check(cx: &mut Cx, root: &Node, kind: &str) {
    if kind == "preset" {
        return;
    }
    let mut path: Vec<&str> = Vec::new();
    walk(cx, root, kind, &mut path);
}

fn walk<'n>(cx: &mut Cx, n: &'n Node, kind: &str, path: &mut Vec<&'n str>) {
    match &n.value {
        Value::Str(s) => check_string(cx, n, s, scope_of(kind, path), path),
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                cx.at_index(i, |cx| walk(cx, item, kind, path));
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                if let Some(key) = k.as_str() {
                    path.push(key);
                    cx.at(key, |cx| walk(cx, v, kind, path));
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

fn check_string(cx: &mut Cx, n: &Node, s: &str, scope: Scope, path: &[&str]) {
    if !s.contains("${{") {
        return;
    }
    let place = path.join(".");
    // A `volumes` string item is `name:path`; only the name part is interpolated.
    let text = if scope == Scope::VolumeName && path == ["volumes"] {
        s.split(':').next().unwrap_or(s)
    } else {
        s
    };
    // Groups references in `env` values, well-formed or not, are the server's to reject
    // (`groups IP references are only supported in commands, not in \`env\``).
    if scope == Scope::EnvValue && interpolate::contains_groups_ref(text) {
        return;
    }
    let skip: &[&str] = if scope.allows_groups_refs() {
        &["groups"]
    } else {
        &[]
    };
    let lookup = |_: &str, _: &str| None;
    let refs = match interpolate::interpolate(text, &lookup, skip) {
        Ok(r) => r.missing,
        Err(e) => {
            cx.error_at(n.mark, e.0, None);
            return;
        }
    };
    let bad: Vec<&String> = refs.iter().filter(|name| !scope.allows(name)).collect();
    if bad.is_empty() {
        return;
    }
    let names: Vec<String> = bad.iter().map(|b| format!("'{b}'")).collect();
    let message = if scope == Scope::None {
        format!("`${{{{ {} }}}}` is not interpolated in `{place}`", bad[0])
    } else {
        format!(
            "Failed to interpolate due to missing vars: [{}]",
            names.join(", ")
        )
    };
    let mut help = format!("`{place}` accepts {}", scope.available());
    if scope == Scope::Commands
        && let Some(var) = bad.iter().find_map(|b| b.strip_prefix("env."))
    {
        help = format!("use `${var}`: variables from `env` are in the job's environment; {help}");
    }
    if scope == Scope::None {
        help = "references are interpolated only in `commands`, `env` values, `registry_auth`, probes, volume names and a gateway's `domain`; write `$${{` for a literal `${{`".into();
    }
    cx.error_at(n.mark, message, Some(help));
}

#[cfg(test)]
mod tests {
    use crate::config::parse_str;

    fn messages(text: &str) -> Vec<String> {
        match parse_str("t.yml", text) {
            Ok(_) => Vec::new(),
            Err(e) => e.issues.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn references_are_checked_by_place() {
        let ok = "type: task\ncommands: ['echo ${{ run.args }} ${{ secrets.T }} $${{ env.X }}']\n\
                  registry_auth: {username: '${{ env.U }}', password: '${{ secrets.P }}'}\n\
                  env: ['A=${{ secrets.A }}']\nvolumes: ['v-${{ dstack.job_num }}:/data']\n";
        assert_eq!(messages(ok), Vec::<String>::new());
        let bad =
            messages("type: task\nimage: 'x:${{ env.T }}'\ncommands: ['echo ${{ env.HOME }}']\n");
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].starts_with("image: `${{ env.T }}` is not interpolated"),
            "{bad:?}"
        );
        assert!(bad[1].contains("missing vars: ['env.HOME']"), "{bad:?}");
        let illegal = messages("type: task\ncommands: ['echo ${{ secrets.my-tok }}']\n");
        assert_eq!(
            illegal,
            vec!["commands[0]: Illegal reference name: secrets.my-tok".to_string()]
        );
        let domain = messages(
            "type: gateway\nbackend: aws\nregion: r\ndomain: '${{ run.name }}.example.com'\n",
        );
        assert_eq!(domain.len(), 1, "{domain:?}");
    }
}
