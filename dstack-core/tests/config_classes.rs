//! Classes of behaviour where dstack-core once disagreed with the original, each pinned by
//! several cases in the shared vector format and run with the conformance runner. Every
//! expectation was read off the original's code at the commit the shared vectors name
//! (`dstackai/dstack` 511c318c8); the function each group follows is in its `source`.

#[path = "../examples/conformance/runner.rs"]
mod runner;

/// Runs vector groups (the `groups:` list of a vector file) and fails with every mismatch.
fn check(groups: &str) {
    let text = format!("\"format\": \"dstack-config-vectors/1\"\n\"groups\":\n{groups}");
    let report = runner::run(&text).expect("the vectors load");
    assert!(
        report.failures.is_empty(),
        "{} failed:\n{}",
        report.failures.len(),
        report.failures.join("\n")
    );
    assert!(report.passed > 0, "no case ran");
}

#[test]
fn unset_and_off_durations() {
    check(
        r#"
- id: idle-duration
  kind: idle_duration
  source: core/models/duration.py::parse_idle_duration
  cases:
  - {id: unspecified, input: null, expect: null}
  - {id: true-means-default, input: true, expect: null}
  - {id: off-string, input: "off", expect: -1}
  - {id: false-means-off, input: false, expect: -1}
  - {id: minus-one-string, input: "-1", expect: -1}
  - {id: other-negative, input: -300, expect: -300}
  - {id: float-minus-one, input: -1.0, expect: -1}
  - {id: shorthand, input: "5m", expect: 300}
  - {id: zero, input: 0, expect: 0}
  - {id: unit-before-amount, input: "h2", error: "Cannot parse the duration h2"}
- id: offable-duration
  kind: offable_duration
  source: core/models/duration.py::parse_off_duration
  cases:
  - {id: unspecified, input: null, expect: null}
  - {id: true-means-default, input: true, expect: null}
  - {id: off-string, input: "off", expect: "off"}
  - {id: false-means-off, input: false, expect: "off"}
  - {id: zero-is-not-off, input: 0, expect: 0}
  - {id: float-truncates, input: 1.9, expect: 1}
  - {id: minus-one-string, input: "-1", error: "Duration cannot be negative"}
  - {id: minus-one, input: -1, error: "Duration cannot be negative"}
- id: durations-in-configurations
  kind: configuration
  source: core/models/profiles.py::ProfileParams, fleets.py, volumes.py
  cases:
  - input: {type: task, commands: [x], idle_duration: null, max_duration: null, stop_duration: null}
    expect_subset: {idle_duration: null, max_duration: null, stop_duration: null}
  - input: {type: task, commands: [x], idle_duration: "off", max_duration: "off"}
    expect_subset: {idle_duration: -1, max_duration: "off"}
  - input: {type: fleet, nodes: 1, idle_duration: -60}
    expect_subset: {idle_duration: -60}
  - input: {type: dev-environment, inactivity_duration: "off"}
    expect_subset: {inactivity_duration: null}
  - input: {type: dev-environment, inactivity_duration: null}
    expect_subset: {inactivity_duration: null}
  - input: {type: volume, backend: aws, region: us-east-1, size: 10, auto_cleanup_duration: "off"}
    expect_subset: {auto_cleanup_duration: -1}
"#,
    );
}

