"""The event-loop benchmark: idle share, per-task cost and per-callback attribution."""

from __future__ import annotations

import pytest

from benchmarks.scheduler_loop import SETTINGS, main, measure


@pytest.mark.slow
def test_pipeline_setting_reports_the_loop_and_its_callbacks() -> None:
    row = measure("pipeline", idle_s=1.0, n_tasks=20)
    assert row["setting"] == "pipeline"
    assert row["values"]["distributed.worker.memory.monitor-interval"] == "500ms"
    assert 0 <= row["idle_share"] < 1 and row["tasks"] == 20
    parts = row["idle_parts_ms_per_s"]
    # both nannies' memory monitors and the scheduler's heartbeat handler are timed
    assert {"nanny0:memory_monitor", "nanny1:memory_monitor"} <= set(parts)
    assert any(k.startswith("scheduler:") for k in parts)


def test_every_named_setting_is_a_dask_config_mapping() -> None:
    import dask
    import distributed  # noqa: F401  (loads its configuration defaults)

    for name, values in SETTINGS.items():
        for key in values:
            assert dask.config.get(key, default=None) is not None, (name, key)


def test_unknown_setting_is_refused() -> None:
    for argv in (["--one", "no-such-setting"], ["main", "no-such-setting"]):
        with pytest.raises(SystemExit, match="unknown setting 'no-such-setting'; choose from"):
            main(argv)
