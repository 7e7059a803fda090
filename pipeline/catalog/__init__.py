"""STAC search and sensor definitions (asset keys, scale/offset, nodata, QA bits)."""
