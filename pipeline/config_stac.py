"""STAC endpoint specs: where each collection is searched, how its assets are signed and paid for.

One endpoint serves both collections by default (``stac.url``). A collection may come
from its own endpoint instead (``stac.fine`` / ``stac.coarse``): Landsat C2 L2 from
Earth Search (AWS, requester-pays bucket) and MODIS from Planetary Computer (Azure, SAS
signed links), for example. Credentials never live here: they come from the
environment (``AWS_*``, ``PC_SDK_SUBSCRIPTION_KEY``) and reach GDAL on every worker
(:mod:`pipeline.catalog.gdal_env`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: The endpoint name that means "the embedded demo world on 127.0.0.1".
DEMO_ENDPOINT = "demo"

#: How asset links are made readable: ``planetary-computer`` signs each link with a SAS
#: token when the asset is read (``pip install 'stf-pipeline[planetary]'``).
Signing = Literal["none", "planetary-computer"]

#: The two roles a collection plays in a run.
Role = Literal["fine", "coarse"]
ROLES: tuple[Role, ...] = ("fine", "coarse")


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _check_url(value: str) -> str:
    if value != DEMO_ENDPOINT and not value.startswith(("http://", "https://")):
        raise ValueError(f"must be 'demo' or an http(s) URL, got {value!r}")
    return value


class _Endpoint(_Spec):
    """Where one endpoint is and how its assets are read (shared by both specs below)."""

    url: str = Field(description="the STAC API root ('demo' or http(s))")
    signing: Signing = Field(
        default="none", description="sign asset links when they are read (Planetary Computer)"
    )
    requester_pays: bool = Field(
        default=False,
        description="assets in requester-pays S3 buckets: GDAL sends AWS_REQUEST_PAYER=requester",
    )
    alternate: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="read each asset's alternate.<name> link where it has one (Earth Search "
        "Landsat: s3, the usgs-landsat bucket; its https links need a USGS login)",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)


class EndpointSpec(_Endpoint):
    """The STAC API of one collection (``stac.fine`` or ``stac.coarse``), overriding ``stac.url``.

    Example: ``stac: {fine: {url: https://earth-search.aws.element84.com/v1,
    requester_pays: true}}`` searches Landsat on Earth Search and reads it from the
    requester-pays ``usgs-landsat`` bucket (AWS credentials from the environment).
    """


class StacSpec(_Endpoint):
    """Where to search. ``url: demo`` means the embedded demo world served on 127.0.0.1.

    ``url``, ``signing``, ``requester_pays`` and ``alternate`` apply to both collections
    unless ``fine`` or ``coarse`` names an endpoint of its own. Search results never keep
    signed links:
    Planetary Computer links are signed when an asset is read, so a cached search
    (``items.json``, the flows' 6 h cache) never hands on an expired token.

    Credentials never go in the config: GDAL and the signer read them from the
    environment of ``stf run`` (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
    ``AWS_SESSION_TOKEN`` or ``AWS_PROFILE``, ``PC_SDK_SUBSCRIPTION_KEY``, ...), which is
    forwarded to Dask workers that lack them; ``requester_pays`` adds
    ``AWS_REQUEST_PAYER=requester`` on the client and every worker (the reads are billed
    to your AWS account).
    """

    url: str = DEMO_ENDPOINT
    fine: EndpointSpec | None = Field(
        default=None, description="own endpoint of the fine collection (else url/signing above)"
    )
    coarse: EndpointSpec | None = Field(
        default=None, description="own endpoint of the coarse collection (else url/signing above)"
    )
    page_size: int = Field(default=100, ge=1, le=10_000)
    max_items: int = Field(default=5_000, ge=1)
    retries: int = Field(default=4, ge=0, le=20)
    timeout_s: float = Field(default=30.0, gt=0)

    def endpoint(self, role: Role) -> EndpointSpec:
        """The endpoint that serves the ``role`` collection (its own, else the shared one)."""
        own = self.fine if role == "fine" else self.coarse
        if own is not None:
            return own
        return EndpointSpec(
            url=self.url,
            signing=self.signing,
            requester_pays=self.requester_pays,
            alternate=self.alternate,
        )

    def for_role(self, role: Role) -> StacSpec:
        """This spec with ``role``'s endpoint as its only one (what one search needs)."""
        ep = self.endpoint(role)
        return self.model_copy(
            update={
                "url": ep.url,
                "signing": ep.signing,
                "requester_pays": ep.requester_pays,
                "alternate": ep.alternate,
                "fine": None,
                "coarse": None,
            }
        )

    @property
    def signings(self) -> frozenset[str]:
        """Signing schemes some collection's assets need (``none`` left out)."""
        kinds = {self.endpoint(r).signing for r in ROLES}
        return frozenset(kinds - {"none"})

    @property
    def requester_pays_any(self) -> bool:
        """True when some collection's assets sit in a requester-pays bucket."""
        return any(self.endpoint(r).requester_pays for r in ROLES)
