from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from lifecircle.coverage import Target
from lifecircle.pipeline import CoverageOptions, run_coverage, scenario_area, search_limit
from lifecircle.prepare import AreaRequest, prepare_area
from tests.conftest import care_home


@pytest.fixture(scope="module")
def lujiazui_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("run")
    req = AreaRequest(district="pudong")
    prepared = scenario_area(prepare_area(req), add=care_home())  # Lujiazui maps no care home
    return run_coverage(req, CoverageOptions(), out_dir=out, prepared=prepared)


def test_every_covered_resident_lies_inside_its_drawn_isochrone(lujiazui_run) -> None:  # type: ignore[no-untyped-def]
    res = lujiazui_run.residents
    cat_iso = lujiazui_run.category_isochrones.set_index("category")
    checked = 0
    for cat in cat_iso.index:
        covered = res[f"covered_{cat}"].to_numpy(dtype=bool)
        inside = res.geometry.within(cat_iso.geometry[cat]).to_numpy()
        assert not (covered & ~inside).any(), cat
        checked += int(covered.sum())
    assert checked > 200


def test_facility_table_marks_the_unreachable(lujiazui_run) -> None:  # type: ignore[no-untyped-def]
    fac = gpd.read_file(lujiazui_run.out_dir / "facilities_reach.gpkg")
    cats = lujiazui_run.summary["categories"]
    for cat, info in cats.items():
        sel = fac["category"] == cat
        assert info["facilities"] == int(fac.loc[sel, "reachable"].sum())
        assert info["facilities_total"] == int(sel.sum())
    # a facility counted as reachable has an access leg within the snap limit
    assert (fac.loc[fac["reachable"], "access_leg_m"] <= 300).all()


def test_snapping_report_on_lujiazui(lujiazui_run) -> None:  # type: ignore[no-untyped-def]
    snap = lujiazui_run.summary["data"]["snapping"]["residents"]
    res = lujiazui_run.residents
    assert snap["moved_off_fragment"] == int(res["moved_off_fragment"].sum()) == 7
    w = res.loc[res["moved_off_fragment"], "weight"].sum()
    assert snap["moved_weight"] == pytest.approx(w, abs=1e-3)
    # no resident counts as stranded any more: every one is on the routable network
    assert (res["status"] == "ok").all()


def _targets(*metres: float) -> list[Target]:
    # one any-school tier per distance: `m` metres are m * 60 / 4000 minutes at 4 km/h
    return [Target("school", "any", ("*",), m * 60 / 4000, 4.0, "") for m in metres]


def test_search_limit_stops_at_the_margin() -> None:
    limit, notes = search_limit(CoverageOptions(search_limit_m=3000), _targets(1000), 1500)
    assert limit == 1500
    assert "1500 m" in notes[0]
    limit, notes = search_limit(CoverageOptions(search_limit_m=3000), _targets(1000), 3000)
    assert (limit, notes) == (3000, [])


def test_margin_below_the_threshold_warns() -> None:
    with pytest.warns(RuntimeWarning, match="margin"):
        limit, _ = search_limit(CoverageOptions(), _targets(1000), 500)
    assert limit == 1000


@pytest.mark.filterwarnings("ignore:no elderly_care facilities:RuntimeWarning")
def test_distances_beyond_the_margin_are_not_reported(data_dir: Path, tmp_path: Path) -> None:
    req = AreaRequest(district="pudong", margin_m=1200)
    result = run_coverage(req, CoverageOptions(isochrones=False, make_map=False), out_dir=tmp_path)
    assert result.summary["parameters"]["search_limit_m"] == 1200
    d = result.residents["dist_school_m"].to_numpy()
    assert np.all(np.isinf(d) | (d <= 1200))


def test_long_facility_legs_are_warned() -> None:
    import pandas as pd

    from lifecircle.pipeline import long_leg_warning

    table = pd.DataFrame(
        {"reachable": [True, True, True, False], "access_leg_m": [5.0, 150.0, 297.0, 400.0]}
    )
    with pytest.warns(RuntimeWarning, match=r"2 of 3 reachable facilities .*\(up to 297 m\)"):
        assert len(long_leg_warning(table)) == 1
    assert long_leg_warning(table.iloc[:1]) == []


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_tiered_map_is_where_every_tier_is_met(data_dir: Path, tmp_path: Path) -> None:
    """Review of issue 8: under shanghai the drawn reach was the union of the tiers (155 of 225
    residents not covered for school lay inside it); it is now their intersection."""
    req = AreaRequest(district="pudong")
    opts = CoverageOptions(profile="shanghai", speed_kmh=3.0, make_map=False)
    result = run_coverage(req, opts, out_dir=tmp_path)
    res = result.residents
    cat_iso = result.category_isochrones.set_index("category")
    school = cat_iso.geometry["school"]
    covered = res["covered_school"].to_numpy(dtype=bool)
    inside = res.geometry.within(school).to_numpy()
    assert not (covered & ~inside).any()
    assert (~covered & inside).sum() <= 0.2 * (~covered).sum()
    # the union of the three tiers' reach holds far more of the uncovered residents
    union = result.isochrones.loc[result.isochrones["category"] == "school"].geometry.union_all()
    assert (~covered & res.geometry.within(union).to_numpy()).sum() > 2 * (~covered & inside).sum()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_tiered_statistics_use_the_tiers_counted(data_dir: Path, tmp_path: Path) -> None:
    """Review of issue 8: shanghai health showed 0% coverage beside "facilities 2" and a median
    distance to hospitals; counts and distances now follow the tiers that decide coverage."""
    req = AreaRequest(district="pudong")
    opts = CoverageOptions(profile="shanghai", isochrones=False, make_map=False)
    result = run_coverage(req, opts, out_dir=tmp_path)
    cats = result.summary["categories"]
    fac = result.prepared.facilities
    health = fac.loc[fac["category"] == "health", "subtype"].tolist()
    assert "community_health_centre" not in health  # Lujiazui maps hospitals only
    assert cats["health"]["facilities"] == 0
    assert cats["health"]["coverage"] == 0.0
    assert cats["health"]["median_distance_m"] is None  # the one required tier is never reached
    # school has three required tiers: no single distance decides; each tier has its own
    assert cats["school"]["median_distance_m"] is None
    tiers = {t["tier"]: t for t in cats["school"]["thresholds"]}
    res = result.residents
    for tier in ("kindergarten", "primary", "secondary"):
        d = np.sort(res[f"dist_school_{tier}_m"].to_numpy())
        w = res["weight"].to_numpy()[np.argsort(res[f"dist_school_{tier}_m"].to_numpy())]
        median = d[np.searchsorted(np.cumsum(w), 0.5 * w.sum())]
        assert tiers[tier]["median_distance_m"] == pytest.approx(round(float(median), 1))


