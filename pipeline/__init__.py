"""Distributed spatiotemporal fusion of Landsat and MODIS."""

__version__ = "0.1.0"
