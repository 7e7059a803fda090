"""Logs: one progress system, one-line records, library warnings routed, global CLI options."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from pipeline import progress
from pipeline.cli import _global_options, main
from pipeline.logs import MAX_LINE, configure_logging


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def test_global_options_are_split_off() -> None:
    assert _global_options(["-q", "--log-file", "x.log", "run", "c.yaml", "-v"]) == (
        -1,
        "x.log",
        False,
        ["run", "c.yaml", "-v"],
    )
    assert _global_options(["--version"])[2] is True
    assert _global_options(["--help"])[3] == ["--help"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("stf ")


def test_progress_off_a_terminal_is_periodic_plain_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "run.log"
    configure_logging(0, log)
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)
    with progress.progress_bar(desc="fuse blocks", total=500, unit="block") as bar:
        for _ in range(500):
            bar.update(1)
    for _ in progress.progress_bar(range(3), desc="train starfm", unit="epoch"):
        pass
    text = log.read_text()
    assert "\r" not in text
    lines = text.splitlines()
    assert any("fuse blocks: 500/500 block" in line and "(done)" in line for line in lines)
    assert any("train starfm: 3/3 epoch" in line for line in lines)
    assert max(len(line) for line in lines) <= MAX_LINE + 60  # + timestamp and logger name


def test_disabled_bar_says_nothing(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    configure_logging(0, log)
    with progress.progress_bar(desc="quiet", total=3, disable=True) as bar:
        bar.update(3)
    assert "quiet" not in log.read_text()


def test_library_warnings_go_to_the_log_not_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "run.log"
    configure_logging(0, log)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(True)
        warnings.warn("a library says something " + "x" * 500, UserWarning, stacklevel=1)
    assert "library says" not in capsys.readouterr().err
    line = next(line for line in log.read_text().splitlines() if "library says" in line)
    assert len(line) <= MAX_LINE + 60 and line.endswith("...")


def test_quiet_hides_stage_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(-1)
    logging.getLogger("pipeline.run").info("[fuse] ...")
    logging.getLogger("pipeline.run").warning("something to see")
    out = capsys.readouterr()
    assert "[fuse]" not in out.out and "something to see" in out.out


def test_stage_lines_on_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(0)
    logging.getLogger("pipeline.run").info("[fuse] ...")
    logging.getLogger("pipeline.fuse").info("to stderr")
    out = capsys.readouterr()
    assert out.out == "[fuse] ...\n" and "to stderr" in out.err


def test_help_names_the_global_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "--log-file" in out.stdout


def test_every_configuration_error_is_listed_at_once() -> None:
    from pipeline.config import parse_config
    from pipeline.errors import ConfigError

    bad = {
        "region": {"name": "r", "bbox": [0, 0, 1, 1]},
        "time": {"start": "2024-06-01", "end": "2024-07-01"},
        "modle": {},
        "chunks": {"y": -5},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(bad, "c.yaml")
    message = str(err.value)
    assert "modle: unknown field" in message and "chunks.y" in message
    assert "\n" not in message


def test_other_libraries_log_only_their_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    """distributed sets its loggers to INFO itself: worker starts must not reach the console."""
    configure_logging(0)
    chatty = logging.getLogger("distributed.scheduler.test")
    chatty.setLevel(logging.INFO)
    chatty.info("Register worker addr: tcp://127.0.0.1:1")
    chatty.warning("worker exceeded 95% memory budget")
    logging.getLogger("pipeline.fuse").info("fuse: 4 tasks")
    err = capsys.readouterr().err
    assert "Register worker" not in err
    assert "95% memory budget" in err and "fuse: 4 tasks" in err