#[test]
fn reversed_ranges() {
    check(
        r#"
- id: range-order
  kind: range_int
  source: core/models/resources.py::Range._post_validate
  cases:
  - {input: "8..2", error: "Invalid range order: 8..2"}
  - {input: {min: 5, max: 1}, error: "Invalid range order: 5..1"}
  - {input: "..", error: "Invalid empty range: .."}
- id: memory-range-order
  kind: range_memory
  source: core/models/resources.py::Range._post_validate and Memory.__repr__ (format 'g' + GB)
  cases:
  - {input: "16GB..8GB", error: "Invalid range order: 16GB..8GB"}
  - {input: "1024MB..512MB", error: "Invalid range order: 1GB..0.5GB"}
  - {input: "100MB..10MB", error: "Invalid range order: 0.0976562GB..0.00976562GB"}
  - {input: "1.5TB..8", error: "Invalid range order: 1536GB..8GB"}
  - {input: "2000000..1", error: "Invalid range order: 2e+06GB..1GB"}
  - {input: {min: 1.2345678, max: 1}, error: "Invalid range order: 1.23457GB..1GB"}
  - {input: "GB40GB..", error: "could not convert string to float: 'gb40'"}
- id: shorthand-conflicts-before-values
  kind: gpu_spec
  source: core/models/resources.py::GPUSpec.parse (tokens sorted out, then the fields validated)
  cases:
  - {input: "8x86:512MB", error: "GPU spec memory conflict: 8x86:512MB"}
  - {input: ".:2000000", error: "GPU spec count conflict: .:2000000"}
  - {input: "A100::2", error: "GPU spec contains empty token: A100::2"}
  - {input: "A100,:2", error: "GPU name can not be empty: A100,:2"}
  - {input: "A100:4..2:80GB..40GB", error: "Invalid range order: 4..2"}
- id: cpu-shorthand-conflicts
  kind: cpu_spec
  source: core/models/resources.py::CPUSpec.parse
  cases:
  - {input: "..:40GBA100..", error: "CPU spec count conflict: ..:40GBA100.."}
  - {input: "8..2:arm", error: "Invalid range order: 8..2"}
  - {input: -1, error: "Invalid CPU architecture: -1"}
  - {input: 0, expect: {arch: null, count: {min: 0, max: 0}}}
- id: resources-range-order
  kind: configuration
  source: core/models/resources.py::CPUSpec.parse, GPUSpec.parse, DiskSpec
  cases:
  - input: {type: task, commands: [x], resources: {cpu: "8..2"}}
    error: "Invalid range order: 8..2"
  - input: {type: task, commands: [x], resources: {cpu: "arm:8..2"}}
    error: "Invalid range order: 8..2"
  - input: {type: task, commands: [x], resources: {memory: "64GB..32GB"}}
    error: "Invalid range order: 64GB..32GB"
  - input: {type: task, commands: [x], resources: {gpu: "A100:80GB..40GB"}}
    error: "Invalid range order: 80GB..40GB"
  - input: {type: task, commands: [x], resources: {gpu: "4..2"}}
    error: "Invalid range order: 4..2"
  - input: {type: task, commands: [x], resources: {disk: "200GB..100GB"}}
    error: "Invalid range order: 200GB..100GB"
  - input: {type: service, port: 80, commands: [x], replicas: "4..2", scaling: {metric: rps, target: 1}}
    error: "Invalid range order: 4..2"
- id: fleet-nodes-order
  kind: fleet_nodes
  source: core/models/fleets.py::parse_nodes and FleetNodesSpec._post_validate_ranges
  cases:
  - {input: "4..2", error: "max must not be less than min"}
  - {input: {min: 3, max: 1}, error: "max must not be less than min"}
  - {input: {min: 1, target: 3, max: 2}, error: "max must not be less than target"}
  - {input: {min: 2, target: 1}, error: "target must not be be less than min"}
  - {input: "..", expect: {min: 0, target: 0, max: null}}
  - {input: "1..2..3", error: "too many values to unpack"}
  - {input: "-1..2", error: "min cannot be negative"}
"#,
    );
}

#[test]
fn replica_group_container_fields() {
    check(
        r#"
- id: within-a-group
  kind: configuration
  source: core/models/configurations.py::ReplicaGroup (convert_python, _docker, _privileged)
  cases:
  - input: {type: service, port: 8000, replicas: [{count: 1, image: x, python: "3.12", commands: [x]}]}
    error: "`image` and `python` are mutually exclusive within a replica group"
  - input: {type: service, port: 8000, replicas: [{count: 1, image: x, docker: true, commands: [x]}]}
    error: "`image` and `docker` are mutually exclusive within a replica group"
  - input: {type: service, port: 8000, replicas: [{count: 1, python: "3.12", docker: true, commands: [x]}]}
    error: "`python` and `docker` are mutually exclusive within a replica group"
  - input: {type: service, port: 8000, replicas: [{count: 1, nvcc: true, docker: true, commands: [x]}]}
    error: "`nvcc` and `docker` are mutually exclusive within a replica group"
  - input: {type: service, port: 8000, replicas: [{count: 1, docker: true, privileged: false, commands: [x]}]}
    error: "`privileged: false` is incompatible with `docker: true` within a replica group (docker-in-docker requires privileged mode)"
  - input: {type: service, port: 8000, replicas: [{count: 1, image: x, python: "3.12", docker: true, commands: [x]}]}
    error: "`image` and `docker` are mutually exclusive within a replica group"
  - input: {type: service, port: 8000, replicas: [{count: 1, python: "3.12", nvcc: true, commands: [x]}]}
    expect_subset: {groups: [{python: "3.12", nvcc: true}]}
  - input: {type: service, port: 8000, replicas: [{count: 1, docker: false, privileged: false, image: x}]}
    expect_subset: {groups: [{docker: false, privileged: false}]}
- id: service-and-group-levels
  kind: configuration
  source: core/models/configurations.py::ServiceConfigurationParams.validate_no_mixed_service_and_group_container_fields, validate_no_conflicting_image_sources_across_levels
  cases:
  - input: {type: service, port: 8000, image: "svc:1.0", replicas: [{count: 1, image: "grp:1.0", commands: [x]}]}
    error: "`image` is set at both the service level and in replica group(s) ['0']. Set `image` in one place only — either at the service level (all groups inherit) or per group, but not both."
  - input: {type: service, port: 8000, image: "svc:1.0", replicas: [{name: a, count: 1, commands: [x]}, {name: b, count: 1, image: "g:2", commands: [x]}]}
    error: "replica group(s) ['b']"
  - input: {type: service, port: 8000, docker: true, replicas: [{count: 1, docker: false, commands: [x]}]}
    error: "`docker` is set at both the service level and in replica group(s) ['0']. Set `docker` in one place only"
  - input: {type: service, port: 8000, privileged: true, replicas: [{count: 1, privileged: false, image: x}]}
    error: "`privileged` is set at both the service level and in replica group(s) ['0']"
  - input: {type: service, port: 8000, nvcc: true, replicas: [{count: 1, nvcc: false, commands: [x]}]}
    error: "`nvcc` is set at both"
  - input: {type: service, port: 8000, spot_policy: spot, replicas: [{count: 1, commands: [x], spot_policy: on-demand}]}
    error: "`spot_policy` is set at both"
  - input: {type: service, port: 8000, image: x, reservation: svc-res, replicas: [{count: 1, reservation: grp-res}]}
    error: "`reservation` is set at both"
  - input: {type: service, port: 8000, image: alpine, replicas: [{count: 1, docker: true, commands: [x]}]}
    error: "Service-level `image` conflicts with group-level `docker` in replica group(s) ['0']. These image-source fields are mutually exclusive."
  - input: {type: service, port: 8000, image: alpine, replicas: [{count: 1, nvcc: false, commands: [x]}]}
    error: "Service-level `image` conflicts with group-level `nvcc` in replica group(s) ['0']."
  - input: {type: service, port: 8000, docker: true, replicas: [{count: 1, python: "3.12", commands: [x]}]}
    error: "Service-level `docker` conflicts with group-level `python`"
  - input: {type: service, port: 8000, python: "3.12", replicas: [{count: 1, docker: false, commands: [x]}]}
    error: "Service-level `python` conflicts with group-level `docker`"
  - input: {type: service, port: 8000, nvcc: true, replicas: [{count: 1, image: alpine, commands: [x]}]}
    error: "Service-level `nvcc` conflicts with group-level `image`"
  - input: {type: service, port: 8000, python: "3.12", replicas: [{count: 1, nvcc: true, commands: [x]}]}
    ok: true
  - input: {type: service, port: 8000, docker: true, replicas: [{count: 1, commands: [x]}, {count: 1, commands: [y]}]}
    ok: true
  - input: {type: service, port: 8000, scaling: {metric: rps, target: 1}, groups: [{name: a, replicas: 1, commands: [x]}, {name: a, replicas: 1, commands: [x]}]}
    error: "Duplicate replica group names found: ['a']. Each replica group must have a unique name."
  - input: {type: service, port: 8000, replicas: [{count: 1, python: "3.12"}]}
    error: "Replica group '0': either `commands` or `image` must be set in the group, or `image` at the service level."
  - input: {type: service, port: 8000, replicas: [{count: 1, env: {A: b}, commands: [x]}]}
    error: "Extra inputs are not permitted"
  - input: {type: service, port: 8000, router: {type: sglang}, commands: [x]}
    error: "Extra inputs are not permitted"
"#,
    );
}

