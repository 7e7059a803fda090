"""GDAL/HTTP settings for reading cloud-optimised GeoTIFFs, kept in one place.

The same settings reach every reader:

* odc-stac captures the client's rasterio configuration when a load is planned
  and restores it inside each read task, so :func:`configure_client` (which
  calls ``odc.stac.configure_rio``) is enough for graphs built here.
* stackstac pickles its ``gdal_env`` into the graph: :func:`stackstac_env`.
* Anything else a Dask worker opens through GDAL (rioxarray, plain rasterio)
  reads process environment variables, which :class:`GdalEnvPlugin` sets on
  every worker, including workers that join later.

A run adds what its endpoints need (:func:`read_settings`): ``AWS_REQUEST_PAYER=requester``
when a collection sits in a requester-pays bucket (Earth Search's Landsat, ``usgs-landsat``),
and the client's cloud credentials (:data:`CREDENTIAL_VARS`, only those set) so that
workers started without them can read too. Workers that have their own credentials (a
Kubernetes service account, an instance role) keep them: credentials are only filled in
where a worker lacks them, never overwritten.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from pipeline.config_stac import StacSpec

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


#: Environment variables that carry cloud credentials and their scope to GDAL (and to
#: planetary-computer's signer). Forwarded from the client to workers that lack them.
CREDENTIAL_VARS: tuple[str, ...] = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_NO_SIGN_REQUEST",
    "AWS_S3_ENDPOINT",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "PC_SDK_SUBSCRIPTION_KEY",
)


def read_settings(
    stac: StacSpec, environ: Mapping[str, str] = os.environ
) -> tuple[dict[str, str], dict[str, str]]:
    """The GDAL settings and the credentials a run's readers need.

    Parameters
    ----------
    stac : the run's endpoints; a requester-pays one adds ``AWS_REQUEST_PAYER=requester``.
    environ : where credentials are taken from (the client's environment).

    Returns
    -------
    settings : GDAL option name -> value, set everywhere (overriding).
    credentials : :data:`CREDENTIAL_VARS` set in ``environ``, filled in where missing.
    """
    settings = dict(GDAL_SETTINGS)
    if stac.requester_pays_any:
        settings["AWS_REQUEST_PAYER"] = "requester"
    credentials = {k: environ[k] for k in CREDENTIAL_VARS if environ.get(k)}
    return settings, credentials


def apply_process_env(
    settings: Mapping[str, str] = GDAL_SETTINGS, credentials: Mapping[str, str] | None = None
) -> None:
    """Export ``settings`` (and missing ``credentials``) as this process's environment.

    GDAL reads its configuration from the environment lazily, at each open.
    """
    os.environ.update(settings)
    for key, value in (credentials or {}).items():
        os.environ.setdefault(key, value)


def configure_client(
    client: Any | None = None,
    settings: Mapping[str, str] = GDAL_SETTINGS,
    credentials: Mapping[str, str] | None = None,
) -> None:
    """Apply the settings here and, given a ``distributed.Client``, on all its workers.

    Parameters
    ----------
    client : distributed.Client, optional
        When given, :class:`GdalEnvPlugin` is registered so current and future
        workers get the same settings.
    settings : GDAL option name -> value.
    credentials : environment variables filled in on workers that lack them
        (:func:`read_settings`); never written into GDAL's option table, so
        odc-stac's configuration dumps never show them.
    """
    import odc.stac

    options: dict[str, Any] = dict(settings)
    odc.stac.configure_rio(cloud_defaults=True, **options)
    apply_process_env(settings, credentials)
    if client is not None:
        client.register_plugin(GdalEnvPlugin(settings, credentials))


def stackstac_env(settings: Mapping[str, str] = GDAL_SETTINGS) -> Any:
    """stackstac's default layered GDAL environment with ``settings`` added to every layer."""
    import stackstac

    return stackstac.DEFAULT_GDAL_ENV.updated(always=dict(settings))


class GdalEnvPlugin(WorkerPlugin):
    """Sets the GDAL settings in each Dask worker process when it starts."""

    name = "stf-gdal-env"

    def __init__(
        self,
        settings: Mapping[str, str] = GDAL_SETTINGS,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        self.settings: dict[str, Any] = dict(settings)
        self.credentials: dict[str, str] = dict(credentials or {})

    def setup(self, worker: Any) -> None:
        """Called by distributed on every worker (present and future)."""
        import odc.stac

        apply_process_env(self.settings, self.credentials)
        odc.stac.configure_rio(cloud_defaults=True, **self.settings)
