"""Coverage: the weighted share of residents within the threshold, against the target.

A *standard profile* (``lifecircle/data/standards/<name>.csv``, or any CSV
with ``category,tier,subtypes,minutes,required,source``) lists the *tiers*
of each category. A tier names the facility subtypes that satisfy it
(``|``-separated; ``*`` = any facility of the category) and a walking time
in minutes, converted to metres at ``--speed-kmh`` (an empty ``minutes``
means the global ``--minutes``). A facility whose compound subtype has a
part in the list satisfies the tier (``primary+secondary`` satisfies both
the primary and the secondary tier). A resident is covered for a category
when *every required* tier of it is met (e.g. a kindergarten within 5
minutes **and** a primary school within 10 **and** a secondary school within
15), and covered for all categories when every category is. Tiers with
``required=no`` are reported (their own coverage) but decide nothing.
A facility that satisfies no required tier of its category (e.g. a generic
``amenity=school`` of unknown stage, subtype ``school``, under a staged
profile) counts for no coverage and is reported (conservative: the stage
decides which tier a school serves, and an unknown stage is not evidence of
any). Residents that are unreachable (too far from any street) or stranded
on a small network island are never covered and are reported separately.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from lifecircle import settings
from lifecircle.checks import read_csv_text
from lifecircle.errors import InputError
from lifecircle.facilities import CATEGORIES, amap_mapping, default_tag_rules, subtype_set
from lifecircle.stats import quantile_fields

PROFILES = settings.PROFILES
DEFAULT_PROFILE = settings.DEFAULT_PROFILE
DEFAULT_MINUTES = settings.DEFAULT_MINUTES
DEFAULT_SPEED_KMH = settings.DEFAULT_SPEED_KMH
DEFAULT_TARGET = settings.DEFAULT_TARGET
ANY_SUBTYPE = "*"
STATUS_OK = "ok"
STATUS_UNREACHABLE = "unreachable"
STATUS_ISLAND = "island"
PROFILE_COLUMNS = ("category", "tier", "subtypes", "minutes", "source")
_TIER_NAME = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class Target:
    """One tier: facilities of `category` with one of `subtypes` within `minutes` of walking.

    Examples
    --------
    >>> t = Target("school", "primary", ("primary",), 5.0, 4.0, "GB 50180-2018")
    >>> round(t.threshold_m, 1), t.column, t.serves("primary+secondary"), t.serves("school")
    (333.3, 'dist_school_primary_m', True, False)
    """

    category: str
    tier: str
    subtypes: tuple[str, ...]
    minutes: float
    speed_kmh: float
    source: str
    required: bool = True

    @property
    def threshold_m(self) -> float:
        """Walking distance of the tier: `minutes` at `speed_kmh`, in metres."""
        return threshold_from(self.minutes, self.speed_kmh)

    @property
    def any_subtype(self) -> bool:
        """True when any facility of the category satisfies the tier (``*``)."""
        return self.subtypes == (ANY_SUBTYPE,)

    @property
    def column(self) -> str:
        """Distance column name, e.g. ``dist_school_m`` (``*``) or ``dist_school_primary_m``."""
        return distance_column(self.category, None if self.any_subtype else self.tier)

    def serves(self, subtype: str) -> bool:
        """Whether a facility of this category and `subtype` satisfies the tier."""
        return self.any_subtype or bool(subtype_set(subtype) & set(self.subtypes))


def distance_column(category: str, tier: str | None = None) -> str:
    """Build the distance column name for a category (and optional tier).

    Examples
    --------
    >>> distance_column("school"), distance_column("school", "primary")
    ('dist_school_m', 'dist_school_primary_m')
    """
    return f"dist_{category}_m" if tier is None else f"dist_{category}_{tier}_m"


def threshold_from(minutes: float, speed_kmh: float) -> float:
    """Convert minutes at a walking speed to metres.

    Examples
    --------
    >>> threshold_from(15, 4.0), round(threshold_from(5, 4.0), 1), threshold_from(5, 3.0)
    (1000.0, 333.3, 250.0)
    """
    if not (np.isfinite(minutes) and minutes > 0):
        msg = f"--minutes must be a finite number > 0, got {minutes}"
        raise InputError(msg)
    if not (np.isfinite(speed_kmh) and speed_kmh > 0):
        msg = f"--speed-kmh must be a finite number > 0, got {speed_kmh}"
        raise InputError(msg)
    return minutes * speed_kmh * 1000.0 / 60.0


def check_target(target: float) -> float:
    """Check that a coverage target lies in (0, 1]."""
    if not 0 < target <= 1:
        msg = f"--target must be in (0, 1], got {target} (0.99 means 99%)"
        raise InputError(msg)
    return target


def read_profile_text(name_or_path: str) -> str:
    """Return the CSV text of a packaged profile name or a profile file path."""
    if name_or_path in PROFILES:
        return (
            resources.files("lifecircle")
            .joinpath(f"data/standards/{name_or_path}.csv")
            .read_text("utf-8")
        )
    path = Path(name_or_path)
    if not path.is_file():
        msg = f"unknown standard profile {name_or_path!r}: use {', '.join(PROFILES)} or a CSV file"
        raise InputError(msg)
    try:
        return path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read standard profile {path} ({exc}): give a UTF-8 CSV file"
        raise InputError(msg) from None


def _profile_table(text: str) -> pd.DataFrame:
    table = read_csv_text(text, what="standard profile (--profile)")
    if "tier" not in table.columns and "subtype" in table.columns:
        msg = (
            "standard profile uses the old columns category,subtype,minutes,distance_m: "
            "rewrite it as category,tier,subtypes,minutes,required,source "
            "(see lifecircle/data/standards/shanghai.csv)"
        )
        raise InputError(msg)
    missing = [c for c in PROFILE_COLUMNS if c not in table.columns]
    if missing:
        msg = f"standard profile lacks column(s) {', '.join(missing)}: it needs " + ",".join(
            (*PROFILE_COLUMNS[:4], "required", "source")
        )
        raise InputError(msg)
    return table


def _parse_row(row: dict[str, str], minutes: float, speed_kmh: float) -> tuple[Target, bool]:
    """Return the row's tier and whether it fixes its own minutes."""
    cat, tier = row["category"].strip(), row["tier"].strip()
    where = f"standard profile, tier {cat}/{tier or '?'}"
    if not _TIER_NAME.match(tier):
        msg = f"{where}: tier name must be lower-case letters, digits or _ (e.g. primary)"
        raise InputError(msg)
    subtypes = tuple(s.strip() for s in row["subtypes"].split("|") if s.strip())
    if not subtypes or (ANY_SUBTYPE in subtypes and len(subtypes) > 1):
        msg = f"{where}: subtypes must be a |-separated list of facility subtypes, or * alone"
        raise InputError(msg)
    text = row["minutes"].strip()
    try:
        mins = float(text) if text else minutes
    except ValueError:
        msg = f"{where}: minutes {text!r} is not a number"
        raise InputError(msg) from None
    if not (math.isfinite(mins) and mins > 0):
        msg = f"{where}: minutes must be a finite number > 0, got {text or mins}"
        raise InputError(msg)
    flag = row.get("required", "").strip().lower()
    if flag not in {"", "yes", "no", "true", "false", "1", "0"}:
        msg = f"{where}: required must be yes or no, got {flag!r}"
        raise InputError(msg)
    required = flag not in {"no", "false", "0"}
    source = row["source"].strip()
    target = Target(cat, tier, subtypes, float(mins), float(speed_kmh), source, required)
    return target, bool(text)


