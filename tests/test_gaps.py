from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle.coverage import ring_labels
from lifecircle.gaps import (
    flags,
    gap_clusters,
    gini,
    gradient,
    inequality,
    theil,
    zone_measures,
)


def test_gini_known_values() -> None:
    assert gini(np.array([5.0, 5.0, 5.0])) == 0.0
    assert gini(np.array([0.0, 1.0])) == pytest.approx(0.5)
    # n - 1 zeros and one positive value: (n - 1) / n
    assert gini(np.array([0.0] * 9 + [7.0])) == pytest.approx(0.9)
    # weights act like repeated observations
    assert gini(np.array([1.0, 3.0]), np.array([2.0, 1.0])) == pytest.approx(
        gini(np.array([1.0, 1.0, 3.0]))
    )
    # [1, 2, 3, 4]: sum |xi - xj| over ordered pairs = 20, / (2 * 16 * 2.5) = 0.25
    assert gini(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(0.25)


def test_theil_known_values_and_decomposition() -> None:
    assert theil(np.array([2.0, 2.0]))["total"] == pytest.approx(0.0)
    assert theil(np.array([0.0, 0.0, 0.0, 4.0]))["total"] == pytest.approx(np.log(4))
    x = np.array([1.0, 2.0, 3.0, 6.0, 8.0, 10.0])
    g = ["a", "a", "a", "b", "b", "b"]
    t = theil(x, groups=g)
    assert t["between"] + t["within"] == pytest.approx(t["total"])
    # between part by hand: group means 2 and 8, overall 5; shares 6/30 and 24/30
    between = 0.2 * np.log(2 / 5) + 0.8 * np.log(8 / 5)
    assert t["between"] == pytest.approx(between)


def _synthetic(coverages: dict[str, float], n: int = 100) -> pd.DataFrame:
    rows = []
    for ring, share in coverages.items():
        k = round(share * n)
        for i in range(n):
            rows.append(
                {
                    "ring": ring,
                    "weight": 1.0,
                    "covered_health": i < k,
                    "covered_all_categories": i < k,
                    "dist_health_m": 500.0 if i < k else 2000.0,
                }
            )
    return pd.DataFrame(rows)


def test_synthetic_gradient_is_detected() -> None:
    res = _synthetic({"0-3 km": 0.95, "3-6 km": 0.80, "6-10 km": 0.60, "10-15 km": 0.41})
    table = zone_measures(res, res["ring"], ["health"], kind="ring")
    core = table.loc[(table["zone"] == "0-3 km") & (table["category"] == "health")].iloc[0]
    assert core["coverage"] == pytest.approx(0.95)
    assert core["left_out"] == pytest.approx(5.0)
    assert core["median_m"] == 500.0
    g = gradient(table)["health"]
    assert g["spearman_rho"] == pytest.approx(-1.0)
    assert g["flag"] is True
    assert g["lag_points"] == pytest.approx(54.0)
    # least squares over mid-points 1.5, 4.5, 8, 12.5 km
    x = np.array([1.5, 4.5, 8.0, 12.5])
    assert g["points_per_km"] == pytest.approx(np.polyfit(x, [95, 80, 60, 41], 1)[0], abs=1e-3)
    text = flags(table, None, {"health": g}, gpd.GeoDataFrame(), target=0.99)
    assert (
        "Ring 10-15 km: health care coverage 41%, 54 points below the core ring (0-3 km, 95%)."
        in text
    )
    flat = gradient(
        zone_measures(
            *(lambda r: (r, r["ring"]))(_synthetic({"0-3 km": 0.9, "3-6 km": 0.9})),
            ["health"],
            kind="ring",
        )
    )["health"]
    assert flat["flag"] is False


def test_gradient_needs_two_populated_rings() -> None:
    res = _synthetic({"0-3 km": 0.5})
    g = gradient(zone_measures(res, res["ring"], ["health"], kind="ring"))["health"]
    assert "fewer than two" in g["note"]


def test_gap_clusters_by_hand() -> None:
    # two groups of uncovered points 5 km apart, one covered point in between
    pts = [(0, 0), (100, 0), (200, 0), (5000, 0), (5100, 0), (2500, 0)]
    res = gpd.GeoDataFrame(
        {
            "weight": [1.0, 1.0, 1.0, 4.0, 4.0, 1.0],
            "covered_health": [False] * 5 + [True],
            "covered_school": [True, True, True, False, False, True],
            "covered_all_categories": [False] * 5 + [True],
            "dist_health_m": [1500.0, 1600.0, 1700.0, np.inf, np.inf, 100.0],
            "dist_school_m": [100.0] * 3 + [1200.0, 1300.0, 100.0],
            "ring": ["0-3 km"] * 3 + ["3-6 km"] * 2 + ["0-3 km"],
        },
        geometry=[shapely.Point(p) for p in pts],
        crs="EPSG:32651",
    )
    cl = gap_clusters(res, ["school", "health"], eps_m=250)
    assert cl["rank"].tolist() == [1, 2]
    assert cl["weight"].tolist() == [8.0, 3.0]  # ranked by residents affected
    assert cl["missing"].tolist() == ["school,health", "health"]
    assert cl["zone"].tolist() == ["3-6 km", "0-3 km"]
    assert np.isnan(cl["dist_health_m"].iloc[0])
    assert cl["dist_health_m"].iloc[1] == 1600.0
    assert cl["area_km2"].iloc[1] == pytest.approx((200 * 100 + np.pi * 50**2) / 1e6, rel=0.01)


def test_inequality_not_measurable_without_a_reachable_facility() -> None:
    w = np.array([1.0, 2.0, 3.0])
    # a category with no facility: every distance is inf (capped it would read as Gini 0)
    none = inequality(np.full(3, np.inf), w, cap_m=3000.0)
    assert none["measurable"] is False
    assert none["gini"] is None
    assert none["theil"] is None
    assert "search limit" in none["reason"]
    assert none["capped_share"] == 1.0
    # every resident beyond the cap, though facilities exist
    far = inequality(np.array([3500.0, 4000.0, np.inf]), w, cap_m=3000.0)
    assert far["measurable"] is False
    assert far["gini"] is None
    # one resident within the cap: measurable, capped values [100, 3000, 3000] by hand
    some = inequality(np.array([100.0, 4000.0, np.inf]), np.ones(3), cap_m=3000.0)
    assert some["measurable"] is True
    # sum over ordered pairs |xi - xj| = 4 * 2900; mean 6100 / 3; G = 11600 / (2 * 9 * 6100 / 3)
    assert some["gini"] == pytest.approx(round(11600 / (2 * 9 * 6100 / 3), 4))
    assert some["capped_share"] == pytest.approx(2 / 3, abs=1e-6)
    # gini itself no longer calls an undefined index 0
    assert np.isnan(gini(np.array([0.0, 0.0])))
    assert np.isnan(gini(np.array([1.0, np.inf])))


def test_zone_measures_mark_quantiles_beyond_the_search_limit() -> None:
    res = pd.DataFrame(
        {
            "weight": [1.0, 1.0, 1.0, 1.0],
            "covered_health": [True, False, False, False],
            "covered_all_categories": [True, False, False, False],
            "dist_health_m": [200.0, 2500.0, np.inf, np.inf],
        }
    )
    table = zone_measures(res, pd.Series(["z"] * 4), ["health"], kind="ring")
    row = table.loc[table["category"] == "health"].iloc[0]
    assert row["median_m"] == 2500.0  # half the weight (2 of 4) is within 2,500 m
    assert not row["median_beyond_search_limit"]
    assert np.isnan(row["p90_m"])
    assert bool(row["p90_beyond_search_limit"]) is True


def test_gaps_json_with_a_category_without_facilities_is_strict(tmp_path: Path) -> None:
    """End to end on Lujiazui with the one elderly-care facility removed."""
    from dataclasses import replace

    from lifecircle import io
    from lifecircle.pipeline import CoverageOptions, GapOptions, compute_gaps
    from lifecircle.prepare import AreaRequest, prepare_area

    pudong = prepare_area(AreaRequest(district="pudong"))
    fac = pudong.facilities
    prepared = replace(pudong, facilities=fac.loc[fac["category"] != "elderly_care"])
    with pytest.warns(RuntimeWarning, match="no elderly_care facilities"):
        result = compute_gaps(
            prepared, AreaRequest(district="pudong"), CoverageOptions(), GapOptions(pdf=False)
        )
    ineq = result.summary["inequality"]["categories"]
    assert ineq["elderly_care"]["gini"] is None  # was 0.0: "perfect equality"
    assert ineq["elderly_care"]["measurable"] is False
    assert ineq["all_categories"]["gini"] is None  # nobody reaches every category
    assert ineq["school"]["measurable"] is True
    assert 0 < ineq["school"]["gini"] < 1
    # the strict writer: no Infinity/NaN tokens; p90 beyond the limit is null + a flag
    path = io.save_json(result.summary, tmp_path / "gaps.json")

    def refuse(token: str) -> object:
        raise ValueError(token)

    data = json.loads(path.read_text("utf-8"), parse_constant=refuse)
    cov = data["coverage"]["categories"]["elderly_care"]
    assert cov["p90_distance_m"] is None
    assert cov["p90_beyond_search_limit"] is True
    ring_rows = [z for z in data["zones"]["rings"] if z["category"] == "elderly_care"]
    assert ring_rows
    assert all(z["p90_m"] is None and z["p90_beyond_search_limit"] for z in ring_rows)


def _city(n: int, seed: int) -> gpd.GeoDataFrame:
    """Random residents over a 60 km wide city, core at the origin, rings to 25 km."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-30000, 30000, n), rng.uniform(-30000, 30000, n)
    dist_km = np.hypot(x, y) / 1000
    res = gpd.GeoDataFrame(
        {
            "weight": rng.integers(1, 5, n).astype(float),
            "covered_school": rng.random(n) < 0.3,
            "covered_health": rng.random(n) < 0.6,
            "dist_school_m": np.where(rng.random(n) < 0.2, np.inf, rng.uniform(0, 2000, n)),
            "dist_health_m": rng.uniform(0, 2000, n),
            "ring": ring_labels(dist_km, (0, 3, 6, 10, 15, 25)).to_numpy(),
        },
        geometry=gpd.points_from_xy(x, y),
        crs="EPSG:32651",
    )
    res["covered_all_categories"] = res["covered_school"] & res["covered_health"]
    return res


def test_rings_hold_every_resident_of_a_city_larger_than_the_rings() -> None:
    """Issue 12: residents beyond the last ring edge (25 km) are in the open ring "25+ km".

    Before, they had no ring: the ring table left out most of a 60 km city and its gap
    clusters there were labelled "outside the rings".
    """
    res = _city(3000, 1)
    beyond = np.hypot(res.geometry.x, res.geometry.y).to_numpy() > 25000
    assert beyond.sum() > 300  # the corners of the square lie beyond 25 km
    table = zone_measures(res, res["ring"], ["school", "health"], kind="ring")
    school = table.loc[table["category"] == "school"].set_index("zone")
    assert school["weight"].sum() == pytest.approx(res["weight"].sum())
    assert school.loc["25+ km", "weight"] == pytest.approx(res["weight"][beyond].sum())
    grad = gradient(table)
    assert grad["school"]["rings"][-1] == "25+ km"
    clusters = gap_clusters(res.loc[beyond], ["school", "health"], eps_m=800)
    assert set(clusters["zone"]) == {"25+ km"}


def test_gap_clusters_match_a_cluster_by_cluster_brute_force() -> None:
    """The sliced cluster loop gives what selecting each DBSCAN cluster's rows gives."""
    from sklearn.cluster import DBSCAN

    from lifecircle.stats import weighted_quantile

    res = _city(4000, 2)
    cats = ["school", "health"]
    got = gap_clusters(res, cats, eps_m=700)
    gaps_ = res.loc[~res["covered_all_categories"]]
    xy = np.column_stack([gaps_.geometry.x, gaps_.geometry.y])
    labels = DBSCAN(eps=700, min_samples=1).fit_predict(xy)
    want = []
    for lab in np.unique(labels):
        m = gaps_.loc[labels == lab]
        w = m["weight"].to_numpy()
        zone = pd.Series(w, index=m["ring"].to_numpy()).groupby(level=0).sum().idxmax()
        miss = [c for c in cats if w[~m[f"covered_{c}"].to_numpy()].sum() / w.sum() > 0.5]
        d = weighted_quantile(m["dist_school_m"].to_numpy(), w, 0.5)
        want.append((len(m), w.sum(), ",".join(miss), zone, d if np.isfinite(d) else np.nan))
    want_df = pd.DataFrame(want, columns=["points", "weight", "missing", "zone", "d"])
    want_df = want_df.sort_values(["weight", "points"], ascending=False, kind="stable")
    assert len(got) == len(want_df) > 50
    assert got["points"].tolist() == want_df["points"].tolist()
    assert got["weight"].tolist() == want_df["weight"].tolist()
    assert got["missing"].tolist() == want_df["missing"].tolist()
    assert got["zone"].tolist() == want_df["zone"].tolist()
    np.testing.assert_array_equal(got["dist_school_m"].to_numpy(), want_df["d"].to_numpy())


def test_eps_components_equal_scikit_learns_dbscan_with_min_samples_one() -> None:
    from sklearn.cluster import DBSCAN

    from lifecircle.gaps import eps_components

    rng = np.random.default_rng(3)
    # clumps plus points exactly eps apart on a line (ties are neighbours in both)
    xy = np.vstack(
        [
            rng.normal(0, 120, (400, 2)),
            rng.normal(2000, 300, (600, 2)),
            np.column_stack([np.arange(10) * 250.0 + 5000, np.zeros(10)]),
            [[9000.0, 9000.0]],
        ]
    )
    xy = xy[rng.permutation(len(xy))]
    expected = DBSCAN(eps=250.0, min_samples=1).fit_predict(xy)
    got = eps_components(xy, 250.0)
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(got)) > 3
