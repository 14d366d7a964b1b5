"""dstack: the Rust implementation's Python package (`import dstack`)."""

import json as _json

from dstack._dstack import __version__, parse_configuration_json

__all__ = ["__version__", "parse_configuration", "parse_configuration_json"]


def parse_configuration(text: str, source_name: str = "<string>") -> dict:
    """Parses a `.dstack.yml` text into the normalised configuration (a dict)."""
    return _json.loads(parse_configuration_json(text, source_name))
