from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle.residents import (
    DEFAULT_LEVELS,
    build_residents,
    grid_points,
    residential_buildings,
    spread_population,
    summarize_residents,
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
    assert b["levels_source"].tolist() == ["tagged_levels", "height", "imputed_median"]
    assert b.attrs["imputed_levels"] == 10.0
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
    assert b["levels_source"].iloc[0] == "default"
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


def test_mean_is_not_the_median() -> None:
    # known levels 2, 3 and 40: median 3, mean 15
    feats = _features(
        [
            ({"building": "apartments", "building:levels": "2"}, _square(121.5, 31.2)),
            ({"building": "apartments", "building:levels": "3"}, _square(121.501, 31.2)),
            ({"building": "apartments", "building:levels": "40"}, _square(121.502, 31.2)),
            ({"building": "residential"}, _square(121.503, 31.2)),
        ]
    )
    b = residential_buildings(feats, crs="EPSG:32651")
    assert b["levels"].iloc[3] == 3.0
    r = build_residents(feats, crs="EPSG:32651", area=AREA)
    s = summarize_residents(r)
    assert s["imputed_levels"] == 3.0
    fp = b["footprint_m2"].to_numpy()
    expected = fp[3] * 3 / (fp[0] * 2 + fp[1] * 3 + fp[2] * 40 + fp[3] * 3)
    assert s["imputed_levels_share"] == pytest.approx(expected, abs=1e-6)


def _toy_land() -> gpd.GeoDataFrame:
    """Three residential land polygons in UTM 51N; buildings only in the first two."""
    x0, y0 = 350_000.0, 3_450_000.0
    rows = [
        # A: 200 m x 100 m with 6,000 m2 floor (FAR 0.3)
        ({"landuse": "residential"}, shapely.box(x0, y0, x0 + 200, y0 + 100)),
        ({"building": "apartments", "building:levels": "6"}, _box(x0 + 10, y0 + 10, 1000)),
        # B: 100 m x 100 m with 10,000 m2 floor (FAR 1.0)
        ({"landuse": "residential"}, shapely.box(x0 + 300, y0, x0 + 400, y0 + 100)),
        ({"building": "apartments", "building:levels": "10"}, _box(x0 + 310, y0 + 10, 1000)),
        # C: 300 m x 200 m, no building; a school inside does not count as housing
        ({"landuse": "residential"}, shapely.box(x0, y0 + 500, x0 + 300, y0 + 700)),
        ({"building": "school", "building:levels": "3"}, _box(x0 + 10, y0 + 510, 400)),
        # D: a 10 m x 10 m sliver of land without buildings: too small for a point
        ({"landuse": "residential"}, shapely.box(x0 + 900, y0, x0 + 910, y0 + 10)),
    ]
    return gpd.GeoDataFrame(
        {"osm_type": "way", "osm_id": np.arange(len(rows)), "tags": [r[0] for r in rows]},
        geometry=[r[1] for r in rows],
        crs="EPSG:32651",
    ).to_crs(4326)


def _box(x: float, y: float, area_m2: float) -> shapely.Polygon:
    side = float(np.sqrt(area_m2))
    return shapely.box(x, y, x + side, y + side)


def test_residential_land_without_buildings_gets_residents() -> None:
    feats = _toy_land()
    r = build_residents(feats, crs="EPSG:32651", area=AREA, grid_spacing_m=100)
    infill = r.loc[r["basis"] == "landuse_infill"]
    # C is 300 m x 200 m: 3 x 2 grid points at 100 m; median FAR of A (0.3) and B (1.0) is 0.65
    assert len(infill) == 6
    assert infill["weight"].sum() == pytest.approx(300 * 200 * 0.65, rel=1e-4)
    assert np.allclose(infill["weight"], infill["weight"].iloc[0])
    assert set(infill["source_id"]) == {"way/4"}
    assert set(infill["levels_source"]) == {"none"}
    buildings = r.loc[r["basis"] == "buildings"]
    assert buildings["weight"].sum() == pytest.approx(6 * 1000 + 10 * 1000, rel=1e-4)
    s = summarize_residents(r)
    assert s["basis"] == "landuse_infill"  # 39,000 of 55,000 m2
    assert s["bases"]["landuse_infill"]["points"] == 6
    assert s["landuse_infill_floor_area_ratio"] == pytest.approx(0.65, rel=1e-4)
    assert s["imputed_levels_share"] == 0.0


def test_overlapping_land_is_not_filled_twice() -> None:
    feats = _toy_land()
    x0, y0 = 350_000.0, 3_450_000.0
    # E overlaps C (200 m x 200 m shared, 100 m x 200 m new); F overlaps the built A
    # except a 50 m x 100 m strip: only land outside built polygons, counted once
    extra = gpd.GeoDataFrame(
        {"osm_type": "way", "osm_id": [98, 99], "tags": [{"landuse": "residential"}] * 2},
        geometry=[
            shapely.box(x0 + 100, y0 + 500, x0 + 400, y0 + 700),
            shapely.box(x0 + 100, y0, x0 + 250, y0 + 100),
        ],
        crs="EPSG:32651",
    ).to_crs(4326)
    both = gpd.GeoDataFrame(
        pd.concat([feats, extra], ignore_index=True), geometry="geometry", crs=4326
    )
    r = build_residents(both, crs="EPSG:32651", area=AREA, grid_spacing_m=100)
    infill = r.loc[r["basis"] == "landuse_infill"]
    assert infill["weight"].sum() == pytest.approx((400 * 200 + 50 * 100) * 0.65, rel=1e-3)


def _pudong_boundary_m(data_dir) -> shapely.Geometry:  # type: ignore[no-untyped-def]
    units = gpd.read_file(
        data_dir / "pudong" / "boundaries" / "pudong_36_streets_towns_osm_wgs84.geojson"
    )
    return shapely.union_all(units.to_crs("EPSG:32651").geometry.to_numpy())


def test_lujiazui_imputed_levels_pinned_on_osm_tags(lujiazui_osm, data_dir) -> None:  # type: ignore[no-untyped-def]
    """The median of the tagged levels, and the weight share resting on it, from the tags."""
    feats = lujiazui_osm.features
    polys = feats.loc[feats.geom_type.isin(["Polygon", "MultiPolygon"])].to_crs("EPSG:32651")
    tags = polys["tags"].tolist()
    land = shapely.union_all(
        polys.geometry.to_numpy()[[t.get("landuse") == "residential" for t in tags]]
    )
    inner = shapely.point_on_surface(polys.geometry.to_numpy())
    housing = {"residential", "apartments", "house", "dormitory", "terrace", "detached"}
    is_res = np.array(
        [
            t.get("building") in housing or (t.get("building") == "yes" and shapely.within(p, land))
            for t, p in zip(tags, inner, strict=True)
        ]
    )
    levels = np.array(
        [float(t["building:levels"]) if "building:levels" in t else np.nan for t in tags]
    )
    # no residential building has a height without levels here: levels are tagged or imputed
    assert not any(
        "height" in t and "building:levels" not in t for t, r in zip(tags, is_res, strict=True) if r
    )
    known = levels[is_res & np.isfinite(levels)]
    assert len(known) == 35
    median = float(np.median(known))
    assert median == 6.0
    assert float(np.mean(known)) > 13  # a mean would impute 13.4 levels
    pudong = _pudong_boundary_m(data_dir)
    here = is_res & shapely.within(inner, pudong)
    footprint = shapely.area(polys.geometry.to_numpy())
    floor = footprint * np.where(np.isfinite(levels), levels, median)
    share = floor[here & ~np.isfinite(levels)].sum() / floor[here].sum()
    assert share == pytest.approx(0.76, abs=0.01)

    r = build_residents(feats, crs="EPSG:32651", area=pudong)
    s = summarize_residents(r)
    assert s["imputed_levels"] == median
    assert s["bases"]["buildings"]["points"] == int(here.sum()) == 249
    assert s["imputed_levels_share_of_buildings"] == pytest.approx(share, abs=1e-6)
    assert set(r.loc[r["levels_source"] == "imputed_median", "source_id"]) == {
        f"{t}/{i}"
        for t, i, h, lv in zip(polys["osm_type"], polys["osm_id"], here, levels, strict=True)
        if h and not np.isfinite(lv)
    }


def test_lujiazui_residents(lujiazui_osm, data_dir) -> None:  # type: ignore[no-untyped-def]
    r = build_residents(lujiazui_osm.features, crs="EPSG:32651", area=AREA)
    assert (r["basis"] == "buildings").sum() == 289
    assert r["weight"].min() > 0
    # Pudong: two residential land polygons without a mapped home get 9 points
    r = build_residents(lujiazui_osm.features, crs="EPSG:32651", area=_pudong_boundary_m(data_dir))
    infill = r.loc[r["basis"] == "landuse_infill"]
    assert len(infill) == 9
    assert set(infill["source_id"]) == {"way/407443052", "way/497032156"}
