"""Coverage: the weighted share of residents within the threshold, against the target.

A *standard profile* (``lifecircle/data/standards/<name>.csv`` or any CSV
with ``category,subtype,minutes,distance_m,source``) lists the walking
thresholds. A ``*`` subtype means every facility of the category; an empty
threshold means the global one (``--minutes`` at ``--speed-kmh``). A
resident is covered for a category when *every* row of that category is met
(e.g. a kindergarten within 300 m **and** a primary school within 500 m
**and** a secondary school within 1,000 m), and covered for all categories
when every category is. Residents that are unreachable (too far from any
street) or stranded on a small network island are never covered and are
reported separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from lifecircle.errors import InputError
from lifecircle.facilities import CATEGORIES, subtype_set
from lifecircle.stats import quantile_fields

PROFILES: tuple[str, ...] = ("default", "shanghai")
DEFAULT_MINUTES = 15.0
DEFAULT_SPEED_KMH = 4.0
DEFAULT_TARGET = 0.99
STATUS_OK = "ok"
STATUS_UNREACHABLE = "unreachable"
STATUS_ISLAND = "island"


@dataclass(frozen=True)
class Target:
    """One threshold: facilities of `category` (and `subtype`, or ``*``) within `threshold_m`."""

    category: str
    subtype: str
    threshold_m: float
    source: str

    @property
    def column(self) -> str:
        """Distance column name, e.g. ``dist_school_m`` or ``dist_school_kindergarten_m``."""
        return distance_column(self.category, None if self.subtype == "*" else self.subtype)


def distance_column(category: str, subtype: str | None = None) -> str:
    """Build the distance column name for a category (and optional subtype).

    Examples
    --------
    >>> distance_column("school"), distance_column("school", "primary")
    ('dist_school_m', 'dist_school_primary_m')
    """
    return f"dist_{category}_m" if subtype is None else f"dist_{category}_{subtype}_m"


def threshold_from(minutes: float, speed_kmh: float) -> float:
    """Convert minutes at a walking speed to metres.

    Examples
    --------
    >>> threshold_from(15, 4.0)
    1000.0
    """
    if minutes <= 0:
        msg = f"--minutes must be > 0, got {minutes}"
        raise InputError(msg)
    if speed_kmh <= 0:
        msg = f"--speed-kmh must be > 0, got {speed_kmh}"
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
    return path.read_text("utf-8")


def parse_profile(
    text: str,
    *,
    minutes: float = DEFAULT_MINUTES,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    categories: tuple[str, ...] = CATEGORIES,
) -> list[Target]:
    """Parse a standard profile into targets for the chosen categories.

    Rows give ``distance_m`` (used as is), else ``minutes`` (at `speed_kmh`),
    else the global threshold (`minutes` at `speed_kmh`). A category missing
    from the profile gets the global threshold.

    Examples
    --------
    >>> [t.threshold_m for t in parse_profile(read_profile_text("default"))]
    [1000.0, 1000.0, 1000.0, 1000.0]
    """
    glob = threshold_from(minutes, speed_kmh)
    table = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
    if not {"category", "subtype"} <= set(table.columns):
        msg = "standard profile needs columns category,subtype,minutes,distance_m,source"
        raise InputError(msg)
    targets = []
    for row in table.to_dict("records"):
        cat = row["category"].strip()
        if cat not in CATEGORIES:
            msg = f"standard profile: unknown category {cat!r}: use one of {', '.join(CATEGORIES)}"
            raise InputError(msg)
        if cat not in categories:
            continue
        dist, mins = row.get("distance_m", "").strip(), row.get("minutes", "").strip()
        threshold = (
            float(dist) if dist else threshold_from(float(mins), speed_kmh) if mins else glob
        )
        if threshold <= 0:
            msg = f"standard profile: threshold for {cat}/{row['subtype']} must be > 0"
            raise InputError(msg)
        targets.append(
            Target(cat, row["subtype"].strip() or "*", threshold, row.get("source", "").strip())
        )
    for cat in categories:
        if not any(t.category == cat for t in targets):
            targets.append(Target(cat, "*", glob, "global threshold (category not in the profile)"))
    return targets


def check_categories(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validate category names (order kept as in :data:`CATEGORIES`)."""
    unknown = [n for n in names if n not in CATEGORIES]
    if unknown:
        msg = f"unknown category {unknown[0]!r}: use one of {', '.join(CATEGORIES)}"
        raise InputError(msg)
    return tuple(c for c in CATEGORIES if c in names)


