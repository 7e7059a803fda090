"""``stf catalog build-demo`` through the real command line entry point."""

from __future__ import annotations

import datetime as dt

from pipeline.cli import main
from pipeline.synth import World, open_world


def test_build_demo_reuses_the_tiny_world(tiny_world: World, capsys) -> None:
    assert main(["catalog", "build-demo", "--root", str(tiny_world.root), "--tiny"]) == 0
    assert str(tiny_world.root) in capsys.readouterr().out


def test_build_demo_takes_size_season_seed_and_cloudiness(tmp_path, capsys) -> None:
    root = tmp_path / "w"
    argv = ["catalog", "build-demo", "--root", str(root), "--size", "48x32"]
    argv += ["--start", "2024-06-01", "--end", "2024-06-02", "--seed", "7", "--cloudiness", "0.2"]
    assert main(argv) == 0
    spec = open_world(root).spec
    assert (spec.width, spec.height, spec.seed, spec.cloudiness) == (48, 32, 7, 0.2)
    assert (spec.start, spec.end) == (dt.date(2024, 6, 1), dt.date(2024, 6, 2))
    assert "48x32 px" in capsys.readouterr().out


def test_build_demo_refuses_a_size_off_the_coarse_grid_in_one_line(tmp_path, capsys) -> None:
    assert main(["catalog", "build-demo", "--root", str(tmp_path / "w"), "--size", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert "multiple of 16" in err and "--size" in err and len(err.splitlines()) == 1
    assert main(["catalog", "build-demo", "--root", str(tmp_path / "w"), "--size", "big"]) == 2
    assert "--size" in capsys.readouterr().err
