from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from lifecircle.residents import (
    DEFAULT_LEVELS,
    build_residents,
    grid_points,
    residential_buildings,
    spread_population,
)

AREA = shapely.box(0, 0, 1e7, 1e7)


def _features(rows: list[tuple[dict[str, str], shapely.Geometry]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"osm_type": "way", "osm_id": np.arange(len(rows)), "tags": [r[0] for r in rows]},
        geometry=[r[1] for r in rows],
        crs=4326,
    )


def _square(lon: float, lat: float, d: float = 0.0002) -> shapely.Polygon:
    return shapely.box(lon, lat, lon + d, lat + d)


def test_levels_from_tag_height_and_default() -> None:
    feats = _features(
        [
            ({"building": "apartments", "building:levels": "10"}, _square(121.5, 31.2)),
            ({"building": "residential", "height": "30 m"}, _square(121.501, 31.2)),
            ({"building": "house"}, _square(121.502, 31.2)),
            ({"building": "office"}, _square(121.503, 31.2)),
        ]
    )
    b = residential_buildings(feats, crs="EPSG:32651")
    assert b["levels"].tolist() == [10.0, 10.0, 10.0]  # third: median of known levels
    assert b["levels_source"].tolist() == ["tag", "height", "median"]
    assert np.allclose(b["floor_area_m2"], b["footprint_m2"] * 10)


def test_building_yes_counts_inside_residential_landuse_only() -> None:
    feats = _features(
        [
            ({"landuse": "residential"}, shapely.box(121.5, 31.2, 121.51, 31.21)),
            ({"building": "yes"}, _square(121.502, 31.202)),
            ({"building": "yes"}, _square(121.6, 31.3)),
        ]
    )
    b = residential_buildings(feats, crs="EPSG:32651")
    assert len(b) == 1
    assert b["levels"].iloc[0] == DEFAULT_LEVELS
    r = build_residents(feats, crs="EPSG:32651", area=AREA)
    assert r["basis"].unique().tolist() == ["buildings"]
    assert r.attrs["weight_unit"] == "floor_area_m2"


def test_grid_fallbacks() -> None:
    feats = _features([({"landuse": "residential"}, shapely.box(121.5, 31.2, 121.505, 31.205))])
    r = build_residents(feats, crs="EPSG:32651", area=AREA, grid_spacing_m=100)
    assert r["basis"].iloc[0] == "landuse_grid"
    assert 20 < len(r) < 35  # about 475 m x 555 m at 100 m spacing
    empty = _features([({"amenity": "bench"}, _square(121.5, 31.2))])
    analysed = shapely.box(0, 0, 1000, 500)
    r2 = build_residents(empty, crs="EPSG:32651", area=AREA, analysed=analysed, grid_spacing_m=100)
    assert r2["basis"].iloc[0] == "area_grid"
    assert len(r2) == 50
    assert len(grid_points(shapely.box(0, 0, 300, 200), spacing_m=100)) == 6


def test_population_spread_over_buildings_by_floor_area() -> None:
    buildings = gpd.GeoDataFrame(
        {"source_id": ["a", "b"], "floor_area_m2": [100.0, 300.0]},
        geometry=[shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)],
        crs="EPSG:32651",
    )
    pop = gpd.GeoDataFrame(
        {"population": [400.0, 50.0]},
        geometry=[shapely.box(-5, -5, 40, 40), shapely.box(100, 100, 200, 200)],
        crs="EPSG:32651",
    )
    out = spread_population(pop, buildings, column="population")
    assert sorted(out["weight"].tolist()) == pytest.approx([50.0, 100.0, 300.0])
    assert out["weight"].sum() == pytest.approx(450.0)


def test_lujiazui_residents(lujiazui_osm) -> None:  # type: ignore[no-untyped-def]
    r = build_residents(lujiazui_osm.features, crs="EPSG:32651", area=AREA)
    assert len(r) == 289
    assert r["basis"].iloc[0] == "buildings"
    assert r["weight"].min() > 0
