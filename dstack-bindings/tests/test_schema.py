"""The checked-in JSON Schema accepts what the parser accepts: our examples, and every upstream
example exactly as the original classifies it (skipped when ../shared is absent)."""

import csv
import json
import pathlib
import warnings

import jsonschema
import pytest
import yaml

import dstack

REPO = pathlib.Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schemas" / "dstack-configuration.schema.json").read_text())
UPSTREAM = REPO.parent / "shared" / "conformance" / "upstream-examples"


def validator():
    return jsonschema.Draft7Validator(SCHEMA)


def test_schema_is_valid_draft7():
    jsonschema.Draft7Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.dstack.yml")), ids=lambda p: p.name)
def test_our_examples_match_the_schema_and_parse(path):
    text = path.read_text()
    assert list(validator().iter_errors(yaml.safe_load(text))) == []
    assert dstack.parse_configuration(text, str(path))["type"]


def test_upstream_examples_are_classified_like_the_original():
    if not (UPSTREAM / "MANIFEST.tsv").is_file():
        warnings.warn(f"SKIPPED: {UPSTREAM} is absent")
        pytest.skip("upstream examples absent")
    v = validator()
    wrong = []
    with open(UPSTREAM / "MANIFEST.tsv") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            doc = yaml.safe_load((UPSTREAM / row["path"]).read_text())
            valid = not list(v.iter_errors(doc))
            if valid != (row["expected_parse"] == "yes"):
                wrong.append(row["path"])
    assert wrong == []
