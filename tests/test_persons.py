"""Estimated residents (persons) beside the floor-area weight (issue 11)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Geod

from lifecircle.cli import main
from lifecircle.errors import InputError
from lifecircle.pipeline import CoverageOptions, compute_coverage, scenario_area
from lifecircle.prepare import AreaRequest, prepare_area
from lifecircle.residents import build_residents, estimate_persons, persons_factor
from lifecircle.settings import DEFAULT_FLOOR_AREA_PER_PERSON_M2
from tests.conftest import care_home
from tests.test_bad_input import PUDONG, assert_refused

GEOD = Geod(ellps="WGS84")


def _features(rows: list[tuple[dict[str, str], shapely.Geometry]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"osm_type": "way", "osm_id": np.arange(len(rows)), "tags": [r[0] for r in rows]},
        geometry=[r[1] for r in rows],
        crs=4326,
    )


def _geodesic_area_m2(poly: shapely.Polygon) -> float:
    lon, lat = poly.exterior.xy
    return abs(GEOD.polygon_area_perimeter(lon, lat)[0])


def test_persons_by_hand_on_a_toy_building_set() -> None:
    """Three buildings: 10 levels, 30 m height (10 levels), and an untagged house (median 10)."""
    boxes = [
        shapely.box(121.500, 31.200, 121.5004, 31.2003),
        shapely.box(121.501, 31.200, 121.5012, 31.2002),
        shapely.box(121.502, 31.200, 121.5001 + 0.002, 31.2001),
    ]
    feats = _features(
        [
            ({"building": "apartments", "building:levels": "10"}, boxes[0]),
            ({"building": "residential", "height": "30"}, boxes[1]),
            ({"building": "house"}, boxes[2]),
            (
                {"building": "office", "building:levels": "40"},
                shapely.box(121.503, 31.2, 121.504, 31.201),
            ),
        ]
    )
    r = build_residents(feats, crs="EPSG:32651", area=shapely.box(0, 0, 1e7, 1e7))
    # floor area by hand: geodesic footprint (pyproj, not the UTM projection) x 10 levels each
    floor = [_geodesic_area_m2(b) * 10 for b in boxes]
    for per_person in (37.8, 30.0):
        p = estimate_persons(r, floor_area_per_person_m2=per_person)
        expected = np.array(floor) / per_person
        assert p["persons"].to_numpy() == pytest.approx(expected, rel=2e-3)
        assert p["persons"].sum() == pytest.approx(sum(floor) / per_person, rel=2e-3)
        assert p.attrs["persons_basis"] == f"residential floor area / {per_person:g} m² per person"
        assert p["weight"].tolist() == r["weight"].tolist()  # the floor area stays


def test_population_total_scales_any_weight() -> None:
    grid = gpd.GeoDataFrame({"weight": [1.0, 1.0, 2.0]}, geometry=[shapely.Point(0, 0)] * 3)
    grid.attrs["weight_unit"] = "grid_point"
    p = estimate_persons(grid, population_total=1000.0)
    assert p["persons"].tolist() == [250.0, 250.0, 500.0]
    assert p.attrs["persons_method"] == "population_total"
    with pytest.warns(RuntimeWarning, match="--population-total"):
        unknown = estimate_persons(grid)
    assert unknown["persons"].isna().all()
    assert unknown.attrs["persons_per_weight"] is None
    assert persons_factor("persons", 5.0) == (1.0, "population_layer", None)


@pytest.mark.parametrize("bad", [0.0, -3.0, math.nan, math.inf])
def test_bad_floor_area_per_person_is_refused_by_the_library(bad: float) -> None:
    with pytest.raises(InputError, match="--floor-area-per-person-m2 must be a finite number > 0"):
        persons_factor("floor_area_m2", 10.0, floor_area_per_person_m2=bad)


@pytest.fixture(scope="module")
def lujiazui() -> object:
    return scenario_area(prepare_area(AreaRequest(district="pudong")), add=care_home())


def _coverage(prepared: object, **options: object) -> dict:  # type: ignore[type-arg]
    return compute_coverage(prepared, CoverageOptions(isochrones=False, **options)).summary  # type: ignore[arg-type]


def test_lujiazui_persons_are_floor_area_over_the_divisor(lujiazui, lujiazui_osm, data_dir) -> None:  # type: ignore[no-untyped-def]
    """Total persons = floor area / 37.8, the building floor area recomputed from the OSM tags."""
    s = _coverage(lujiazui)
    res = s["data"]["residents"]
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
    levels = np.array([float(t.get("building:levels", "nan")) for t in tags])
    units = gpd.read_file(
        data_dir / "pudong" / "boundaries" / "pudong_36_streets_towns_osm_wgs84.geojson"
    )
    pudong = shapely.union_all(units.to_crs("EPSG:32651").geometry.to_numpy())
    here = is_res & shapely.within(inner, pudong)
    median = float(np.median(levels[is_res & np.isfinite(levels)]))
    building_floor = float(
        (shapely.area(polys.geometry.to_numpy()) * np.where(np.isfinite(levels), levels, median))[
            here
        ].sum()
    )
    infill = lujiazui.residents.loc[lujiazui.residents["basis"] == "landuse_infill", "weight"]
    total_floor = building_floor + float(infill.sum())
    assert res["total_weight"] == pytest.approx(total_floor, rel=1e-6)
    assert res["estimated_residents"] == round(total_floor / DEFAULT_FLOOR_AREA_PER_PERSON_M2)
    assert 25_000 < res["estimated_residents"] < 32_000  # about 28,100
    # the units' estimated residents add up to the total (every resident lies in a unit)
    units_sum = sum(u["estimated_residents"] for u in s["zones"]["admin"])
    assert units_sum == pytest.approx(total_floor / DEFAULT_FLOOR_AREA_PER_PERSON_M2, rel=1e-6)
    assert s["all_categories"]["estimated_residents_covered"] + s["all_categories"][
        "estimated_residents_left_out"
    ] == pytest.approx(total_floor / DEFAULT_FLOOR_AREA_PER_PERSON_M2, abs=0.2)


def test_coverage_shares_do_not_depend_on_the_persons_basis(lujiazui) -> None:  # type: ignore[no-untyped-def]
    base = _coverage(lujiazui)
    other = _coverage(lujiazui, floor_area_per_person_m2=20.0)
    total = _coverage(lujiazui, population_total=123_456.0)
    for s in (other, total):
        for cat, v in base["categories"].items():
            assert s["categories"][cat]["coverage"] == v["coverage"]
        assert s["all_categories"]["coverage"] == base["all_categories"]["coverage"]
        for a, b in zip(s["zones"]["admin"], base["zones"]["admin"], strict=True):
            assert a["school"] == b["school"]
    assert other["data"]["residents"]["estimated_residents"] == round(
        base["data"]["residents"]["total_weight"] / 20.0
    )
    # scaled to the known total: units add up to it, shares of it follow floor area
    assert total["data"]["residents"]["estimated_residents"] == 123_456
    units = {u["zone"]: u for u in total["zones"]["admin"]}
    assert sum(u["estimated_residents"] for u in units.values()) == pytest.approx(123_456, abs=0.2)
    w = units["陆家嘴街道"]["weight"] / total["data"]["residents"]["total_weight"]
    assert units["陆家嘴街道"]["estimated_residents"] == pytest.approx(123_456 * w, abs=0.1)
    assert total["data"]["residents"]["estimated_residents_basis"].startswith(
        "scaled to --population-total 123,456"
    )


@pytest.mark.parametrize("bad", ["0", "-5", "nan"])
def test_cli_refuses_bad_floor_area_per_person(bad: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["gaps", *PUDONG, "--floor-area-per-person-m2", bad, "--out", str(out)]
    )
    assert_refused(result, "--floor-area-per-person-m2 must be a finite number > 0")
    assert not out.exists()


def test_coverage_json_and_terminal_table_say_estimated_residents(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["coverage", *PUDONG, "--no-map", "--no-isochrones", "--lang", "zh", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    s = json.loads((out / "coverage.json").read_text())
    res = s["data"]["residents"]
    assert res["estimated_residents_basis"] == "residential floor area / 37.8 m² per person"
    assert res["estimated_residents"] == round(res["total_weight"] / 37.8)
    assert "养老" in result.output
    assert "估算常住人口" in result.output
    assert f"{s['categories']['school']['coverage'] * 100:.1f}%" in result.output
    assert "None" not in result.output
    assert "False" not in result.output


def test_population_total_over_a_population_layer_or_below_one_says_so() -> None:
    """Scaling a population layer's counts, or a total under one person, is warned, not silent."""
    layer = gpd.GeoDataFrame({"weight": [300.0, 100.0]}, geometry=[shapely.Point(0, 0)] * 2)
    layer.attrs["weight_unit"] = "persons"
    with pytest.warns(UserWarning, match="replaces the population layer's 400 persons"):
        p = estimate_persons(layer, population_total=200.0)
    assert p["persons"].tolist() == [150.0, 50.0]  # scaled by 200 / 400, by hand
    floor = gpd.GeoDataFrame({"weight": [378.0]}, geometry=[shapely.Point(0, 0)])
    floor.attrs["weight_unit"] = "floor_area_m2"
    with pytest.warns(UserWarning, match="less than one resident"):
        estimate_persons(floor, population_total=0.3)
    assert estimate_persons(floor, population_total=10.0)["persons"].tolist() == [10.0]
