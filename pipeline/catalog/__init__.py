"""STAC search of any STAC API, GDAL settings for reading its assets, a loopback STAC server.

Sensor definitions (asset keys, scale/offset, nodata, QA bits) are on the ground floor:
:mod:`pipeline.sensors`.
"""
