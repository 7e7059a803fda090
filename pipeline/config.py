"""Run configuration: frozen, validated specs read once from YAML at the edge.

A run configuration says *where* (region, grid), *when* (time range), *what*
(collections, bands, model) and *how* (STAC endpoint, chunking, compute,
store). Everything below the command line receives these immutable specs;
nothing reads configuration from globals.

Invalid configuration raises :class:`pipeline.errors.ConfigError` with one line
naming the field and the reason, e.g.::

    config error in region.yaml: time.end: end (2024-01-01) is before start (2024-06-01)
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

# Re-exported: the STAC specs live in their own module, the run config is read from here.
from pipeline.config_stac import DEMO_ENDPOINT as DEMO_ENDPOINT
from pipeline.config_stac import EndpointSpec as EndpointSpec
from pipeline.config_stac import StacSpec
from pipeline.errors import ConfigError
from pipeline.model_table import available_models
from pipeline.sensors import COARSE_SENSORS, FINE_SENSORS

#: Canonical band names used everywhere inside the pipeline, in this order.
#: Sensor-specific asset keys (Landsat ``nir08``, MODIS ``Nadir_Reflectance_Band2``)
#: are mapped to these in :mod:`pipeline.sensors`.
BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir1", "swir2")

#: Landsat's native pixel size (m); the fine grid must be a multiple of it.
LANDSAT_RESOLUTION_M = 30.0


class Spec(BaseModel):
    """Base of every spec: immutable, unknown keys refused, hashable."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _check_bbox(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    west, south, east, north = bbox
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise ValueError(f"longitudes must lie in [-180, 180], got {west}, {east}")
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise ValueError(f"latitudes must lie in [-90, 90], got {south}, {north}")
    if west >= east or south >= north:
        raise ValueError(
            "bbox must be [west, south, east, north] with west < east and south < north"
        )
    return bbox


BBox = Annotated[tuple[float, float, float, float], AfterValidator(_check_bbox)]


class RegionSpec(Spec):
    """The area to fuse, in geographic coordinates (EPSG:4326).

    Give either ``bbox`` ([west, south, east, north], degrees) or ``geojson``
    (a GeoJSON geometry, or a path to a GeoJSON file relative to the config).
    """

    name: str = Field(default="region", pattern=r"^[A-Za-z0-9_.-]+$")
    bbox: BBox | None = None
    geojson: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> RegionSpec:
        if (self.bbox is None) == (self.geojson is None):
            raise ValueError("give exactly one of region.bbox or region.geojson")
        if self.geojson is not None and "coordinates" not in self.geojson:
            raise ValueError("region.geojson must be a GeoJSON geometry with 'coordinates'")
        return self

    def bounds(self) -> tuple[float, float, float, float]:
        """[west, south, east, north] in degrees (of the GeoJSON geometry if given)."""
        if self.bbox is not None:
            return self.bbox
        import shapely.geometry

        assert self.geojson is not None
        return tuple(shapely.geometry.shape(self.geojson).bounds)  # type: ignore[return-value]

    def geometry(self) -> dict[str, Any]:
        """The region as a GeoJSON geometry (EPSG:4326)."""
        if self.geojson is not None:
            return self.geojson
        w, s, e, n = self.bounds()
        return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


class GridSpec(Spec):
    """The target grid: fine pixels of ``resolution`` m; coarse pixels ``coarse_factor`` × larger.

    ``crs`` is any CRS string pyproj understands, or ``"utm"`` to pick the UTM
    zone of the region's centre.
    """

    crs: str = "utm"
    resolution: float = Field(default=30.0, gt=0)
    coarse_factor: int = Field(default=16, ge=2, le=64)
    coregister: Literal["auto", "require", "off"] = Field(
        default="auto",
        description="shift the coarse cube onto the fine grid (pipeline.coregister)",
    )

    @field_validator("resolution")
    @classmethod
    def _multiple_of_landsat(cls, value: float) -> float:
        ratio = value / LANDSAT_RESOLUTION_M
        if abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f"{value} m is not a multiple of Landsat's 30 m grid (use 30, 60, 90, ...)"
            )
        return value

    @property
    def coarse_resolution(self) -> float:
        """Coarse pixel size in metres (e.g. 480 m for 30 m × 16)."""
        return self.resolution * self.coarse_factor


class TimeSpec(Spec):
    """The inclusive date range of target days; reference scenes may be searched wider."""

    start: dt.date
    end: dt.date
    search_margin_days: int = Field(
        default=32, ge=0, le=366, description="search fine scenes this many days beyond the range"
    )

    @model_validator(mode="after")
    def _ordered(self) -> TimeSpec:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self

    def days(self) -> list[dt.date]:
        """Every target day in the range, inclusive."""
        n = (self.end - self.start).days + 1
        return [self.start + dt.timedelta(days=i) for i in range(n)]


