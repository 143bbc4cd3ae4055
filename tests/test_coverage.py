from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lifecircle.coverage import (
    covered_frame,
    parse_profile,
    read_profile_text,
    ring_labels,
    summarize_coverage,
    target_mask,
    weighted_share,
)
from lifecircle.errors import InputError


def test_default_and_shanghai_profiles() -> None:
    default = parse_profile(read_profile_text("default"))
    assert {t.threshold_m for t in default} == {1000.0}
    sh = parse_profile(read_profile_text("shanghai"))
    by = {(t.category, t.subtype): t for t in sh}
    assert by[("school", "kindergarten")].threshold_m == 300
    assert by[("school", "primary")].threshold_m == 500
    assert all(t.source for t in sh)  # every tier names its source
    assert parse_profile(read_profile_text("default"), minutes=10)[0].threshold_m == pytest.approx(
        666.667, abs=1e-3
    )


def test_profile_errors() -> None:
    with pytest.raises(InputError, match="unknown category"):
        parse_profile("category,subtype,minutes,distance_m,source\nshops,*,,,\n")
    with pytest.raises(InputError, match="unknown standard profile"):
        read_profile_text("nope")


def test_coverage_by_hand() -> None:
    targets = parse_profile(read_profile_text("shanghai"), categories=("school",))
    res = pd.DataFrame(
        {
            "weight": [1.0, 2.0, 3.0, 4.0],
            "status": ["ok", "ok", "ok", "island"],
            "dist_school_kindergarten_m": [200, 400, 100, 10],
            "dist_school_primary_m": [450, 100, 100, 10],
            "dist_school_secondary_m": [900, 100, 1200, 10],
            "dist_school_m": [200, 100, 100, 10],
        }
    )
    cov = covered_frame(res, targets)
    # 1st meets every tier; 2nd misses the kindergarten tier; 3rd misses secondary; 4th is an island
    assert cov["school"].tolist() == [True, False, False, False]
    s = summarize_coverage(
        res, cov, targets, target=0.99, facility_counts={"school": {"reachable": 3, "total": 5}}
    )
    school = s["categories"]["school"]
    assert school["coverage"] == pytest.approx(0.1)
    assert school["gap_points"] == pytest.approx(89.0)
    assert school["meets_target"] is False
    assert school["residents_left_out"] == pytest.approx(9.0)
    assert school["facilities"] == 3


def test_target_mask_compound_subtypes() -> None:
    fac = pd.DataFrame(
        {
            "category": ["school", "school", "health"],
            "subtype": ["primary+secondary", "kindergarten", "clinic"],
        }
    )
    t = next(x for x in parse_profile(read_profile_text("shanghai")) if x.subtype == "secondary")
    assert target_mask(fac, t).tolist() == [True, False, False]


def test_weighted_share_and_rings() -> None:
    assert weighted_share(np.array([True, True, False]), np.array([1.0, 1.0, 2.0])) == 0.5
    labels = ring_labels(np.array([0.0, 2.99, 3.0, 24.0, 26.0]), (0, 3, 6, 10, 15, 25))
    assert labels.tolist()[:4] == ["0-3 km", "0-3 km", "3-6 km", "15-25 km"]
    assert pd.isna(labels.iloc[4])
