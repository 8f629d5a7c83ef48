"""dump_yaml round-trips specs whose head has only scalars (no `input` list), which once came out as `{name: x}`."""

from __future__ import annotations

from deepyard.networks import dump_yaml, parse_spec, spec_from_data


def test_spec_with_only_a_name_round_trips() -> None:
    spec = spec_from_data({"name": "tiny", "layers": [{"name": "fc", "type": "linear", "out_features": 3}]})
    text = dump_yaml(spec)
    assert text.startswith("name: tiny\nlayers:\n")
    assert parse_spec(text) == spec