#[test]
fn presets() {
    check(
        r#"
- id: preset-model
  kind: configuration
  source: core/models/presets.py::PresetConfiguration (parse_model, apply_model_shorthand), PresetModelRepo, PresetModelBase
  cases:
  - input: {type: preset, model: {repo: Qwen/Qwen3-8B}}
    expect_subset: {model: {repo: Qwen/Qwen3-8B, name: null}}
  - input: {type: preset, model: {repo: community/Qwen3-GPTQ, name: Qwen/Qwen3}}
    expect_subset: {model: {repo: community/Qwen3-GPTQ, name: Qwen/Qwen3}}
  - input: {type: preset, model: Qwen/Qwen3-8B}
    expect_subset: {model: {repo: Qwen/Qwen3-8B, name: null}}
  - input: {type: preset, model: {base: Qwen/Qwen3-8B}}
    expect_subset: {model: {base: Qwen/Qwen3-8B}}
  - input: {type: preset, repo: Qwen/Qwen3-8B}
    expect_subset: {model: {repo: Qwen/Qwen3-8B, name: null}, repo: null, base: null}
  - input: {type: preset, model: {name: Qwen/Qwen3}}
    error: "Field required"
  - input: {type: preset, model: {base: Qwen/base, name: Qwen/Qwen3}}
    error: "Extra inputs are not permitted"
  - input: {type: preset, model: {base: Qwen/base, repo: Qwen/repo}}
    error: "Extra inputs are not permitted"
  - input: {type: preset, model: "  "}
    error: "Preset model model must be a non-empty string"
  - input: {type: preset, model: {repo: ""}}
    error: "Preset model repo must be a non-empty string"
  - input: {type: preset, base: Qwen/base, model: {repo: Qwen/repo}}
    error: "`model` cannot be combined with the `base`/`repo` shorthand"
  - input: {type: preset}
    error: "Field required"
- id: preset-request-shape
  kind: configuration
  source: core/models/presets.py::PresetConfiguration (PositiveInt fields, validate_dataset, validate_shared_prefix_tokens)
  cases:
  - input: {type: preset, base: Qwen/base}
    expect_subset: {input_tokens: null, output_tokens: null, shared_prefix_tokens: null, dataset: null, baseline: null}
  - input: {type: preset, base: Qwen/base, input_tokens: 0}
    error: "Input should be greater than 0"
  - input: {type: preset, base: Qwen/base, input_tokens: -5}
    error: "Input should be greater than 0"
  - input: {type: preset, base: Qwen/base, output_tokens: 1}
    error: "Input should be greater than or equal to 2"
  - input: {type: preset, base: Qwen/base, dataset: spec_bench, input_tokens: 512}
    error: "input_tokens can only be set with the `random` dataset; a custom dataset defines its own request shape"
  - input: {type: preset, base: Qwen/base, dataset: sharegpt, input_tokens: 512, shared_prefix_tokens: 1}
    error: "input_tokens, shared_prefix_tokens can only be set with the `random` dataset"
  - input: {type: preset, base: Qwen/base, dataset: " random ", input_tokens: 512}
    expect_subset: {dataset: random, input_tokens: 512}
  - input: {type: preset, base: Qwen/base, shared_prefix_tokens: 2048}
    error: "shared_prefix_tokens must be less than input_tokens (1024)"
  - input: {type: preset, base: Qwen/base, input_tokens: 8192, shared_prefix_tokens: 8192}
    error: "shared_prefix_tokens must be less than input_tokens (8192)"
  - input: {type: preset, base: Qwen/base, input_tokens: 8192, shared_prefix_tokens: 7424}
    expect_subset: {input_tokens: 8192, shared_prefix_tokens: 7424}
  - input: {type: preset, base: Qwen/base, max_ttft: 0}
    error: "Input should be greater than 0"
  - input: {type: preset, base: Qwen/base, prompt: " "}
    error: "Prompt must be a non-empty string"
  - input: {type: preset, base: Qwen/base, gateway: team/gw}
    expect_subset: {gateway: team/gw}
"#,
    );
}

