"""A network reference is parsed once into a NetworkRef, and prints back as it was given."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepyard.errors import InvalidValueError
from deepyard.networks import NetworkRef, is_torchvision, parse_ref
from deepyard.networks.registry import has_spec, is_library


@pytest.mark.parametrize(
    ("text", "kind", "name", "path"),
    [
        ("lenet", "standard", "lenet", None),
        ("resnet18", "standard", "resnet18", None),
        ("torchvision:resnet34", "torchvision", "resnet34", None),
        ("timm:vit_tiny_patch16_224.augreg", "timm", "vit_tiny_patch16_224.augreg", None),
        ("nets/small.yaml", "spec_file", "nets/small.yaml", Path("nets/small.yaml")),
        ("./net.YML", "spec_file", "./net.YML", Path("net.YML")),
        ("net.json", "spec_file", "net.json", Path("net.json")),
        ("my_net.py", "python", "my_net.py", Path("my_net.py")),
    ],
)
def test_each_form_parses_to_its_kind_and_round_trips(text: str, kind: str, name: str, path: Path | None) -> None:
    ref = parse_ref(text)
    assert ref == NetworkRef(kind, name, path)  # type: ignore[arg-type]
    assert str(ref) == text
    assert parse_ref(ref) is ref


@pytest.mark.parametrize("text", ["", "  ", "timm:", "torchvision: ", 7, None])
def test_no_reference_names_the_valid_forms(text: object) -> None:
    with pytest.raises(InvalidValueError, match=r"valid: a standard network name, torchvision:NAME, timm:NAME, a spec"):
        parse_ref(text)  # type: ignore[arg-type]


def test_an_incomplete_ref_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="is not one of standard, torchvision, timm, spec_file, python"):
        NetworkRef("onnx", "x")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="incomplete"):
        NetworkRef("spec_file", "x.yaml")


@pytest.mark.parametrize(
    ("text", "torchvision", "library", "spec"),
    [
        ("lenet", False, False, True),
        ("resnet18", True, True, False),
        ("torchvision:resnet34", True, True, False),
        ("timm:resnet18", False, True, False),
        ("net.yaml", False, False, True),
        ("net.py", False, False, False),
    ],
)
def test_registry_questions_read_the_parsed_kind(text: str, torchvision: bool, library: bool, spec: bool) -> None:
    assert (is_torchvision(text), is_library(text), has_spec(text)) == (torchvision, library, spec)
