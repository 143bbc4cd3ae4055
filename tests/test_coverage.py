from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lifecircle.coverage import (
    covered_frame,
    describe_thresholds,
    format_unassigned,
    known_subtypes,
    load_profile,
    parse_profile,
    read_profile_text,
    ring_labels,
    summarize_coverage,
    target_mask,
    threshold_label,
    unassigned_facilities,
    uniform_threshold_m,
    weighted_share,
)
from lifecircle.errors import InputError


def test_default_and_shanghai_profiles() -> None:
    default = parse_profile(read_profile_text("default"))
    assert {t.threshold_m for t in default} == {1000.0}
    sh = parse_profile(read_profile_text("shanghai"))
    by = {(t.category, t.tier): t for t in sh}
    # GB 50180-2018 5/10/15-minute circles at 4 km/h (the standard's 300/500/1,000 m are cited)
    assert by[("school", "kindergarten")].threshold_m == pytest.approx(5 * 4000 / 60)
    assert by[("school", "primary")].threshold_m == pytest.approx(10 * 4000 / 60)
    assert "300 m" in by[("school", "kindergarten")].source
    assert "500 m" in by[("school", "primary")].source
    assert all(t.source for t in sh)  # every tier names its source
    assert parse_profile(read_profile_text("default"), minutes=10)[0].threshold_m == pytest.approx(
        666.667, abs=1e-3
    )


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
    t = next(x for x in parse_profile(read_profile_text("shanghai")) if x.tier == "secondary")
    assert target_mask(fac, t).tolist() == [True, False, False]


def test_weighted_share_and_rings() -> None:
    assert weighted_share(np.array([True, True, False]), np.array([1.0, 1.0, 2.0])) == 0.5
    labels = ring_labels(np.array([0.0, 2.99, 3.0, 24.0, 26.0]), (0, 3, 6, 10, 15, 25))
    assert labels.tolist() == ["0-3 km", "0-3 km", "3-6 km", "15-25 km", "25+ km"]
    assert pd.isna(ring_labels(np.array([0.5]), (1, 3)).iloc[0])  # below the first edge


# ---------------------------------------------------------------- tiers (issue 8 point 3)
#
# The toy tests below route nothing: each resident's walking distance to each facility is
# given by hand (a matrix), and the nearest distance per tier is taken over the facilities
# the tier's mask selects. Only functions that the old code also had are used on the way
# (parse_profile, target_mask, covered_frame), so these tests run, and fail, on it.


def _nearest(
    dist_m: list[list[float]], facilities: pd.DataFrame, targets: list, status: list[str]
) -> pd.DataFrame:
    """Residents x facilities distances -> the distance columns of each tier and category."""
    matrix = np.asarray(dist_m, dtype=float)
    out = pd.DataFrame({"weight": 1.0, "status": status}, index=range(len(matrix)))
    for t in targets:
        mask = target_mask(facilities, t)
        out[t.column] = matrix[:, mask].min(axis=1) if mask.any() else np.inf
    for cat in {t.category for t in targets}:
        mask = (facilities["category"] == cat).to_numpy()
        out[f"dist_{cat}_m"] = matrix[:, mask].min(axis=1) if mask.any() else np.inf
    return out


def test_day_care_does_not_satisfy_the_nursing_home_tier() -> None:
    targets = parse_profile(read_profile_text("shanghai"), categories=("elderly_care",))
    fac = pd.DataFrame({"category": ["elderly_care"] * 2, "subtype": ["day_care", "nursing_home"]})
    # resident 0: a day care 200 m away, the nursing home 5 km away -> NOT covered
    # resident 1: day care 200 m, nursing home 900 m -> covered (5-min and 15-min tiers met)
    # resident 2: nursing home 100 m but the day care 600 m (> 333.3 m) -> NOT covered
    res = _nearest([[200, 5000], [200, 900], [600, 100]], fac, targets, ["ok"] * 3)
    assert covered_frame(res, targets)["elderly_care"].tolist() == [False, True, False]


def test_care_home_satisfies_the_nursing_home_tier() -> None:
    targets = parse_profile(read_profile_text("shanghai"), categories=("elderly_care",))
    fac = pd.DataFrame({"category": ["elderly_care"] * 2, "subtype": ["day_care", "care_home"]})
    res = _nearest([[100, 800]], fac, targets, ["ok"])
    assert covered_frame(res, targets)["elderly_care"].tolist() == [True]


def test_hospitals_do_not_satisfy_the_community_health_tier() -> None:
    targets = parse_profile(read_profile_text("shanghai"), categories=("health",))
    fac = pd.DataFrame(
        {"category": ["health"] * 3, "subtype": ["hospital", "clinic", "community_health_centre"]}
    )
    # resident 0: hospital and clinic next door, the community health centre 2 km away
    # resident 1: the community health centre 950 m away
    res = _nearest([[50, 80, 2000], [3000, 3000, 950]], fac, targets, ["ok", "ok"])
    assert covered_frame(res, targets)["health"].tolist() == [False, True]
    # the hospital/clinic tier is reported, not required
    optional = next(t for t in targets if not t.required)
    assert optional.subtypes == ("hospital", "clinic")
    assert res[optional.column].tolist() == [50.0, 3000.0]