#[test]
fn ports_from_the_command_line() {
    check(
        r#"
- id: merge-ports
  kind: cli_apply_args
  source: cli/services/configurators/run.py::_merge_ports, _unique_ports_constraint
  cases:
  - input: {configuration: {type: task, commands: [x], ports: ["9000:8080"]}, args: ["-p", "8080"]}
    expect_subset: {ports: [{local_port: 8080, container_port: 8080}]}
  - input: {configuration: {type: task, commands: [x], ports: [8080]}, args: ["-p", "3000:8081"]}
    expect_subset: {ports: [{local_port: 8080, container_port: 8080}, {local_port: 3000, container_port: 8081}]}
  - input: {configuration: {type: task, commands: [x], ports: [8080, "9000:8080"]}, args: ["-p", "3000"]}
    error: "Port 8080 is already in use"
  - input: {configuration: {type: task, commands: [x], ports: [8080]}, args: ["-p", "8081", "-p", "9000:8081"]}
    error: "Port 8081 is already in use"
  - input: {configuration: {type: task, commands: [x], ports: [8080]}, args: ["-p", "8080:8081"]}
    error: "Port 8080 is already in use"
  - input: {configuration: {type: dev-environment, ports: ["*:8080"]}, args: ["-p", "*:8081"]}
    expect_subset: {ports: [{local_port: null, container_port: 8080}, {local_port: null, container_port: 8081}]}
  - input: {configuration: {type: task, commands: [x], ports: [8080, 8080]}, args: []}
    expect_subset: {ports: [{local_port: 8080, container_port: 8080}, {local_port: 8080, container_port: 8080}]}
  - input: {configuration: {type: task, commands: [whoami]}, args: ["-p", "8000:80", "--port", "8001:80"]}
    error: "Port 80 is already in use"
  - input: {configuration: {type: task, commands: [whoami], ports: ["3000"]}, args: ["-p", "3000:4000"]}
    error: "Port 3000 is already in use"
  - input: {configuration: {type: task, commands: [x]}, args: ["-p", "70000"]}
    error: "argument -p/--port: invalid port_mapping value: '70000'"
  - input: {configuration: {type: service, port: 8000, commands: [x]}, args: ["-p", "8080"]}
    error: "unrecognized arguments: -p 8080"
"#,
    );
}