class CollectionsSpec(Spec):
    """STAC collection ids of the fine (Landsat) and coarse (MODIS) sensors."""

    fine: str = "landsat-c2-l2"
    coarse: str = "modis-43A4-061"

    @model_validator(mode="after")
    def _known(self) -> CollectionsSpec:
        if self.fine not in FINE_SENSORS:
            raise ValueError(
                f"unknown fine collection {self.fine!r}; known: {sorted(FINE_SENSORS)}"
            )
        if self.coarse not in COARSE_SENSORS:
            raise ValueError(
                f"unknown coarse collection {self.coarse!r}; known: {sorted(COARSE_SENSORS)}"
            )
        return self


class ChunkSpec(Spec):
    """Dask/Zarr chunk sizes in fine pixels (y, x) and days (time)."""

    y: int = Field(default=256, ge=16, le=8192)
    x: int = Field(default=256, ge=16, le=8192)
    time: int = Field(default=366, ge=1, le=4096)


#: Models compared by ``model.select`` and ``stf select`` unless told otherwise: the
#: classic methods and the "fine + coarse change" reference, cheap enough on a CPU.
SELECT_CANDIDATES: tuple[str, ...] = ("naive_change", "starfm", "estarfm", "fitfc")


class ModelSpec(Spec):
    """Which fusion model, at which size, trained how (or loaded from ``weights``)."""

    name: str = "starfm"
    size: Literal["tiny", "small", "full"] = "full"
    weights: Path | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    epochs: int = Field(default=30, ge=1)
    patch_size: int = Field(default=64, ge=8)
    batch_size: int = Field(default=16, ge=1)
    seed: int = 0
    select: bool = Field(
        default=False, description="choose the model per region by leave-one-pair-out"
    )
    candidates: tuple[str, ...] = Field(
        default=SELECT_CANDIDATES,
        min_length=1,
        description="registry names compared when select is true (the chosen one replaces name)",
    )
    select_folds: int = Field(
        default=8,
        ge=3,
        description="held-out pairs scored per candidate when selecting, spread over the dates",
    )
    select_budget_s: float = Field(
        default=600.0,
        ge=0,
        description="training seconds each learned candidate may spend over all its folds "
        "when selecting; one whose share per fold is below 15 s is skipped",
    )

    @field_validator("name")
    @classmethod
    def _registered(cls, value: str) -> str:
        _check_registered(value)
        return value

    @field_validator("candidates")
    @classmethod
    def _registered_candidates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            _check_registered(name)
        return tuple(dict.fromkeys(value))  # drop repeats, keep the order

    @model_validator(mode="after")
    def _select_or_weights(self) -> ModelSpec:
        if self.select and self.weights is not None:
            raise ValueError("select: true chooses and trains a model; it cannot use weights")
        return self


def _check_registered(name: str) -> None:
    """ValueError naming the available models if ``name`` is not a registered model."""
    names = available_models()
    if name not in names:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(names)}")


#: fsspec URL schemes a store may live at instead of under ``output_root``.
STORE_URL_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "abfss", "memory")


class StoreSpec(Spec):
    """The output Zarr store: a local path (relative to ``output_root``) or an fsspec URL.

    A local path must stay inside ``output_root``: absolute paths, ``..``
    escapes and ``file://`` URLs are refused, so no configuration can make a
    run write (or ``overwrite``, i.e. delete) anything outside its output root.
    """

    path: str = "fusion.zarr"
    sharding: bool = False
    overwrite: bool = False

    @field_validator("path")
    @classmethod
    def _inside_output_root(cls, value: str) -> str:
        if "://" in value:
            scheme = value.split("://", 1)[0].lower()
            if scheme not in STORE_URL_SCHEMES:
                raise ValueError(
                    f"{value!r}: use a path relative to output_root or a "
                    f"{'/'.join(STORE_URL_SCHEMES)} URL"
                )
            return value
        path = Path(value)
        if not value or path.is_absolute() or value.startswith("~") or ".." in path.parts:
            raise ValueError(
                f"{value!r} would write outside output_root; give a relative path "
                "without '..' (set output_root to move it)"
            )
        return value


class ComputeSpec(Spec):
    """Where the work runs: a new LocalCluster, or an existing Dask scheduler."""

    scheduler: str | None = None
    n_workers: int = Field(default=2, ge=1, le=1024)
    threads_per_worker: int = Field(default=1, ge=1, le=256)
    memory_limit: str = "auto"
    gpu: bool = False
    batch_days: int = Field(default=8, ge=1, le=366, description="target days fused per task")
    window_mib: float = Field(
        default=512.0,
        gt=0,
        description="MiB of source chunks one group of fuse tasks may hold per worker "
        "(two groups are open at a time); bounds the inputs held on the cluster",
    )
    max_run_gib: float = Field(
        default=4096.0,
        gt=0,
        description="GiB a run may read plus write (estimated before any pixel is read); "
        "a larger region or season is refused in one line naming this setting",
    )


