"""The configuration reference is current and the ``stf init`` template is a valid config."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.configdoc import config_reference, config_template

REPO = Path(__file__).resolve().parents[1]


def test_docs_config_md_is_current() -> None:
    current = (REPO / "docs" / "CONFIG.md").read_text()
    assert current == config_reference(), (
        "docs/CONFIG.md is stale: python -m pipeline.configdoc > docs/CONFIG.md"
    )


def test_reference_names_every_field() -> None:
    text = config_reference()
    for needle in ("`region.bbox`", "`stac.signing`", "`chunks.time`", "`products.labels`"):
        assert needle in text


def test_template_is_a_valid_config_and_every_default_is_listed() -> None:
    text = config_template()
    cfg = parse_config(yaml.safe_load(text), "template")
    assert cfg.region.name == "my-region"
    lines = text.splitlines()
    chunks = lines.index("# chunks:")
    assert lines[chunks + 1 : chunks + 4] == [
        "#   y: 256  # >= 16, <= 8192",
        "#   x: 256  # >= 16, <= 8192",
        "#   time: 366  # >= 1, <= 4096",
    ]


def test_stf_init_writes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "my.yaml"
    assert main(["init", str(target)]) == 0
    assert parse_config(yaml.safe_load(target.read_text()), "my.yaml").time.start.year == 2024
    assert main(["init", str(target)]) == 2
    assert main(["init", str(target), "--force"]) == 0
