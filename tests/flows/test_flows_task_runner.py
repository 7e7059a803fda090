"""The flow's tasks stay in the flow process even when a Dask scheduler is configured.

A task sent to a cluster worker would leave its artefacts (items.json, cubes.json,
the saved model) on that worker's disk, out of reach of the next task on another
worker or pod; only the pipeline's own cube/fuse work belongs on the cluster.
"""

from __future__ import annotations

from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from flows import regional_run


def test_tasks_run_in_the_flow_process_with_a_scheduler(monkeypatch) -> None:
    seen: dict[str, Any] = {}

    class Captured:
        def __call__(self, cfg, run_id, resume):
            return {"store": "s", "outputs": {}}

    def with_options(**options):
        seen.update(options)
        return Captured()

    monkeypatch.setattr(regional_run.fuse_window, "with_options", with_options)

    class Compute:
        scheduler = "tcp://10.0.0.1:8786"

    class Cfg:
        compute = Compute()

    regional_run.run_window(Cfg(), run_id="r")
    assert isinstance(seen["task_runner"], ThreadPoolTaskRunner)
