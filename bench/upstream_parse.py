#!/usr/bin/env python3
"""Baseline: parse the upstream dstack example configurations with the Python original.

Usage: upstream_parse.py <upstream-examples-dir>

Reads MANIFEST.tsv in that folder, keeps rows with expected_parse == "yes", loads
all texts into memory, checks every one parses, then times (best of 5 rounds after
1 warm-up, each round parsing every doc once):
  (a) YAML load only, with the C loader when PyYAML has it;
  (b) exactly what `dstack apply` does: yaml.safe_load + parse_apply_configuration.
"""
import sys
import time
from pathlib import Path

import yaml
from dstack.version import __version__ as dstack_version
from dstack._internal.core.models.configurations import parse_apply_configuration

ROUNDS = 5


def load_corpus(root: Path) -> list:
    lines = (root / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    i_path, i_exp = header.index("path"), header.index("expected_parse")
    docs = []
    for line in lines[1:]:
        cols = line.split("\t")
        if len(cols) > i_exp and cols[i_exp] == "yes":
            docs.append((cols[i_path], (root / cols[i_path]).read_text(encoding="utf-8")))
    return docs


def best_us_per_doc(fn, texts) -> float:
    for t in texts:  # warm-up round
        fn(t)
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for t in texts:
            fn(t)
        best = min(best, time.perf_counter() - start)
    return best / len(texts) * 1e6


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    docs = load_corpus(Path(sys.argv[1]))
    if not docs:
        print("no expected_parse == yes rows in MANIFEST.tsv", file=sys.stderr)
        return 1
    texts = [t for _, t in docs]

    # (b) is what dstack 0.22.5's CLI does in
    # dstack/_internal/cli/services/configurators/__init__.py (load_apply_configuration):
    #     conf = parse_apply_configuration(yaml.safe_load(f))
    # yaml.safe_load always uses the pure-Python yaml.SafeLoader (dstack never passes
    # CSafeLoader), so we do the same here.
    def original(text):
        return parse_apply_configuration(yaml.safe_load(text))

    # Correctness gate: every "yes" file must parse.
    failures = 0
    for path, text in docs:
        try:
            original(text)
        except Exception as e:  # ConfigurationError, YAMLError, ...
            failures += 1
            print(f"FAIL {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                  file=sys.stderr)
    if failures:
        print(f"{failures} of {len(docs)} 'yes' files failed to parse", file=sys.stderr)
        return 1

    # (a) YAML load only, fastest loader available (the floor for Python).
    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    load_us = best_us_per_doc(lambda t: yaml.load(t, Loader=loader), texts)
    orig_us = best_us_per_doc(original, texts)

    print(f"python: {sys.version.split()[0]}, dstack {dstack_version}")
    print(f"python-yaml-load: {len(texts)} docs, {load_us:.1f} us/doc (loader={loader.__name__})")
    print(f"python-original: {len(texts)} docs, {orig_us:.1f} us/doc")
    return 0


if __name__ == "__main__":
    sys.exit(main())