def parse_profile(
    text: str,
    *,
    minutes: float = DEFAULT_MINUTES,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    categories: tuple[str, ...] = CATEGORIES,
    name: str = "profile",
) -> list[Target]:
    """Parse a standard profile into the tiers of the chosen categories.

    Every tier's minutes convert to metres at `speed_kmh`. A row with an
    empty ``minutes`` takes the global `minutes`; a category missing from
    the profile gets one tier, any facility within the global `minutes`.

    Raises
    ------
    InputError
        On a malformed profile, and when `minutes` differs from
        :data:`DEFAULT_MINUTES` while a chosen tier fixes its own minutes
        (``--minutes`` would be silently ignored there).

    Examples
    --------
    >>> [round(t.threshold_m) for t in parse_profile(read_profile_text("shanghai"))][:3]
    [333, 667, 1000]
    >>> [t.threshold_m for t in parse_profile(read_profile_text("shanghai"), speed_kmh=3)][:3]
    [250.0, 500.0, 750.0]
    """
    threshold_from(minutes, speed_kmh)
    targets: list[Target] = []
    fixed: list[Target] = []
    for row in _profile_table(text).to_dict("records"):
        cat = str(row["category"]).strip()
        if cat not in CATEGORIES:
            msg = f"standard profile: unknown category {cat!r}: use one of {', '.join(CATEGORIES)}"
            raise InputError(msg)
        if cat not in categories:
            continue
        target, own_minutes = _parse_row(
            {str(k): str(v) for k, v in row.items()}, minutes, speed_kmh
        )
        if any((t.category, t.tier) == (cat, target.tier) for t in targets):
            msg = f"standard profile: tier {cat}/{target.tier} appears twice: rename one"
            raise InputError(msg)
        targets.append(target)
        if own_minutes:
            fixed.append(target)
    if fixed and abs(minutes - DEFAULT_MINUTES) > 1e-9:
        tiers = ", ".join(f"{t.category}/{t.tier} {t.minutes:g}" for t in fixed)
        msg = (
            f"--minutes {minutes:g} does not apply to profile {name}, whose tiers fix their own "
            f"minutes ({tiers}): drop --minutes, or use --profile default or a profile with "
            "empty minutes"
        )
        raise InputError(msg)
    for cat in categories:
        tiers_of = [t for t in targets if t.category == cat]
        if not tiers_of:
            source = "global threshold (--minutes at --speed-kmh; category not in the profile)"
            targets.append(
                Target(cat, "any", (ANY_SUBTYPE,), float(minutes), float(speed_kmh), source)
            )
        elif not any(t.required for t in tiers_of):
            msg = f"standard profile: category {cat} has no required tier: mark one required=yes"
            raise InputError(msg)
    return targets


