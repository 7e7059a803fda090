"""Automatic model choice on a run config: ``stf select CONFIG`` and ``model.select`` in a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.run import run
from pipeline.select import RULE
from pipeline.store.write import open_store
from tests.test_run import tiny_config

#: Two cheap candidates at tiny size: 2 candidates x 3 held-out pairs = 6 folds.
MODEL = {"name": "starfm", "size": "tiny", "candidates": ["naive_change", "starfm"]}


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_select_cli_on_a_run_config(tiny_world: Any, stac_url: str, tmp_path: Path, capsys) -> None:
    data = tiny_config(tiny_world, stac_url, tmp_path, model=MODEL)
    cfg = _write(tmp_path / "run.yaml", data)
    assert main(["select", str(cfg), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rule"] == RULE and out["choice"] in MODEL["candidates"]
    assert len(out["table"]) == 6 and {r["candidate"] for r in out["table"]} == set(
        MODEL["candidates"]
    )
    assert all(v["folds"] == 3 for v in out["summary"].values())


def test_select_refuses_fewer_than_three_pairs(
    tiny_world: Any, stac_url: str, tmp_path: Path, capsys
) -> None:
    # Only the 2024-06-16 Landsat pair lies in the range when the search margin is zero.
    when = {"start": "2024-06-09", "end": "2024-06-17", "search_margin_days": 0}
    cfg = _write(tmp_path / "run.yaml", tiny_config(tiny_world, stac_url, tmp_path, time=when))
    assert main(["select", str(cfg), "--candidates", "naive_change"]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs >= 3 clear pairs, found 1" in err and "\n" not in err


def test_config_refuses_unknown_candidates_and_select_with_weights(
    tiny_world: Any, stac_url: str
) -> None:
    from pipeline.errors import ConfigError

    model = {**MODEL, "select": True, "candidates": ["naive_change", "nope"]}
    with pytest.raises(ConfigError, match=r"model.candidates.*unknown model 'nope'"):
        parse_config(tiny_config(tiny_world, stac_url, Path("/tmp"), model=model))
    weighted = {**MODEL, "select": True, "weights": "/tmp/some-model"}
    with pytest.raises(ConfigError, match="cannot use weights"):
        parse_config(tiny_config(tiny_world, stac_url, Path("/tmp"), model=weighted))


@pytest.mark.slow
def test_run_with_select_records_the_choice(tiny_world: Any, stac_url: str, tmp_path: Path) -> None:
    cfg = parse_config(tiny_config(tiny_world, stac_url, tmp_path, model={**MODEL, "select": True}))
    logs: list[str] = []
    summary = run(cfg, progress=False, log=logs.append)
    prov = json.loads(open_store(summary.store).attrs["stf_provenance"])
    selection = prov["model_selection"]
    assert selection["rule"] == RULE and len(selection["table"]) == 6
    assert selection["choice"] == prov["model"]["name"] == summary.model
    assert f"  model chosen: {selection['choice']} ({RULE})" in logs
    (model_dir,) = (tmp_path / "models").iterdir()  # one directory, keyed with the selection
    assert model_dir.name.startswith("select-") and (model_dir / "selection.json").exists()


@pytest.mark.parametrize("learned", ["swinstfm", "ganstfm", "stfdiff"])
def test_learned_candidates_within_the_budget_or_skipped_with_the_reason(learned: str) -> None:
    """A learned candidate trains on each fold with its share of the budget; below the
    minimum share it is skipped with the reason, and the choice falls to the others."""
    from pipeline.select import MIN_FOLD_S, select_model
    from tests.models.test_ganstfm import toy_pairs

    bands = ("red", "nir")
    scenes = toy_pairs(2)
    names = ["naive_change", learned]
    allowed = select_model(scenes, names, bands, "tiny", budget_s=90.0)
    rows = [r for r in allowed.table if r["candidate"] == learned]
    assert len(rows) == 3 and all("skipped" not in r for r in rows)
    assert all(r["budget_s"] == 30.0 and r["steps"] > 0 for r in rows)
    assert allowed.summary[learned]["folds"] == 3

    small = select_model(scenes, names, bands, "tiny", budget_s=3 * MIN_FOLD_S - 1)
    skipped = [r for r in small.table if r["candidate"] == learned]
    assert all("raise model.select_budget_s" in r["skipped"] for r in skipped)
    assert small.summary[learned]["folds"] == 0 and small.choice == "naive_change"


def test_select_budget_is_configuration(tiny_world: Any, stac_url: str) -> None:
    model = {**MODEL, "select": True, "select_budget_s": 120}
    cfg = parse_config(tiny_config(tiny_world, stac_url, Path("/tmp"), model=model))
    assert cfg.model.select_budget_s == 120.0
