from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
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
