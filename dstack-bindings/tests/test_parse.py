"""The Python package parses configurations through dstack-core."""

import json

import pytest

import dstack

SERVICE = """\
type: service
name: web
port: 8000
commands:
  - python3 -m http.server 8000
"""


def test_version_is_exposed():
    assert isinstance(dstack.__version__, str) and dstack.__version__


def test_parse_configuration_returns_the_wire_shape():
    config = dstack.parse_configuration(SERVICE, "service.dstack.yml")
    assert config["type"] == "service"
    assert config["port"] == {"local_port": 80, "container_port": 8000}
    assert config["resources"]["gpu"]["count"] == {"min": 0, "max": None}
    assert json.loads(dstack.parse_configuration_json(SERVICE)) == config


def test_invalid_configuration_raises_with_every_issue():
    with pytest.raises(ValueError) as info:
        dstack.parse_configuration("type: task\ncomands: [x]\nresources: {gpu: 'A100:'}\n", "bad.yml")
    message = str(info.value)
    assert "bad.yml:2:1: comands: Extra inputs are not permitted" in message
    assert "bad.yml:3:18: resources.gpu: GPU spec contains empty token" in message