#[test]
fn interpolation_of_replica_group_commands() {
    check(
        r#"
- id: group-commands
  kind: cli_apply_args
  source: cli/services/configurators/run.py::ServiceConfigurator.apply_args, _interpolate_commands
  cases:
  - input: {configuration: {type: service, port: 8000, image: debian, groups: [{replicas: 1, commands: ["echo ${{ run.args }} ${{ groups[0].replicas[0].IP_ADDRESS }}"]}]}, args: [hello]}
    expect_subset: {groups: [{commands: ["echo hello ${{ groups[0].replicas[0].IP_ADDRESS }}"]}]}
  - input: {configuration: {type: task, commands: ["echo ${{ run.args }}"]}, args: [a, "b c", "-e", "X=1"]}
    expect_subset: {commands: ["echo a 'b c'"], env: {X: "1"}}
  - input: {configuration: {type: dev-environment}, args: [hello]}
    error: "unrecognized arguments: hello"
  - input: {configuration: {type: service, port: 8000, groups: [{replicas: 1, commands: ["echo ${{ run.args }}"]}]}, args: ["--", "a b"]}
    expect_subset: {groups: [{commands: ["echo 'a b'"]}]}
  - input: {configuration: {type: service, port: 8000, replicas: [{count: 1, commands: ["echo ${{ groups[0].replicas[0].IP_ADDRESS }} ${{ secrets.T }}"]}]}, args: []}
    expect_subset: {groups: [{commands: ["echo ${{ groups[0].replicas[0].IP_ADDRESS }} ${{ secrets.T }}"]}]}
  - input: {configuration: {type: service, port: 8000, groups: [{replicas: 1, commands: ["echo $${{ x }} $$HOME"]}]}, args: []}
    expect_subset: {groups: [{commands: ["echo ${{ x }} $HOME"]}]}
  - input: {configuration: {type: service, port: 8000, groups: [{replicas: 1, commands: ["echo $x $${{ run.args }}"]}]}, args: ["--", "q"]}
    expect_subset: {groups: [{commands: ["echo $x $q"]}]}
  - input: {configuration: {type: service, port: 8000, groups: [{replicas: 1, commands: ["echo $x $$"]}]}, args: []}
    expect_subset: {groups: [{commands: ["echo $x $$"]}]}
  - input: {configuration: {type: service, port: 8000, groups: [{replicas: 1, commands: ["echo ${{ groups[0].replica[0].IP_ADDRESS }}"]}]}, args: []}
    error: "Illegal reference name: groups[0].replica[0].IP_ADDRESS"
  - input: {configuration: {type: service, port: 8000, groups: [{replicas: 1, commands: ["echo ${{ groups }}"]}]}, args: []}
    error: "Illegal reference name: groups"
  - input: {configuration: {type: service, port: 8000, groups: [{replicas: 1, commands: ["echo ${{ secrets[0] }}"]}]}, args: []}
    error: "Illegal reference name: secrets[0]"
  - input: {configuration: {type: service, port: 8000, groups: [{replicas: 1, commands: ["echo ${{ run.args"]}]}, args: []}
    error: "No pattern closing: ${{ run.args"
- id: interpolator
  kind: interpolate
  source: utils/interpolator.py::VariablesInterpolator.interpolate
  cases:
  - input: {s: "a $x $$"}
    expect: {output: "a $x $$", missing: []}
  - input: {s: "$x $${{ run.args }}"}
    expect: {output: "$x $qwerty", missing: []}
  - input: {s: "$$ $x $$ ${{ run.args }}"}
    expect: {output: "$ $x $$ qwerty", missing: []}
  - input: {s: "echo $${{ run.args }}"}
    expect: {output: "echo ${{ run.args }}", missing: []}
  - input: {s: "${{ secrets.password  }}"}
    expect: {output: "${{ secrets.password  }}", missing: []}
  - input: {s: "${{ secrets.password.hash }}"}
    error: "Illegal reference name: secrets.password.hash"
  - input: {s: "${{ groups.prefill.nodes[0].IP_ADDRESS }}", skip: [groups]}
    error: "Illegal reference name"
"#,
    );
}