def load_profile(
    name_or_path: str,
    *,
    minutes: float = DEFAULT_MINUTES,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    categories: tuple[str, ...] = CATEGORIES,
    known_subtypes: set[str] | None = None,
) -> list[Target]:
    """Read and parse a profile; warn about required tiers' subtypes no rule produces.

    Optional tiers (``required=no``) are not checked: they decide nothing, and
    their row in ``coverage.json`` shows what they found.

    Parameters
    ----------
    name_or_path
        ``default``, ``shanghai`` or a profile CSV file.
    minutes, speed_kmh, categories
        As for :func:`parse_profile`.
    known_subtypes
        Subtypes the facility rules can produce (see :func:`known_subtypes`);
        None skips the check.
    """
    targets = parse_profile(
        read_profile_text(name_or_path),
        minutes=minutes,
        speed_kmh=speed_kmh,
        categories=categories,
        name=name_or_path,
    )
    if known_subtypes is not None:
        for t in (t for t in targets if t.required):
            unknown = [s for s in t.subtypes if s != ANY_SUBTYPE and s not in known_subtypes]
            if unknown:
                msg = (
                    f"profile {name_or_path}: tier {t.category}/{t.tier} names subtype(s) "
                    f"{', '.join(unknown)} that no tag rule or POI mapping produces; only "
                    "facilities added with that subtype can meet it"
                )
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return targets