def target_mask(facilities: pd.DataFrame, target: Target) -> npt.NDArray[np.bool_]:
    """Return which facilities serve a target (subtype ``primary+secondary`` serves both)."""
    in_cat = facilities["category"].to_numpy() == target.category
    if target.subtype == "*":
        return np.asarray(in_cat, dtype=bool)
    subs = facilities["subtype"].astype(str).to_numpy()
    wanted = np.array([target.subtype in subtype_set(s) for s in subs], dtype=bool)
    return np.asarray(in_cat & wanted, dtype=bool)


def covered_frame(residents: pd.DataFrame, targets: list[Target]) -> pd.DataFrame:
    """Return boolean coverage per category and ``all_categories``, aligned to residents.

    `residents` needs the targets' distance columns and a ``status`` column.
    """
    ok = residents["status"].to_numpy() == STATUS_OK
    out = {}
    for cat in dict.fromkeys(t.category for t in targets):
        met = ok.copy()
        for t in targets:
            if t.category == cat:
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


def summarize_coverage(
    residents: pd.DataFrame,
    covered: pd.DataFrame,
    targets: list[Target],
    *,
    target: float,
    facility_counts: dict[str, dict[str, int]],
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

    Returns
    -------
    dict
        ``categories`` and ``all_categories`` sections of ``coverage.json``.
    """
    w = residents["weight"].to_numpy(dtype=float)
    categories: dict[str, Any] = {}
    for cat in [c for c in covered.columns if c != "all_categories"]:
        mask = covered[cat].to_numpy()
        share = weighted_share(mask, w)
        rows = []
        for t in targets:
            if t.category != cat:
                continue
            met = (residents[t.column].to_numpy(dtype=float) <= t.threshold_m) & (
                residents["status"].to_numpy() == STATUS_OK
            )
            rows.append(
                {
                    "subtype": t.subtype,
                    "threshold_m": round(t.threshold_m, 1),
                    "source": t.source,
                    "coverage": round(weighted_share(met, w), 6) if w.sum() > 0 else None,
                }
            )
        counts = facility_counts.get(cat, {})
        categories[cat] = {
            **_verdict(share, target),
            "facilities": int(counts.get("reachable", 0)),
            "facilities_total": int(counts.get("total", 0)),
            "residents_left_out": round(float(w[~mask].sum()), 3),
            **_quantiles(residents[distance_column(cat)].to_numpy(dtype=float), w),
            "thresholds": rows,
        }
    all_mask = covered["all_categories"].to_numpy()
    return {
        "categories": categories,
        "all_categories": {
            **_verdict(weighted_share(all_mask, w), target),
            "residents_left_out": round(float(w[~all_mask].sum()), 3),
        },
    }


def coverage_by_zone(
    residents: pd.DataFrame, covered: pd.DataFrame, labels: pd.Series, *, target: float
) -> list[dict[str, Any]]:
    """Return coverage per zone label (residents with a NaN label are left out).

    Returns
    -------
    list of dict
        One entry per zone: ``zone``, ``residents`` (weight), and per
        category plus ``all_categories`` the coverage and the gap.
    """
    w = residents["weight"].to_numpy(dtype=float)
    out = []
    lab = labels.reindex(residents.index)
    for zone in list(pd.unique(lab.dropna())):
        sel = (lab == zone).to_numpy()
        entry: dict[str, Any] = {"zone": str(zone), "residents": round(float(w[sel].sum()), 3)}
        for col in covered.columns:
            share = weighted_share(covered[col].to_numpy()[sel], w[sel])
            entry[col] = _verdict(share, target)
        out.append(entry)
    return out


def ring_labels(distance_km: npt.NDArray[np.float64], edges_km: tuple[float, ...]) -> pd.Series:
    """Label distances with rings ``"a-b km"``; beyond the last edge: NaN.

    Examples
    --------
    >>> import numpy as np
    >>> ring_labels(np.array([1.0, 4.0, 30.0]), (0, 3, 6, 10)).tolist()
    ['0-3 km', '3-6 km', nan]
    """
    edges = np.asarray(edges_km, dtype=float)
    if len(edges) < 2 or np.any(np.diff(edges) <= 0):
        msg = f"ring edges must be increasing, got {list(edges_km)}"
        raise InputError(msg)
    idx = np.searchsorted(edges, distance_km, side="right") - 1
    names = [f"{edges[i]:g}-{edges[i + 1]:g} km" for i in range(len(edges) - 1)]
    labels = [names[i] if 0 <= i < len(names) else np.nan for i in idx]
    return pd.Series(labels, dtype=object)