#[test]
fn groups_ip_references() {
    check(
        r#"
- id: contains
  kind: groups_ref_contains
  source: utils/nodes_interpolator.py::contains_groups_ref
  cases:
  - {input: "${{ groups[0].nodes[0].IP }}", expect: true}
  - {input: "${{ groups }}", expect: true}
  - {input: "${{groups.x}}", expect: true}
  - {input: "echo $${{ groups[0].nodes[0].IP_ADDRESS }}", expect: false}
  - {input: "${{ groups_config.x }}", expect: false}
- id: validate
  kind: groups_refs_validate
  source: utils/nodes_interpolator.py::validate_groups_refs
  cases:
  - {input: "${{ groups[0].nodes[0].IP }}", error: "Illegal reference name: groups[0].nodes[0].IP"}
  - {input: "${{ groups }}", error: "Illegal reference name: groups"}
  - {input: "echo $${{ groups[0].bad }}", ok: true}
  - {input: "echo ${{ groups[0].nodes[0].IP_ADDRESS", ok: true}
  - {input: "${{groups[0].nodes[0].IP_ADDRESS}}", ok: true}
- id: find
  kind: groups_ref_find
  source: utils/nodes_interpolator.py::find_groups_ip_refs
  cases:
  - {input: "${{ groups[0].nodes[1].IP_ADDRESS }} ${{groups[2].nodes[0].IP_ADDRESS}}", expect: [[0, nodes, 1], [2, nodes, 0]]}
  - {input: "$${{ groups[0].replicas[0].IP_ADDRESS }}", expect: []}
  - {input: "${{ groups[01].replicas[0].IP_ADDRESS }}", expect: [[1, replicas, 0]]}
- id: member-and-bounds
  kind: groups_ref_member
  source: utils/nodes_interpolator.py::validate_groups_ref_member
  cases:
  - {input: {s: "${{ groups[0].replicas[0].IP_ADDRESS }}", expected_member: nodes}, error: "Illegal reference name: groups[0].replicas[0].IP_ADDRESS"}
  - {input: {s: "${{ groups[0].nodes[0].IP }}", expected_member: replicas}, ok: true}
- id: bounds
  kind: groups_ref_bounds
  source: utils/nodes_interpolator.py::validate_groups_ref_bounds
  cases:
  - {input: {s: "${{ groups[0].nodes[1].IP_ADDRESS }}", group_sizes: [1, 2]}, error: "Invalid reference groups[0].nodes[1].IP_ADDRESS: out of range"}
  - {input: {s: "${{ groups[2].nodes[0].IP_ADDRESS }}", group_sizes: [1, 2]}, error: "Invalid reference groups[2].nodes[0].IP_ADDRESS: out of range"}
  - {input: {s: "${{ groups[0].replicas[1].IP_ADDRESS }}", group_sizes: [1], member: replicas}, error: "out of range"}
  - {input: {s: "${{ groups[0].replicas[0].IP_ADDRESS }}", group_sizes: [0], member: replicas}, error: "Invalid reference groups[0].replicas[0].IP_ADDRESS: this group scales to zero, so no replica is guaranteed at start"}
  - {input: {s: "${{ groups[9].nodes[9].IP_ADDRESS }}", group_sizes: [1], member: replicas}, ok: true}
- id: substitute
  kind: groups_ip_interpolate
  source: utils/nodes_interpolator.py::interpolate_groups_ip_address, interpolate_groups_replica_ip_address
  cases:
  - {input: {s: "${{ groups[0].replicas[0].IP_ADDRESS }}", view: [["10.0.0.1"]], member: nodes}, error: "Illegal reference name"}
  - {input: {s: "${{ groups[0].nodes[0].IP_ADDRESS }}", view: [["10.0.0.1"]], member: replicas}, error: "Illegal reference name"}
  - {input: {s: "${{ groups[0].nodes[0].IP }}", view: [["10.0.0.1"]], member: nodes}, error: "Illegal reference name"}
  - {input: {s: "${{ groups[1].nodes[0].IP_ADDRESS }}", view: [["10.0.0.1"]], member: nodes}, error: "Invalid reference groups[1].nodes[0].IP_ADDRESS: out of range"}
  - {input: {s: "${{ groups[0].nodes[0].IP_ADDRESS }}", view: [[""]], member: nodes}, error: "IP not available for groups[0].nodes[0].IP_ADDRESS"}
  - {input: {s: "echo $$ $${{ groups[0].nodes[0].IP_ADDRESS }} ${{groups[0].nodes[0].IP_ADDRESS}}", view: [["10.0.0.1"]], member: nodes}, expect: "echo $$ $${{ groups[0].nodes[0].IP_ADDRESS }} 10.0.0.1"}
"#,
    );
}

#[test]
fn job_commands_with_entrypoints_and_images() {
    // The runner mocks the image's registry configuration as ENTRYPOINT ["/entrypoint.sh"],
    // CMD ["-f", "-x"] (as the original's tests do).
    check(
        r#"
- id: job-commands
  kind: job_commands
  source: server/services/jobs/configurators/base.py::JobConfigurator._commands, _shell, _dstack_image_commands
  cases:
  - input: {type: task, image: debian}
    expect: ["/entrypoint.sh", "-f", "-x"]
  - input: {type: task, image: debian, entrypoint: "/entrypoint.sh -v", commands: ["-x", "-u"]}
    expect: ["/entrypoint.sh", "-v", "-x", "-u"]
  - input: {type: task, image: debian, shell: bash, entrypoint: "/e.sh", commands: [x]}
    expect: ["/e.sh", "x"]
  - input: {type: task, python: "3.11", entrypoint: "python -m http.server", commands: ["8000"]}
    expect: ["python", "-m", "http.server", "8000"]
  - input: {type: task, image: debian, entrypoint: "''", commands: []}
    expect: [""]
  - input: {type: task, image: debian, entrypoint: ""}
    error: "Could not determine what command to run. Please specify either `commands` or `entrypoint` in your run configuration"
  - input: {type: task, image: debian, entrypoint: "", commands: ["a b"]}
    expect: ["a b"]
  - input: {type: task, image: scratch}
    expect: [":"]
  - input: {type: task, image: debian, commands: ["sleep inf"], shell: "/usr/bin/zsh"}
    expect: ["/usr/bin/zsh", "-i", "-c", "sleep inf"]
  - input: {type: task, image: debian, commands: ["sleep inf"]}
    expect: ["/bin/sh", "-i", "-c", "sleep inf"]
  - input: {type: task, docker: true, commands: ["docker ps"], shell: sh}
    expect: ["/bin/sh", "-i", "-c", "start-dockerd && docker ps"]
  - input: {type: service, port: 80, image: debian, entrypoint: "/e.sh -v", groups: [{replicas: 1, commands: [a]}]}
    expect: ["/e.sh", "-v"]
  - input: {type: service, port: 80, groups: [{replicas: 1, image: alpine, commands: [a]}]}
    expect: ["/bin/sh", "-i", "-c", "a"]
  - input: {type: service, port: 80, groups: [{replicas: 1, docker: true, commands: [a]}]}
    expect: ["/bin/bash", "-i", "-c", "start-dockerd && a"]
  - input: {type: service, port: 80, groups: [{replicas: 1, image: alpine}]}
    expect: ["/entrypoint.sh", "-f", "-x"]
  - input: {type: service, port: 80, groups: [{replicas: 1, image: scratch}]}
    expect: [":"]
"#,
    );
}