class ProductsSpec(Spec):
    """Products derived from the fused store after the run (each an opt-in step of ``stf run``).

    ``cropmap`` and ``feeds`` need ``labels``: field polygons (GeoParquet/GeoJSON with a
    crop-type column) or a class raster on the store's grid.
    """

    ndvi: bool = False
    phenology: bool = False
    cropmap: bool = False
    labels: Path | None = None
    feeds: bool = False
    pixels_per_field: int = Field(
        default=50,
        ge=1,
        description="labelled pixels drawn per field to train the crop map (pixels of one "
        "field are strongly correlated: more add fit time, little information)",
    )

    @model_validator(mode="after")
    def _labels_when_needed(self) -> ProductsSpec:
        if (self.cropmap or self.feeds) and self.labels is None:
            raise ValueError("cropmap and feeds need products.labels (field polygons or a raster)")
        return self

    @property
    def any(self) -> bool:
        """True when at least one product step is asked for."""
        return self.ndvi or self.phenology or self.cropmap or self.feeds


class RunConfig(Spec):
    """A whole run: region + grid + time + sources + model + store + compute + products."""

    region: RegionSpec
    time: TimeSpec
    grid: GridSpec = GridSpec()
    collections: CollectionsSpec = CollectionsSpec()
    bands: tuple[str, ...] = BANDS
    max_cloud_cover: float = Field(default=80.0, ge=0, le=100)
    stac: StacSpec = StacSpec()
    chunks: ChunkSpec = ChunkSpec()
    model: ModelSpec = ModelSpec()
    store: StoreSpec = StoreSpec()
    compute: ComputeSpec = ComputeSpec()
    products: ProductsSpec = ProductsSpec()
    output_root: Path = Field(
        default=Path("out"),
        description="where runs write (store, work files, models, products); a relative path "
        "is relative to the working directory of the command, not to the config file",
    )

    @field_validator("bands")
    @classmethod
    def _known_bands(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [b for b in value if b not in BANDS]
        if unknown:
            raise ValueError(f"unknown band(s) {unknown}; known: {list(BANDS)}")
        if not value:
            raise ValueError("at least one band is required")
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate bands in {list(value)}")
        return value

    def with_updates(self, **changes: Any) -> RunConfig:
        """A validated copy with top-level fields replaced (specs stay frozen)."""
        return RunConfig.model_validate({**self.model_dump(), **changes})


def _format_error(err: ValidationError, source: str) -> str:
    """Every problem of the config on one line (a user fixes them all in one edit)."""
    return f"config error in {source}: " + "; ".join(_describe(e) for e in err.errors())


def _describe(error: Any) -> str:
    loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    elif error["type"] == "missing":
        msg = "required field is missing"
    return f"{loc}: {msg}"


def parse_config(data: Any, source: str = "<config>", base_dir: Path | None = None) -> RunConfig:
    """Validate a mapping (from YAML/JSON) into a :class:`RunConfig`.

    Relative input paths (``model.weights``, ``products.labels``, a ``region.geojson``
    given as a path) are resolved against ``base_dir`` (the config file's folder): they
    travel with the config. ``output_root`` is not: a relative output root is relative
    to the working directory, so an example config run from anywhere writes there and
    never into the folder that holds the config (a repository, say).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"config error in {source}: expected a mapping at the top level")
    data = dict(data)
    region = data.get("region")
    if isinstance(region, dict) and isinstance(region.get("geojson"), str):
        gj_path = _resolve(Path(region["geojson"]), base_dir)
        try:
            geo = json.loads(gj_path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"config error in {source}: region.geojson: cannot read {gj_path}: {exc}"
            ) from None
        if geo.get("type") == "FeatureCollection":
            geo = geo["features"][0]["geometry"]
        elif geo.get("type") == "Feature":
            geo = geo["geometry"]
        data["region"] = {**region, "geojson": geo}
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(err, source)) from None
    if base_dir is not None:
        cfg = _resolve_paths(cfg, base_dir)
    return cfg


def _resolve(path: Path, base_dir: Path | None) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path


def _resolve_paths(cfg: RunConfig, base_dir: Path) -> RunConfig:
    model = cfg.model
    if model.weights is not None:
        model = model.model_copy(update={"weights": _resolve(model.weights, base_dir)})
    products = cfg.products
    if products.labels is not None:
        products = products.model_copy(update={"labels": _resolve(products.labels, base_dir)})
    # Outputs go where the command runs (see parse_config); absolute from here on.
    output_root = _resolve(cfg.output_root, Path.cwd())
    return cfg.model_copy(update={"model": model, "products": products, "output_root": output_root})


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run configuration (safe loader only)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"config error: cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config error in {path}: not valid YAML{where}") from None
    return parse_config(data, source=str(path), base_dir=path.parent.resolve())