def test_walking_speed_converts_every_tier() -> None:
    slow = parse_profile(read_profile_text("shanghai"), speed_kmh=3.0)
    by = {t.column: t.threshold_m for t in slow}
    assert by["dist_school_kindergarten_m"] == pytest.approx(250.0)  # 5 min at 3 km/h
    assert by["dist_school_primary_m"] == pytest.approx(500.0)
    assert by["dist_school_secondary_m"] == pytest.approx(750.0)
    assert by["dist_elderly_care_day_care_m"] == pytest.approx(250.0)
    # a kindergarten 280 m away: met at 4 km/h (333.3 m), not at 3 km/h (250 m)
    fac = pd.DataFrame({"category": ["school"], "subtype": ["primary+secondary"]})
    fac = pd.concat([fac, pd.DataFrame({"category": ["school"], "subtype": ["kindergarten"]})])
    fac = fac.reset_index(drop=True)
    for speed, expected in ((4.0, True), (3.0, False)):
        targets = parse_profile(
            read_profile_text("shanghai"), speed_kmh=speed, categories=("school",)
        )
        res = _nearest([[400, 280]], fac, targets, ["ok"])
        assert covered_frame(res, targets)["school"].tolist() == [expected]


def test_minutes_with_a_tiered_profile_is_refused() -> None:
    with pytest.raises(InputError, match="--minutes 20 does not apply to profile shanghai"):
        load_profile("shanghai", minutes=20)
    # the default minutes pass, and a profile leaving minutes empty takes --minutes
    assert load_profile("shanghai", minutes=15)
    assert {t.minutes for t in load_profile("default", minutes=20)} == {20.0}


def test_unknown_stage_counts_for_no_tier_and_is_reported() -> None:
    targets = parse_profile(read_profile_text("shanghai"), categories=("school",))
    fac = pd.DataFrame(
        {
            "category": ["school"] * 5,
            "subtype": ["school", "primary+secondary", "kindergarten", "school", "school"],
            "reachable": [True, True, True, True, False],
        }
    )
    # a school of unknown stage right next to the resident meets no stage tier
    res = _nearest([[10, 900, 300, 10, 10]], fac, targets, ["ok"])
    assert res["dist_school_primary_m"].tolist() == [900.0]
    assert res["dist_school_secondary_m"].tolist() == [900.0]  # compound serves both tiers
    assert covered_frame(res, targets)["school"].tolist() == [False]
    assert unassigned_facilities(fac, targets) == {"school": {"school": 2}}  # reachable only
    note = format_unassigned(unassigned_facilities(fac, targets), "shanghai")
    assert note is not None
    assert "2 facilities" in note
    assert "unknown stage" in note
    # under the default profile (any school) the same facility counts
    default = parse_profile(read_profile_text("default"), categories=("school",))
    assert unassigned_facilities(fac, default) == {}


def test_culture_tourism_venues_count_by_default_not_under_shanghai() -> None:
    fac = pd.DataFrame(
        {"category": ["culture"] * 3, "subtype": ["tourism_museum", "library", "theatre"]}
    )
    dist = [[100, 2000, 3000], [2000, 900, 3000], [3000, 3000, 950]]
    default = parse_profile(read_profile_text("default"), categories=("culture",))
    res = _nearest(dist, fac, default, ["ok"] * 3)
    assert covered_frame(res, default)["culture"].tolist() == [True, True, True]
    community = next(t for t in default if t.tier == "community")
    assert community.required is False  # the stricter share is reported alongside
    assert res[community.column].tolist() == [2000.0, 900.0, 3000.0]
    shanghai = parse_profile(read_profile_text("shanghai"), categories=("culture",))
    res = _nearest(dist, fac, shanghai, ["ok"] * 3)
    assert covered_frame(res, shanghai)["culture"].tolist() == [False, True, False]


