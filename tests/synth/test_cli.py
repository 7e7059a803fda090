"""``stf catalog build-demo`` through the real command line entry point."""

from __future__ import annotations

from pipeline.cli import main
from pipeline.synth import World


def test_build_demo_reuses_the_tiny_world(tiny_world: World, capsys) -> None:
    assert main(["catalog", "build-demo", "--root", str(tiny_world.root), "--tiny"]) == 0
    assert str(tiny_world.root) in capsys.readouterr().out
