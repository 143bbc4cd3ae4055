"""In-memory form of an OSM extract, as the I/O layer hands it to the pure core.

Highway ways are kept as flat numpy arrays (no per-node Python objects) so a
whole-district extract builds into a network quickly; everything else that
may be a facility, a building or land use is a small GeoDataFrame of tagged
nodes and areas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import numpy.typing as npt

# Keys that make a tagged node or area worth keeping as a feature.
FEATURE_KEYS: tuple[str, ...] = (
    "amenity",
    "healthcare",
    "social_facility",
    "social_facility:for",
    "tourism",
    "building",
    "landuse",
    "name",
)

# Key of the nodes kept as entrances (doors and gates of buildings and grounds).
ENTRANCE_KEY = "entrance"


@dataclass
class HighwayWays:
    """Highway ways as flat arrays.

    Way ``i`` has nodes ``node_ids[offsets[i]:offsets[i + 1]]`` at
    ``lon``/``lat`` of the same slice (WGS-84 degrees).
    """

    way_ids: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    node_ids: npt.NDArray[np.int64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    tags: list[dict[str, str]]
    """Per way, the tags the walking network reads (``highway`` and the keys of
    ``network.WALK_EXCLUDE``); ways with equal such tags share one dict (read-only)."""

    def __len__(self) -> int:
        """Return the number of ways."""
        return len(self.way_ids)


@dataclass
class OSMData:
    """An OSM extract: highway ways, tagged features and the data timestamp.

    ``features`` has columns ``osm_type`` ("node", "way", "relation"),
    ``osm_id``, ``tags`` (a dict per row) and a WGS-84 ``geometry`` (points
    for nodes, polygons for closed ways and multipolygon relations).
    ``entrances`` holds every node tagged ``entrance=*`` (whatever its other
    tags): columns ``osm_id``, ``tags`` and WGS-84 points. Nodes tagged only
    ``door=*`` are not entrances (the OSM wiki tags a door's entrance with
    ``entrance=*``; a lone ``door`` is usually indoors).
    """

    ways: HighwayWays
    features: gpd.GeoDataFrame
    osm_base: str | None
    source: str
    entrances: gpd.GeoDataFrame = field(default_factory=lambda: empty_entrances())


def empty_entrances() -> gpd.GeoDataFrame:
    """Return an empty entrance table (columns ``osm_id``, ``tags``, WGS-84 points)."""
    return gpd.GeoDataFrame(
        {"osm_id": np.zeros(0, dtype=np.int64), "tags": []},
        geometry=gpd.GeoSeries([], crs="EPSG:4326"),
        crs="EPSG:4326",
    )
