"""GDAL/HTTP settings: one table, applied on the client and on every Dask worker process."""

from __future__ import annotations

import os

import pytest
from distributed import Client, LocalCluster
from rasterio.env import get_gdal_config

from pipeline.catalog.gdal_env import GDAL_SETTINGS, configure_client, stackstac_env

WATCHED = (
    "GDAL_DISABLE_READDIR_ON_OPEN",
    "GDAL_HTTP_MAX_RETRY",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS",
)


def _gdal_sees() -> dict[str, str | None]:
    """What GDAL itself reports in this process (it falls back to environment variables)."""
    return {key: get_gdal_config(key, normalize=False) for key in WATCHED}


def test_settings_reach_worker_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in GDAL_SETTINGS:  # set-then-delete so monkeypatch restores the original state
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        before = client.run(_gdal_sees)
        assert all(v["GDAL_HTTP_MAX_RETRY"] is None for v in before.values())
        configure_client(client)
        after = client.run(_gdal_sees)
    expected = {key: GDAL_SETTINGS[key] for key in WATCHED}
    assert list(after.values()) == [expected]
    assert _gdal_sees() == expected  # and on the client
    assert os.environ["GDAL_HTTP_TIMEOUT"] == GDAL_SETTINGS["GDAL_HTTP_TIMEOUT"]


def test_stackstac_env_carries_the_settings() -> None:
    env = stackstac_env()
    assert env._always["GDAL_HTTP_MAX_RETRY"] == GDAL_SETTINGS["GDAL_HTTP_MAX_RETRY"]
    assert env._open["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
