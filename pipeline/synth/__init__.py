"""The embedded demo world: seeded synthetic Po-valley farmland seen by Landsat/MODIS-like sensors.

``build_world(root, WorldSpec.tiny())`` writes real COGs and STAC items; serve them with
:func:`pipeline.catalog.server.serve_catalog`.
"""

from pipeline.synth.export import export_manifest
from pipeline.synth.spec import WorldSpec
from pipeline.synth.world import World, build_world, open_world

__all__ = ["World", "WorldSpec", "build_world", "export_manifest", "open_world"]
