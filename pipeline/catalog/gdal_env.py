"""GDAL/HTTP settings for reading cloud-optimised GeoTIFFs, kept in one place.

The same settings reach every reader:

* odc-stac captures the client's rasterio configuration when a load is planned
  and restores it inside each read task, so :func:`configure_client` (which
  calls ``odc.stac.configure_rio``) is enough for graphs built here.
* stackstac pickles its ``gdal_env`` into the graph: :func:`stackstac_env`.
* Anything else a Dask worker opens through GDAL (rioxarray, plain rasterio)
  reads process environment variables, which :class:`GdalEnvPlugin` sets on
  every worker, including workers that join later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

#: GDAL configuration options for HTTP(S) reads of COGs (values are strings, as GDAL wants).
GDAL_SETTINGS: Mapping[str, str] = {
    # COGs carry no side-car files: listing the directory costs a request per open.
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # Only probe URLs that can be rasters; .aux.xml/.ovr probes are wasted round trips.
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
    # Blob stores answer 429/5xx under load; GDAL retries those with this delay (s).
    "GDAL_HTTP_MAX_RETRY": "5",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "GDAL_HTTP_TIMEOUT": "60",
    # Merge adjacent range requests and reuse connections (HTTP/2 multiplexing).
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_VERSION": "2TLS",
    "VSI_CACHE": "TRUE",
}


def apply_process_env(settings: Mapping[str, str] = GDAL_SETTINGS) -> None:
    """Export ``settings`` as environment variables of this process (GDAL reads them lazily)."""
    os.environ.update(settings)


def configure_client(
    client: Any | None = None, settings: Mapping[str, str] = GDAL_SETTINGS
) -> None:
    """Apply the settings here and, given a ``distributed.Client``, on all its workers.

    Parameters
    ----------
    client : distributed.Client, optional
        When given, :class:`GdalEnvPlugin` is registered so current and future
        workers get the same settings.
    settings : GDAL option name -> value.
    """
    import odc.stac

    options: dict[str, Any] = dict(settings)
    odc.stac.configure_rio(cloud_defaults=True, **options)
    apply_process_env(settings)
    if client is not None:
        client.register_plugin(GdalEnvPlugin(settings))


def stackstac_env(settings: Mapping[str, str] = GDAL_SETTINGS) -> Any:
    """stackstac's default layered GDAL environment with ``settings`` added to every layer."""
    import stackstac

    return stackstac.DEFAULT_GDAL_ENV.updated(always=dict(settings))


class GdalEnvPlugin(WorkerPlugin):
    """Sets the GDAL settings in each Dask worker process when it starts."""

    name = "stf-gdal-env"

    def __init__(self, settings: Mapping[str, str] = GDAL_SETTINGS) -> None:
        self.settings: dict[str, Any] = dict(settings)

    def setup(self, worker: Any) -> None:
        """Called by distributed on every worker (present and future)."""
        import odc.stac

        apply_process_env(self.settings)
        odc.stac.configure_rio(cloud_defaults=True, **self.settings)
