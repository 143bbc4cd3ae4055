from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle.gaps import flags, gap_clusters, gini, gradient, theil, zone_measures


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
        "Ring 10-15 km: health coverage 41%, 54 points below the core ring (0-3 km, 95%)." in text
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
    assert cl["residents"].tolist() == [8.0, 3.0]  # ranked by residents affected
    assert cl["missing"].tolist() == ["school,health", "health"]
    assert cl["zone"].tolist() == ["3-6 km", "0-3 km"]
    assert np.isnan(cl["dist_health_m"].iloc[0])
    assert cl["dist_health_m"].iloc[1] == 1600.0
    assert cl["area_km2"].iloc[1] == pytest.approx((200 * 100 + np.pi * 50**2) / 1e6, rel=0.01)