#[test]
fn server_validation_reads_the_merged_profile() {
    check(
        r#"
- id: utilization-policy
  kind: server_validate
  source: server/services/runs/spec.py::validate_run_spec_and_set_defaults (merged_profile); core/models/profiles.py::UtilizationPolicy
  cases:
  - input: {configuration: {type: task, commands: [x], utilization_policy: {min_gpu_utilization: 10, time_window: 2h}}}
    error: "Maximum utilization_policy.time_window is 3600s"
  - input: {configuration: {type: task, commands: [x], utilization_policy: {min_gpu_utilization: 10, time_window: 1h}}}
    ok: true
  - input: {configuration: {type: task, commands: [x]}, profile: {name: default, utilization_policy: {min_gpu_utilization: 10, time_window: 3601}}}
    error: "Maximum utilization_policy.time_window is 3600s"
  - input: {configuration: {type: task, commands: [x], utilization_policy: {min_gpu_utilization: 10, time_window: 30m}}, profile: {name: default, utilization_policy: {min_gpu_utilization: 10, time_window: 7200}}}
    ok: true
  - input: {configuration: {type: task, commands: [x], retry: {duration: 60}}, profile: {name: default, retry: {duration: -5}}}
    ok: true
  - input: {configuration: {type: service, port: 80, commands: [x], replicas: "0..2", scaling: {metric: rps, target: 1}}, profile: {name: default, schedule: {cron: "* * * * *"}}}
    error: "Scheduled services with autoscaling to zero are not supported"
- id: utilization-policy-at-parse
  kind: configuration
  source: core/models/profiles.py::UtilizationPolicy.validate_time_window
  cases:
  - input: {type: task, commands: [x], utilization_policy: {min_gpu_utilization: 10, time_window: 2h}}
    ok: true
  - input: {type: task, commands: [x], utilization_policy: {min_gpu_utilization: 10, time_window: 4m}}
    error: "Minimum time_window is 5m"
- id: accelerators-and-groups-refs
  kind: server_validate
  source: server/services/runs/spec.py::_validate_gpu_vendor_and_image, _validate_cpu_arch_and_image, _validate_groups_ip_refs
  cases:
  - input: {configuration: {type: service, port: 80, groups: [{replicas: 1, commands: [x], resources: {gpu: MI300X}}, {replicas: 1, commands: [x], resources: {gpu: Gaudi2}}]}}
    error: "groups[0, 1]: `image` must be set when the requested accelerator is not supported by the default image: ['amd', 'intel']"
  - input: {configuration: {type: service, port: 80, groups: [{replicas: 1, commands: [x], resources: {cpu: "arm:2"}}, {replicas: 1, docker: true, commands: [x], resources: {cpu: "arm:2"}}]}}
    error: "groups[0]: `image` must be set when ARM CPU requested\ngroups[1]: `docker: true` is not supported on ARM CPU"
  - input: {configuration: {type: task, commands: [x], env: {A: "${{ groups[0].node[0].IP_ADDRESS }}"}}}
    error: "groups IP references are only supported in commands, not in `env`"
  - input: {configuration: {type: dev-environment, init: ["echo ${{ groups[0].nodes[0].IP }}"]}}
    error: "Illegal reference name: groups[0].nodes[0].IP"
  - input: {configuration: {type: task, image: debian, commands: ["echo ${{ groups[0].nodes[1].IP_ADDRESS }}"]}}
    error: "Invalid reference groups[0].nodes[1].IP_ADDRESS: out of range"
  - input: {configuration: {type: service, port: 80, image: debian, commands: ["echo ${{ groups[0].replicas[0].IP_ADDRESS }}"]}}
    ok: true
- id: dynamo-retry
  kind: run_spec
  source: core/models/runs.py::RunSpec._validate_dynamo_no_retry
  cases:
  - input: {run_name: test-run, configuration: {type: service, port: 8000, groups: [{name: r, router: {type: dynamo}, commands: [x], replicas: 1}], retry: false}, profile: {name: default}}
    error: "Retry cannot be configured for services with a Dynamo router replica group"
"#,
    );
}