def test_covered_share_by_hand_under_shanghai() -> None:
    """Five weighted residents; the shares are worked out by hand in the comments."""
    targets = parse_profile(read_profile_text("shanghai"), categories=("health", "elderly_care"))
    fac = pd.DataFrame(
        {
            "category": ["health", "health", "elderly_care", "elderly_care"],
            "subtype": ["community_health_centre", "hospital", "day_care", "nursing_home"],
        }
    )
    dist = [
        # chc, hospital, day care, nursing home
        [900, 100, 300, 900],  # w=1: health yes, elderly yes (300 <= 333.3, 900 <= 1000)
        [1100, 100, 100, 100],  # w=2: health no (only the hospital is near), elderly yes
        [500, 500, 400, 500],  # w=3: health yes, elderly no (day care 400 > 333.3)
        [100, 100, 100, 100],  # w=4: island: nothing
        [999, 5000, 333, 1000],  # w=5: health yes, elderly yes (333 <= 333.3; 1000 <= 1000)
    ]
    res = _nearest(dist, fac, targets, ["ok", "ok", "ok", "island", "ok"])
    res["weight"] = [1.0, 2.0, 3.0, 4.0, 5.0]
    covered = covered_frame(res, targets)
    counts = {"health": {"reachable": 2, "total": 2}, "elderly_care": {"reachable": 2, "total": 2}}
    s = summarize_coverage(res, covered, targets, target=0.99, facility_counts=counts)
    # health: weights 1 + 3 + 5 = 9 of 15; elderly care: 1 + 2 + 5 = 8 of 15; both: 1 + 5 = 6
    assert s["categories"]["health"]["coverage"] == pytest.approx(9 / 15, abs=1e-6)
    assert s["categories"]["elderly_care"]["coverage"] == pytest.approx(8 / 15, abs=1e-6)
    assert s["all_categories"]["coverage"] == pytest.approx(6 / 15, abs=1e-6)
    rows = {r["tier"]: r for r in s["categories"]["health"]["thresholds"]}
    # the reported hospital/clinic tier: weights 1 + 2 + 3 = 6 of 15 (island excluded)
    assert rows["hospital_or_clinic"]["coverage"] == pytest.approx(6 / 15, abs=1e-6)
    assert rows["hospital_or_clinic"]["required"] is False
    assert s["categories"]["elderly_care"]["threshold_label"] == (
        "day_care 5 min (333 m), nursing_home 15 min (1000 m)"
    )


def test_describe_thresholds_and_labels() -> None:
    targets = parse_profile(read_profile_text("shanghai"), speed_kmh=3.0)
    rows = describe_thresholds(targets)
    got = [
        (r["category"], r["tier"], "|".join(r["subtypes"]), r["minutes"], r["threshold_m"])
        for r in rows
        if r["required"]
    ]
    assert got == [
        ("school", "kindergarten", "kindergarten", 5.0, 250.0),
        ("school", "primary", "primary", 10.0, 500.0),
        ("school", "secondary", "secondary", 15.0, 750.0),
        ("health", "community_health_centre", "community_health_centre", 15.0, 750.0),
        ("elderly_care", "day_care", "day_care", 5.0, 250.0),
        ("elderly_care", "nursing_home", "nursing_home|care_home", 15.0, 750.0),
        ("culture", "cultural_centre", "community_centre|arts_centre|library", 15.0, 750.0),
    ]
    assert threshold_label(targets) == "tiers of 5-15 min (250-750 m) at 3 km/h"
    assert uniform_threshold_m(targets) is None
    assert uniform_threshold_m(parse_profile(read_profile_text("default"))) == 1000.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("category,subtype,minutes,distance_m,source\nschool,*,,,\n", "old columns"),
        ("category,tier,subtypes,minutes,source\nschool,a,*,x,s\n", "minutes 'x' is not a number"),
        (
            "category,tier,subtypes,minutes,source\nschool,a,*,-5,s\n",
            "minutes must be a finite number > 0",
        ),
        ("category,tier,subtypes,minutes,source\nschool,a,*|primary,,s\n", "or * alone"),
        ("category,tier,subtypes,minutes,source\nschool,a,*,,s\nschool,a,primary,,s\n", "twice"),
        ("category,tier,subtypes,minutes,source\nschool,A b,*,,s\n", "tier name"),
        ("category,tier,subtypes,minutes,required,source\nschool,a,*,,no,s\n", "no required"),
        ("category,tier,subtypes,minutes,required,source\nschool,a,*,,maybe,s\n", "yes or no"),
        ("category,tier,minutes,source\nschool,a,5,s\n", "lacks column(s) subtypes"),
    ],
)
def test_profile_format_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        parse_profile(text, categories=("school",))


def test_tier_naming_an_unproduced_subtype_warns(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "category,tier,subtypes,minutes,source\nschool,stage,primary|kindergarden,10,x\n"
    )
    with pytest.warns(RuntimeWarning, match="kindergarden that no tag rule"):
        targets = load_profile(str(path), categories=("school",), known_subtypes=known_subtypes())
    assert targets[0].subtypes == ("primary", "kindergarden")
    assert "primary+secondary" not in known_subtypes()  # compound subtypes are split
    assert {"primary", "secondary", "kindergarten", "day_care"} <= known_subtypes()
    # the packaged profiles name only produced subtypes (warnings are errors in the tests)
    assert load_profile("default", known_subtypes=known_subtypes())
    assert load_profile("shanghai", known_subtypes=known_subtypes())