def known_subtypes(facilities: pd.DataFrame | None = None) -> set[str]:
    """Subtypes the packaged tag table and POI mapping produce, plus those in `facilities`."""
    found = {r.subtype for r in default_tag_rules()}
    found |= {rule.subtype for rule in amap_mapping().rules}
    if facilities is not None and "subtype" in facilities:
        found |= set(facilities["subtype"].astype(str))
    return set().union(*(subtype_set(s) for s in found))


def describe_thresholds(targets: list[Target]) -> list[dict[str, Any]]:
    """Describe the thresholds actually applied, one JSON-ready entry per tier.

    Examples
    --------
    >>> row = describe_thresholds(parse_profile(read_profile_text("shanghai"), speed_kmh=3))[0]
    >>> {k: v for k, v in row.items() if k != "source"}  # doctest: +NORMALIZE_WHITESPACE
    {'category': 'school', 'tier': 'kindergarten', 'subtypes': ['kindergarten'],
     'minutes': 5.0, 'speed_kmh': 3.0, 'threshold_m': 250.0, 'required': True}
    """
    return [
        {
            "category": t.category,
            "tier": t.tier,
            "subtypes": list(t.subtypes),
            "minutes": t.minutes,
            "speed_kmh": t.speed_kmh,
            "threshold_m": round(t.threshold_m, 1),
            "required": t.required,
            "source": t.source,
        }
        for t in targets
    ]


def _span(targets: list[Target]) -> str:
    mins = sorted({t.minutes for t in targets})
    metres = sorted({round(t.threshold_m) for t in targets})
    if len(mins) == 1:
        return f"{mins[0]:g} min ({metres[0]:g} m)"
    return f"{mins[0]:g}-{mins[-1]:g} min ({metres[0]:g}-{metres[-1]:g} m)"


def threshold_label(targets: list[Target], category: str | None = None) -> str:
    """Label the required thresholds briefly (of all categories, or of one).

    Examples
    --------
    >>> threshold_label(parse_profile(read_profile_text("default")))
    '15 min (1000 m) at 4 km/h'
    >>> threshold_label(parse_profile(read_profile_text("shanghai")))
    'tiers of 5-15 min (333-1000 m) at 4 km/h'
    >>> threshold_label(parse_profile(read_profile_text("shanghai")), "elderly_care")
    'day_care 5 min (333 m), nursing_home 15 min (1000 m)'
    """
    req = [t for t in targets if t.required and category in (None, t.category)]
    if not req:
        return "no threshold"
    if category is not None:
        return ", ".join(_span([t]) if t.any_subtype else f"{t.tier} {_span([t])}" for t in req)
    speed = f" at {req[0].speed_kmh:g} km/h"
    tiered = len({t.minutes for t in req}) > 1
    return ("tiers of " if tiered else "") + _span(req) + speed


def uniform_threshold_m(targets: list[Target]) -> float | None:
    """Return the one threshold of every required tier, or None when tiers differ."""
    values = {round(t.threshold_m, 6) for t in targets if t.required}
    return values.pop() if len(values) == 1 else None


def facility_thresholds(facilities: pd.DataFrame, targets: list[Target]) -> npt.NDArray[np.float64]:
    """Each facility's walking threshold: the largest of the required tiers it satisfies.

    NaN for a facility that satisfies no required tier (it counts for nothing).
    """
    out = np.full(len(facilities), np.nan)
    cats = facilities["category"].to_numpy()
    subs = facilities["subtype"].astype(str).to_numpy()
    for i, (cat, sub) in enumerate(zip(cats, subs, strict=True)):
        values = [
            t.threshold_m for t in targets if t.required and t.category == cat and t.serves(sub)
        ]
        if values:
            out[i] = max(values)
    return out


