"""Security: safetensors only, safe YAML, writes stay in the output root, no leaked secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.config import load_config, parse_config
from pipeline.errors import ConfigError
from pipeline.run import store_url
from pipeline.security import MASK, redact, redact_text, redact_url
from pipeline.synth import World
from tests.reliability.conftest import run_config

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"

#: Unsafe deserialisation calls: a bare pickle, torch.load without weights_only=True, unsafe YAML.
UNSAFE = (
    re.compile(r"^\s*import (c?pickle|dill|joblib)\b|^\s*from (c?pickle|dill|joblib) import", re.M),
    re.compile(r"\b(pickle|dill|joblib)\.loads?\("),
    re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)"),
    re.compile(r"yaml\.(unsafe_)?load\((?![^)]*Loader\s*=\s*yaml\.SafeLoader)"),
    re.compile(r"yaml\.(Unsafe|Full)?Loader\b(?<!SafeLoader)"),
)


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle",
        "from joblib import load",
        "state = pickle.loads(blob)",
        "torch.load(path)",
        "torch.load(path, weights_only=False)",
        "yaml.load(text)",
        "yaml.load(text, Loader=yaml.FullLoader)",
    ],
)
def test_the_unsafe_patterns_catch_known_bad_code(snippet: str) -> None:
    assert any(pattern.search(snippet) for pattern in UNSAFE)


@pytest.mark.parametrize(
    "snippet", ["torch.load(p, weights_only=True)", "yaml.safe_load(text)", "safe_open(path)"]
)
def test_the_unsafe_patterns_spare_safe_code(snippet: str) -> None:
    assert not any(pattern.search(snippet) for pattern in UNSAFE)


def test_no_unsafe_deserialisation_anywhere_in_the_library() -> None:
    hits = [
        f"{path.relative_to(PIPELINE.parent)}: {m.group(0).strip()}"
        for path in sorted(PIPELINE.rglob("*.py"))
        for pattern in UNSAFE
        for m in pattern.finditer(path.read_text())
    ]
    assert not hits, hits


def test_yaml_with_a_python_object_tag_is_a_one_line_config_error(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"region: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_config(path)
    assert "\n" not in str(info.value) and not marker.exists()


@pytest.mark.parametrize(
    "store_path",
    ["/tmp/escape.zarr", "../escape.zarr", "a/../../escape.zarr", "file:///tmp/e.zarr"],
)
def test_store_path_cannot_leave_the_output_root(tmp_path: Path, store_path: str) -> None:
    data = {
        "region": {"bbox": [10.0, 45.0, 10.1, 45.1]},
        "time": {"start": "2024-06-01", "end": "2024-06-02"},
        "store": {"path": store_path},
        "output_root": str(tmp_path),
    }
    with pytest.raises(ConfigError, match=r"store\.path") as info:
        parse_config(data)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("store_path", ["fusion.zarr", "sub/dir/x.zarr", "s3://bucket/x.zarr"])
def test_store_paths_inside_the_root_or_object_stores_are_accepted(
    tmp_path: Path, store_path: str
) -> None:
    data = {
        "region": {"bbox": [10.0, 45.0, 10.1, 45.1]},
        "time": {"start": "2024-06-01", "end": "2024-06-02"},
        "store": {"path": store_path},
        "output_root": str(tmp_path),
    }
    url = store_url(parse_config(data))
    assert url == store_path or Path(url).resolve().is_relative_to(tmp_path.resolve())


TOKEN = "sk-planted-7f3a9c1e5b"


def test_redaction_masks_urls_and_env_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TOKEN)
    url = f"https://u:{TOKEN}@h.example/stac?collections=x&token={TOKEN}&sig={TOKEN}"
    assert TOKEN not in redact_url(url) and "collections=x" in redact_url(url)
    plain = "https://h.example/stac?q=a%20b&limit=5"
    assert redact_url(plain) == plain  # nothing secret: unchanged, byte for byte
    assert redact_text(f"key is {TOKEN}") == f"key is {MASK}"
    nested = redact({"stac": {"url": url}, "ids": [TOKEN], "n": 3})
    assert TOKEN not in repr(nested) and nested["n"] == 3


@pytest.mark.slow
def test_planted_tokens_reach_no_log_attr_provenance_or_error(
    tiny_world: World,
    stac_url: str,
    cluster: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PC_SDK_SUBSCRIPTION_KEY", TOKEN)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TOKEN[::-1])
    data = run_config(tiny_world, f"{stac_url}/?token={TOKEN}", tmp_path / "out")
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    assert main(["run", str(cfg_path), "--scheduler", cluster]) == 0
    dead = {**data, "stac": {"url": f"http://127.0.0.1:9/stac?token={TOKEN}", "retries": 0}}
    dead_path = tmp_path / "dead.yaml"
    dead_path.write_text(yaml.safe_dump({**dead, "output_root": str(tmp_path / "dead")}))
    assert main(["run", str(dead_path)]) == 3
    out, err = capfd.readouterr()
    assert "token=***" in err.strip().splitlines()[-1]
    stored = [p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()]
    for secret in (TOKEN, TOKEN[::-1]):
        assert secret not in out and secret not in err
        assert not [b for b in stored if secret.encode() in b]