def test_each_tier_of_a_layer_is_drawn_at_its_own_threshold() -> None:
    # a 3 km street; one school serving the primary (5 min = 400 m at 4.8 km/h) and the
    # secondary (15 min = 1,200 m) tiers, at x = 1,500 m. Its own isochrone reaches 1,200 m
    # either way; the school layer (every tier met) only the primary tier's 400 m. The
    # old layer took the facility's 1,200 m polygon for both tiers.
    from lifecircle.access import Router
    from lifecircle.pipeline import _isochrones
    from lifecircle.snapping import SnappedArea, snap_points
    from tests.conftest import toy_network

    net = toy_network([(x, 0.0) for x in range(0, 3001, 100)], [(i, i + 1) for i in range(30)])
    fac = gpd.GeoDataFrame(
        {"category": ["school"], "subtype": ["primary+secondary"], "name": ["a"]},
        geometry=gpd.points_from_xy([1500.0], [0.0]),
        crs=net.crs,
        index=[7],
    )
    acc = snap_points(fac, net).reset_index(drop=True).assign(facility_id=[7])
    snapped = SnappedArea(
        residents=pd.DataFrame(),
        access=acc,
        facility_reachable=pd.Series({7: True}),
        routable=np.ones(net.n_nodes, dtype=bool),
    )
    tiers = [
        Target("school", "primary", ("primary",), 5.0, 4.8, ""),
        Target("school", "secondary", ("secondary",), 15.0, 4.8, ""),
    ]
    iso, layers = _isochrones(Router.from_network(net), fac, snapped, tiers, 25.0)
    assert iso.geometry.iloc[0].bounds == pytest.approx((275, -25, 2725, 25), abs=1.0)
    layer = layers.set_index("category").geometry["school"]
    assert layer.bounds == pytest.approx((1075, -25, 1925, 25), abs=1.0)
    assert layer.area == pytest.approx(800 * 50 + np.pi * 25**2, rel=5e-3)


def test_category_layers_match_the_exact_overlay_on_lujiazui(data_dir: Path) -> None:
    # the layers are contours of distance fields; the reference buffers every reached
    # segment (quad_segs=8), unions them per facility and overlays the facilities and the
    # covered residents' legs as polygons (the old route, with the exact polygons)
    import shapely

    from lifecircle.coverage import facility_thresholds
    from lifecircle.isochrones import facility_isochrones, overlap_ratio
    from lifecircle.pipeline import compute_coverage, dissolve_by_facility, dissolve_isochrones

    prepared = scenario_area(prepare_area(AreaRequest(district="pudong")), add=care_home())
    frames = compute_coverage(prepared, CoverageOptions())
    acc = frames.snapped.access
    fac = prepared.facilities.loc[acc["facility_id"].to_numpy()]
    legs = gpd.GeoDataFrame(
        {c: fac[c].to_numpy() for c in ("category", "subtype", "name")},
        geometry=shapely.points(acc["leg_x"].to_numpy(), acc["leg_y"].to_numpy()),
        crs=prepared.crs,
    )
    thresholds = facility_thresholds(fac, frames.targets)
    parts = []
    for value in np.unique(thresholds[np.isfinite(thresholds)]):
        sel = thresholds == value
        one = facility_isochrones(
            frames.router, legs.loc[sel], acc.loc[sel], threshold_m=value, method="exact"
        )
        parts.append(one.assign(facility_id=acc["facility_id"].to_numpy()[one.index]))
    exact = dissolve_by_facility(gpd.GeoDataFrame(pd.concat(parts), crs=prepared.crs))
    ref = dissolve_isochrones(exact, frames.residents, frames.targets).set_index("category")
    got = frames.category_isochrones.set_index("category")
    assert sorted(got.index) == sorted(ref.index) == ["culture", "elderly_care", "health", "school"]
    for cat in ref.index:
        assert got.loc[cat, "facilities"] == ref.loc[cat, "facilities"]
        assert overlap_ratio(got.geometry[cat], ref.geometry[cat]) > 0.99, cat
    # and each facility's polygon against its exact one
    mine = frames.isochrones.loc[exact.index]
    ratios = [overlap_ratio(a, b) for a, b in zip(mine.geometry, exact.geometry, strict=True)]
    assert min(ratios) > 0.99