def unassigned_facilities(
    facilities: pd.DataFrame, targets: list[Target]
) -> dict[str, dict[str, int]]:
    """Facilities of the profile's categories that satisfy no tier at all, by subtype.

    They count for no coverage and appear in no tier's row. (Facilities of an
    optional tier only, e.g. hospitals under ``shanghai``, are reported by
    that tier's row instead.) With a boolean ``reachable`` column, only
    reachable facilities are counted.

    Examples
    --------
    >>> fac = pd.DataFrame({"category": ["school"] * 3, "subtype": ["school", "primary", "school"]})
    >>> tiers = parse_profile(read_profile_text("shanghai"), categories=("school",))
    >>> unassigned_facilities(fac, tiers)
    {'school': {'school': 2}}
    """
    if "reachable" in facilities:
        facilities = facilities.loc[facilities["reachable"].to_numpy(dtype=bool)]
    out: dict[str, dict[str, int]] = {}
    for cat in dict.fromkeys(t.category for t in targets):
        tiers = [t for t in targets if t.category == cat]
        subs = facilities.loc[facilities["category"].to_numpy() == cat, "subtype"].astype(str)
        left = subs[[not any(t.serves(s) for t in tiers) for s in subs]]
        if len(left):
            out[cat] = {str(k): int(v) for k, v in left.value_counts().sort_index().items()}
    return out


def format_unassigned(unassigned: dict[str, dict[str, int]], profile: str) -> str | None:
    """Return one warning line for facilities in no tier (None when there are none).

    Examples
    --------
    >>> print(format_unassigned({"school": {"school": 2}, "culture": {"museum": 1}}, "x"))
    ... # doctest: +NORMALIZE_WHITESPACE
    profile x: 3 facilities satisfy no tier and count for no coverage:
    school of unknown stage (subtype school) 2, culture museum 1
    """
    parts = []
    for cat, counts in unassigned.items():
        for sub, n in counts.items():
            kind = "stage" if cat == "school" else "subtype"
            label = f"{cat} of unknown {kind} (subtype {sub})" if sub == cat else f"{cat} {sub}"
            parts.append(f"{label} {n}")
    if not parts:
        return None
    total = sum(sum(c.values()) for c in unassigned.values())
    return (
        f"profile {profile}: {total} facilities satisfy no tier and count for no coverage: "
        + ", ".join(parts)
    )