#[test]
fn host_gpu_names() {
    check(
        r#"
- id: nvidia-smi
  kind: gpu_name_normalize
  source: utils/gpu.py::convert_nvidia_gpu_name
  cases:
  - {input: {tool: nvidia-smi, name: "NVIDIA RTX 4000 Ada Generation"}, expect: RTX4000Ada}
  - {input: {tool: nvidia-smi, name: "NVIDIA RTX 6000 Ada Generation"}, expect: RTX6000Ada}
  - {input: {tool: nvidia-smi, name: "NVIDIA GeForce RTX 2070 Super"}, expect: RTX2070SUPER}
  - {input: {tool: nvidia-smi, name: "NVIDIA GeForce RTX 2070 SUPER"}, expect: RTX2070SUPER}
  - {input: {tool: nvidia-smi, name: "NVIDIA GeForce RTX 4070 Ti SUPER"}, expect: RTX4070TiSUPER}
  - {input: {tool: nvidia-smi, name: "NVIDIA H100 NVL"}, expect: H100NVL}
  - {input: {tool: nvidia-smi, name: "NVIDIA A100-SXM4-80GB"}, expect: A100}
  - {input: {tool: nvidia-smi, name: "NVIDIA RTX A6000"}, expect: A6000}
  - {input: {tool: nvidia-smi, name: "Quadro RTX 6000"}, expect: RTX6000}
  - {input: {tool: nvidia-smi, name: "NVIDIA GH200 480GB"}, expect: GH200}
  - {input: {tool: nvidia-smi, name: "NVIDIA B200"}, expect: B200}
  - {input: {tool: nvidia-smi, name: "Tesla V100-SXM2-16GB"}, expect: V100}
- id: amd-smi
  kind: gpu_name_normalize
  source: utils/gpu.py::convert_amd_gpu_name
  cases:
  - {input: {tool: amd-smi, name: "Instinct MI210"}, expect: MI210}
  - {input: {tool: amd-smi, name: "Instinct MI325X"}, expect: MI325X}
  - {input: {tool: amd-smi, name: "AMD Instinct MI300X-O"}, expect: MI300X}
  - {input: {tool: amd-smi, name: "MI3000"}, expect: MI3000}
  - {input: {tool: amd-smi, name: "AMD Radeon PRO W7900"}, expect: "AMD Radeon PRO W7900"}
- id: hl-smi
  kind: gpu_name_normalize
  source: utils/gpu.py::convert_intel_accelerator_name
  cases:
  - {input: {tool: hl-smi, name: HL-205}, expect: Gaudi}
  - {input: {tool: hl-smi, name: HL-225B}, expect: Gaudi2}
  - {input: {tool: hl-smi, name: HL-1000}, expect: HL-1000}
  - {input: {tool: hl-smi, name: HL-2000}, expect: HL-2000}
  - {input: {tool: hl-smi, name: hl-225}, expect: hl-225}
"#,
    );
}

#[test]
fn rules_in_the_order_and_scope_of_the_original() {
    check(
        r#"
- id: field-and-model-rules
  kind: configuration
  source: core/models/configurations.py (before/field/after validators) and parse_apply_configuration (unknown keys checked in a second pass)
  cases:
  - input: {type: service, port: 8000, replicas: 2, groups: [{replicas: "1..3", commands: [c]}]}
    error: "`replicas` and `groups` are mutually exclusive"
  - input: {type: service, port: 8000, groups: null, replicas: [{count: 1, commands: [c]}]}
    expect_subset: {groups: [{name: "0", replicas: {min: 1, max: 1}}]}
  - input: {type: task, nodes: 2, groups: [{name: a, nodes: 0, commands: [c]}]}
    error: "`nodes` and `groups` are mutually exclusive"
  - input: {type: service, port: 8000, replicas: [{count: 1, commands: [c], env: {A: b}}, {count: "1..3", commands: [c]}]}
    error: "When you set `replicas` to a range, ensure to specify `scaling`."
  - input: {type: service, port: 8000, docker: true, nvcc: true, replicas: [{name: b, count: 1, commands: [c]}, {name: b, count: 1, commands: [c]}]}
    error: "Duplicate replica group names found: ['b']. Each replica group must have a unique name."
  - input: {type: service, port: 8000, docker: true, nvcc: true, replicas: [{name: b, count: 1, commands: [c]}, {name: b, count: 1, commands: [c]}]}
    error: "`nvcc` and `docker` are mutually exclusive fields"
  - input: {type: service, port: 8000, image: "", python: "3.12", docker: true, commands: [x]}
    error: "`python` and `docker` are mutually exclusive fields"
  - input: {type: service, port: 8000, image: "", commands: []}
    error: "Either `commands` or `image` must be set"
  - input: {type: service, port: 8000, commands: [x], scaling: {metric: rps, target: 1}}
    ok: true
  - input: {type: task, image: i, entrypoint: e, groups: [{commands: [c]}]}
    error: "Top-level `entrypoint` is not allowed when `groups` is set. Specify `commands` in each node group instead."
  - input: {type: dev-environment, version: "1.0", entrypoint: e}
    error: "entrypoint is not supported for dev-environment"
  - input: {type: dev-environment, ide: windsurf, version: "1.0"}
    error: "Invalid Windsurf version format: `1.0`. Expected format: `version@commit` (e.g., `1.106.0@8951cd3ad688e789573d7f51750d67ae4a0bea7d`)"
  - input: {type: preset, model: {base: b, name: n}, input_tokens: 1, shared_prefix_tokens: 3000}
    error: "shared_prefix_tokens must be less than input_tokens (1)"
  - input: {type: preset, model: {base: b, name: n}}
    error: "Extra inputs are not permitted"
- id: scaling-without-replicas
  kind: server_validate
  source: core/models/configurations.py::ServiceConfiguration.replica_groups, reached from server/services/runs/spec.py::_iter_configuration_commands
  cases:
  - input: {configuration: {type: service, port: 8000, commands: [x], scaling: {metric: rps, target: 1}}}
    error: "To use `scaling`, `replicas` must be set to a range."
"#,
    );
}
