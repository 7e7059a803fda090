"""Registry: every model of this package by name, protocol conformance, load errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.models import FusionModel, available_models, create_model, load_model

MINE = ["naive_fine", "naive_coarse", "naive_change", "starfm", "resstf", "edcstfn"]


@pytest.mark.parametrize("name", MINE)
def test_created_by_name_and_conforms(name: str) -> None:
    assert name in available_models()
    model = create_model(name, bands=("red", "nir"), size="tiny")
    assert isinstance(model, FusionModel)
    assert model.config()["name"] == name
    json.dumps(model.config())  # JSON-serialisable, no pickle needed
    assert model.halo >= 0 and set(model.n_refs) <= {1, 2}


def test_unknown_model_lists_names() -> None:
    with pytest.raises(InputError, match=r"available: .*starfm"):
        create_model("nope", bands=("red",))


def test_unknown_size_is_input_error() -> None:
    with pytest.raises(InputError, match="unknown size"):
        create_model("edcstfn", bands=("red",), size="huge")


def test_load_model_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read model config"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text('{"bands": ["red"]}')
    with pytest.raises(InputError, match="no 'name'"):
        load_model(tmp_path)