def check_categories(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validate category names (order kept as in :data:`CATEGORIES`)."""
    unknown = [n for n in names if n not in CATEGORIES]
    if unknown:
        msg = f"unknown category {unknown[0]!r}: use one of {', '.join(CATEGORIES)}"
        raise InputError(msg)
    return tuple(c for c in CATEGORIES if c in names)


def target_mask(facilities: pd.DataFrame, target: Target) -> npt.NDArray[np.bool_]:
    """Return which facilities satisfy a tier (subtype ``primary+secondary`` serves both).

    Examples
    --------
    >>> fac = pd.DataFrame({"category": ["school"] * 3, "subtype": ["primary+secondary", "school",
    ...     "primary"]})
    >>> t = Target("school", "secondary", ("secondary",), 15.0, 4.0, "")
    >>> target_mask(fac, t).tolist()
    [True, False, False]
    """
    in_cat = facilities["category"].to_numpy() == target.category
    subs = facilities["subtype"].astype(str).to_numpy()
    wanted = np.array([target.serves(s) for s in subs], dtype=bool)
    return np.asarray(in_cat & wanted, dtype=bool)


def covered_frame(residents: pd.DataFrame, targets: list[Target]) -> pd.DataFrame:
    """Return boolean coverage per category and ``all_categories``, aligned to residents.

    A category is met when every *required* tier is. `residents` needs the
    tiers' distance columns and a ``status`` column.
    """
    ok = residents["status"].to_numpy() == STATUS_OK
    out = {}
    for cat in dict.fromkeys(t.category for t in targets):
        met = ok.copy()
        for t in targets:
            if t.category == cat and t.required:
                met &= residents[t.column].to_numpy(dtype=float) <= t.threshold_m
        out[cat] = met
    frame = pd.DataFrame(out, index=residents.index)
    frame["all_categories"] = frame.all(axis=1) if len(out) else False
    return frame


def weighted_share(mask: npt.NDArray[np.bool_], weights: npt.NDArray[np.float64]) -> float:
    """Return the weighted share of True in `mask` (NaN when the weights sum to 0).

    Examples
    --------
    >>> import numpy as np
    >>> weighted_share(np.array([True, False]), np.array([3.0, 1.0]))
    0.75
    """
    total = float(weights.sum())
    return float(weights[mask].sum()) / total if total > 0 else float("nan")


def _verdict(share: float, target: float) -> dict[str, Any]:
    if not np.isfinite(share):
        return {"coverage": None, "meets_target": None, "gap_points": None}
    return {
        "coverage": round(share, 6),
        "meets_target": bool(share >= target - 1e-12),
        "gap_points": round(max(0.0, target - share) * 100, 3),
    }


def _quantiles(dist: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> dict[str, Any]:
    return {
        **quantile_fields(dist, weights, 0.5, "median_distance_m"),
        **quantile_fields(dist, weights, 0.9, "p90_distance_m"),
    }


def _category_quantiles(
    residents: pd.DataFrame, targets: list[Target], category: str, weights: npt.NDArray[np.float64]
) -> dict[str, Any]:
    """Median and p90 of the distance that decides the category's coverage.

    With one required tier, its facilities' distance; with several (a tiered
    profile), no single distance decides: the fields are null and each tier
    row carries its own.
    """
    required = [t for t in targets if t.category == category and t.required]
    if len(required) == 1:
        return _quantiles(residents[required[0].column].to_numpy(dtype=float), weights)
    return {
        "median_distance_m": None,
        "p90_distance_m": None,
        "distance_note": "several required tiers: see each tier's median and p90",
    }


def summarize_coverage(
    residents: pd.DataFrame,
    covered: pd.DataFrame,
    targets: list[Target],
    *,
    target: float,
    facility_counts: dict[str, dict[str, int]],
    unassigned: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """Summarise coverage per category and for all categories.

    Parameters
    ----------
    residents
        Residents with ``weight``, ``status`` and distance columns.
    covered
        Output of :func:`covered_frame`.
    targets
        The thresholds.
    target
        Coverage target (e.g. 0.99).
    facility_counts
        Per category: ``{"reachable": n, "total": n}`` facilities.
    unassigned
        Per category, facilities that satisfy no tier, by subtype
        (see :func:`unassigned_facilities`).

    Returns
    -------
    dict
        ``categories`` and ``all_categories`` sections of ``coverage.json``.
    """
    w = residents["weight"].to_numpy(dtype=float)
    status_ok = residents["status"].to_numpy() == STATUS_OK  # once: 500k strings to compare
    categories: dict[str, Any] = {}
    for cat in [c for c in covered.columns if c != "all_categories"]:
        mask = covered[cat].to_numpy()
        rows = []
        for t, described in zip(targets, describe_thresholds(targets), strict=True):
            if t.category != cat:
                continue
            met = (residents[t.column].to_numpy(dtype=float) <= t.threshold_m) & status_ok
            tier_share = weighted_share(met, w)
            rows.append(
                {
                    **described,
                    "coverage": round(tier_share, 6) if w.sum() > 0 else None,
                    **_quantiles(residents[t.column].to_numpy(dtype=float), w),
                }
            )
        counts = facility_counts.get(cat, {})
        categories[cat] = {
            **_verdict(weighted_share(mask, w), target),
            "facilities": int(counts.get("reachable", 0)),
            "facilities_total": int(counts.get("total", 0)),
            "facilities_in_no_tier": (unassigned or {}).get(cat, {}),
            "residents_left_out": round(float(w[~mask].sum()), 3),
            **_people(residents, mask),
            **_category_quantiles(residents, targets, cat, w),
            "threshold_label": threshold_label(targets, cat),
            "thresholds": rows,
        }
    all_mask = covered["all_categories"].to_numpy()
    return {
        "categories": categories,
        "all_categories": {
            **_verdict(weighted_share(all_mask, w), target),
            "residents_left_out": round(float(w[~all_mask].sum()), 3),
            **_people(residents, all_mask),
        },
    }


def _people(residents: pd.DataFrame, mask: npt.NDArray[np.bool_]) -> dict[str, float | None]:
    """Estimated residents covered and left out (``persons`` column; None when unknown).

    ``residents_left_out`` beside them is in the unit of the weight (floor area, points...).
    """
    if "persons" not in residents:
        return {"estimated_residents_covered": None, "estimated_residents_left_out": None}
    p = residents["persons"].to_numpy(dtype=float)
    if not np.isfinite(p).all():
        return {"estimated_residents_covered": None, "estimated_residents_left_out": None}
    return {
        "estimated_residents_covered": round(float(p[mask].sum()), 1),
        "estimated_residents_left_out": round(float(p[~mask].sum()), 1),
    }


def coverage_by_zone(
    residents: pd.DataFrame, covered: pd.DataFrame, labels: pd.Series, *, target: float
) -> list[dict[str, Any]]:
    """Return coverage per zone label (residents with a NaN label are left out).

    Returns
    -------
    list of dict
        One entry per zone: ``zone``, ``weight`` (the residents' weight),
        ``estimated_residents`` (sum of ``persons``; None without that
        column or when unknown), and per category plus ``all_categories``
        the coverage and the gap.
    """
    w = residents["weight"].to_numpy(dtype=float)
    persons = (
        residents["persons"].to_numpy(dtype=float)
        if "persons" in residents
        else np.full(len(w), np.nan)
    )
    out = []
    lab = labels.reindex(residents.index)
    # one pass over the labels (first-appearance order, NaN left out) instead of one
    # comparison of 500k strings per zone
    codes, zones = pd.factorize(lab, use_na_sentinel=True)
    for k, zone in enumerate(zones):
        sel = codes == k
        people = float(persons[sel].sum())
        entry: dict[str, Any] = {
            "zone": str(zone),
            "weight": round(float(w[sel].sum()), 3),
            "estimated_residents": round(people, 1) if np.isfinite(people) else None,
        }
        for col in covered.columns:
            share = weighted_share(covered[col].to_numpy()[sel], w[sel])
            entry[col] = _verdict(share, target)
        out.append(entry)
    return out


def ring_labels(distance_km: npt.NDArray[np.float64], edges_km: tuple[float, ...]) -> pd.Series:
    """Label distances with rings ``"a-b km"``, and ``"b+ km"`` beyond the last edge.

    The open outer ring makes the rings cover every resident (issue 12): a city larger
    than the rings (e.g. 90 km across, rings to 25 km) used to leave most residents in no
    ring, so the ring table, the gradient and the gap-cluster zones ignored them. Only
    distances below the first edge (when it is above 0) stay unlabelled (NaN).

    Examples
    --------
    >>> import numpy as np
    >>> ring_labels(np.array([1.0, 4.0, 30.0]), (0, 3, 6, 10)).tolist()
    ['0-3 km', '3-6 km', '10+ km']
    """
    edges = np.asarray(edges_km, dtype=float)
    if len(edges) < 2 or np.any(np.diff(edges) <= 0):
        msg = f"ring edges must be increasing, got {list(edges_km)}"
        raise InputError(msg)
    idx = np.searchsorted(edges, distance_km, side="right") - 1
    names = [f"{edges[i]:g}-{edges[i + 1]:g} km" for i in range(len(edges) - 1)]
    names.append(f"{edges[-1]:g}+ km")  # open outer ring: beyond the last edge
    table = np.array([*names, np.nan], dtype=object)  # the last entry: no ring
    return pd.Series(
        table[np.where((idx >= 0) & (idx < len(names)), idx, len(names))], dtype=object
    )
