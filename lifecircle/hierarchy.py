"""The settlement hierarchy: central city, suburban cores, remote areas, and the paper's test.

The study behind lifecircle claims that in Pudong facility access is higher
in the central city (中心城区) than in the suburbs, and that in the suburbs
the town cores and their surroundings (郊区核心) beat the remote areas
(边远地区). This module gives every resident one of three tiers and tests
``central >= suburban core >= remote`` per facility category. Everything
here is pure: arrays and frames in, arrays, frames and dicts out.

Tiers (:func:`assign_tiers`)
    *central*: inside the central city: by default the 街道 sub-districts
    (statistical unit codes whose town-level block is ``001-099``), or a
    polygon the user gives (``--central FILE``, e.g. the area inside the
    Outer Ring Road), which then replaces the sub-district rule.
    *suburban_core*: not central, and in an urban centre or urban cluster of
    the Degree of Urbanisation grid (below), or within ``centre_radius_m``
    of a given town seat (``--centres FILE``) or of an OSM
    ``place=town|suburb|village`` node (``--osm-places``, online).
    *remote*: everything else.

Degree of Urbanisation (:func:`degurba_classes`)
    Stage 1 (grid) of the method of European Commission and UN Statistical
    Commission (2020), *A recommendation on the method to delineate cities,
    urban and rural areas for international statistical comparisons*
    (endorsed by the UN Statistical Commission, 51st session, March 2020):
    square cells of ``cell_m`` (1 km) aligned to the metric CRS's
    multiples of ``cell_m``, holding the estimated persons of the resident
    points inside them. An **urban centre** is a group of contiguous cells
    (4-connectivity: shared edges only) of at least ``centre_density``
    (1,500) inhabitants per km² with a total of at least
    ``centre_min_persons`` (50,000); its gaps are filled and edges smoothed
    by the method's majority rule (``fill_gaps``, on by default: a cell with
    at least 5 of its 8 neighbours in one urban centre joins it, repeated
    until nothing changes). An **urban cluster** is a group of contiguous
    cells (8-connectivity: diagonals too) of at least ``cluster_density``
    (300) per km² with a total of at least ``cluster_min_persons``
    (5,000), not part of an urban centre. Every other cell is rural.

Measures (:func:`tier_measures`)
    Per tier and category: coverage weighted by persons, the weighted median
    and 90th-percentile walking distance (a resident beyond the search
    limit or without any reachable facility counts as an *infinite*
    distance, so a quantile beyond the limit is reported as null with its
    ``*_beyond_search_limit`` flag), the persons left out, and the share of
    administrative units whose residents in the tier have coverage 0 (the
    paper's "the minimum is 0"; a unit spanning two tiers counts in each,
    with its residents in that tier).

The test (:func:`ordering_test`)
    Differences in coverage points (central - core, core - remote, central -
    remote) with 95% percentile bootstrap confidence intervals over
    residents: each bootstrap replicate resamples, within each tier, as many
    resident points as the tier holds, uniformly with replacement, and
    recomputes the persons-weighted coverage of the resample (the estimator
    applied to the resample; ``bootstrap`` replicates, 1,000 by default,
    fixed ``seed``). The resident point (a building) is the resampled unit:
    its persons share one yes/no coverage, so a tier whose persons sit in a
    few large buildings gets a wide interval. (Drawing points with
    probability proportional to persons and counting covered draws, i.e.
    Binomial(n_points, coverage), would treat every person as independent
    and give intervals too narrow whenever persons differ between points.)
    A pair is "higher" when its interval lies above 0, "lower" below 0,
    "equal" when both tiers are identically all-covered or all-uncovered,
    else "undecided"; a pair with a tier of fewer than ``min_tier_points``
    (30) resident points is never "higher" or "lower" (a tier of two
    covered buildings has an interval of zero width). The claim **holds**
    when central-core and core-remote are both higher or equal, **fails**
    when any pair (central-remote too, which the claim implies) is lower,
    and is **undecided (CI includes 0)** otherwise; with a tier holding no
    residents it is **not testable**.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

from lifecircle import settings
from lifecircle.errors import InputError
from lifecircle.i18n import Lang, category_label, text
from lifecircle.stats import distance_quantiles

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

TIERS = ("central", "suburban_core", "remote")
DEGURBA_CLASSES = ("rural", "urban_cluster", "urban_centre")
RURAL, URBAN_CLUSTER, URBAN_CENTRE = 0, 1, 2
PAIRS = (("central", "suburban_core"), ("suburban_core", "remote"), ("central", "remote"))

DEFAULT_CELL_M = settings.DEFAULT_CELL_M
DEFAULT_CENTRE_DENSITY_KM2 = settings.DEFAULT_CENTRE_DENSITY_KM2
DEFAULT_CENTRE_MIN_PERSONS = settings.DEFAULT_CENTRE_MIN_PERSONS
DEFAULT_CLUSTER_DENSITY_KM2 = settings.DEFAULT_CLUSTER_DENSITY_KM2
DEFAULT_CLUSTER_MIN_PERSONS = settings.DEFAULT_CLUSTER_MIN_PERSONS
DEFAULT_CENTRE_RADIUS_M = settings.DEFAULT_CENTRE_RADIUS_M
DEFAULT_BOOTSTRAP = settings.DEFAULT_BOOTSTRAP
DEFAULT_SEED = settings.DEFAULT_SEED
CONFIDENCE = 0.95
DEFAULT_MIN_TIER_POINTS = settings.DEFAULT_MIN_TIER_POINTS  # fewer points: no pair decided
MIN_USUAL_BOOTSTRAP = 200
MAJORITY_NEIGHBOURS = 5
BOOTSTRAP_CHUNK_DRAWS = 4_000_000  # resampled indices held in memory at once
BOOTSTRAP_RESAMPLE_MAX_POINTS = 20_000  # larger tiers: the resampling's normal limit

_FOUR = ndimage.generate_binary_structure(2, 1)
_EIGHT = ndimage.generate_binary_structure(2, 2)


@dataclass(frozen=True)
class HierarchyOptions:
    """Thresholds of the tiers and of the test (recorded in ``gaps.json``)."""

    cell_m: float = DEFAULT_CELL_M
    centre_density_km2: float = DEFAULT_CENTRE_DENSITY_KM2
    centre_min_persons: float = DEFAULT_CENTRE_MIN_PERSONS
    cluster_density_km2: float = DEFAULT_CLUSTER_DENSITY_KM2
    cluster_min_persons: float = DEFAULT_CLUSTER_MIN_PERSONS
    fill_gaps: bool = True
    centre_radius_m: float = DEFAULT_CENTRE_RADIUS_M
    bootstrap: int = DEFAULT_BOOTSTRAP
    seed: int = DEFAULT_SEED
    min_tier_points: int = DEFAULT_MIN_TIER_POINTS


def check_hierarchy_options(opts: HierarchyOptions) -> None:
    """Refuse thresholds that contradict each other (one line naming the fix).

    Examples
    --------
    >>> check_hierarchy_options(HierarchyOptions(cluster_density_km2=2000.0))
    Traceback (most recent call last):
    ...
    lifecircle.errors.InputError: --cluster-density-km2 2000 exceeds --centre-density-km2 1500: an urban cluster's density threshold must not exceed an urban centre's (defaults 300 and 1500)
    """  # noqa: E501
    if opts.cluster_density_km2 > opts.centre_density_km2:
        msg = (
            f"--cluster-density-km2 {opts.cluster_density_km2:g} exceeds --centre-density-km2 "
            f"{opts.centre_density_km2:g}: an urban cluster's density threshold must not exceed "
            "an urban centre's (defaults 300 and 1500)"
        )
        raise InputError(msg)
    if not opts.bootstrap >= 1:
        msg = f"--bootstrap must be >= 1, got {opts.bootstrap}: give a replicate count, e.g. 1000"
        raise InputError(msg)
    if not opts.min_tier_points >= 1:
        msg = (
            f"--min-tier-points must be >= 1, got {opts.min_tier_points}: give a number of "
            "resident points, e.g. 30"
        )
        raise InputError(msg)
    if not opts.seed >= 0:
        msg = f"--seed must be >= 0, got {opts.seed}: give a random seed, e.g. 13"
        raise InputError(msg)
    if opts.bootstrap < MIN_USUAL_BOOTSTRAP:
        msg = (
            f"--bootstrap {opts.bootstrap} is below {MIN_USUAL_BOOTSTRAP}: the 95% intervals "
            "will be unstable; the value is used as given"
        )
        warnings.warn(msg, RuntimeWarning, stacklevel=2)


# --------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class PopulationGrid:
    """Persons per square cell; row i, column j starts at (x0 + j*cell_m, y0 + i*cell_m)."""

    persons: FloatArray
    x0: float
    y0: float
    cell_m: float

    @property
    def cell_km2(self) -> float:
        """Area of one cell in km²."""
        return (self.cell_m / 1000.0) ** 2


MAX_GRID_CELLS = 25_000_000
"""Largest density grid (200 MB of float64): 1 km cells cover 25 million km²."""


def population_grid(
    x_m: FloatArray, y_m: FloatArray, persons: FloatArray, *, cell_m: float = DEFAULT_CELL_M
) -> tuple[PopulationGrid, npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Sum persons into cells aligned to multiples of `cell_m` in the metric CRS.

    Returns
    -------
    grid, row, col
        The grid (one empty cell of margin on every side, so border cells
        have neighbours) and each point's cell.

    Examples
    --------
    >>> g, r, c = population_grid(np.array([10.0, 1500.0]), np.array([10.0, 10.0]),
    ...     np.array([3.0, 4.0]))
    >>> g.persons.shape, float(g.persons.sum()), g.x0, (int(r[1]), int(c[1]))
    ((3, 4), 7.0, -1000.0, (1, 2))
    """
    if not (np.isfinite(cell_m) and cell_m > 0):
        msg = f"cell size must be a positive number of metres, got {cell_m}: the method uses 1000"
        raise InputError(msg)
    if len(x_m) == 0:
        return (
            PopulationGrid(np.zeros((1, 1)), 0.0, 0.0, cell_m),
            np.zeros(0, np.intp),
            np.zeros(0, np.intp),
        )
    ix = np.floor(np.asarray(x_m, dtype=float) / cell_m).astype(np.intp)
    iy = np.floor(np.asarray(y_m, dtype=float) / cell_m).astype(np.intp)
    ix0, iy0 = int(ix.min()) - 1, int(iy.min()) - 1
    col, row = ix - ix0, iy - iy0
    shape = (int(row.max()) + 2, int(col.max()) + 2)
    if shape[0] * shape[1] > MAX_GRID_CELLS:
        msg = (
            f"a {cell_m:g} m grid over this area has {shape[0] * shape[1]:,} cells (more than "
            f"{MAX_GRID_CELLS:,}): use a larger --cell-m (the method uses 1000)"
        )
        raise InputError(msg)
    grid = np.zeros(shape)
    np.add.at(grid, (row, col), np.asarray(persons, dtype=float))
    return PopulationGrid(grid, ix0 * cell_m, iy0 * cell_m, cell_m), row, col


def _clusters(
    mask: BoolArray, persons: FloatArray, structure: npt.NDArray[Any], min_persons: float
) -> npt.NDArray[np.intp]:
    """Label contiguous cells of `mask` and keep the groups holding >= `min_persons` (0 = none)."""
    labels, n = ndimage.label(mask, structure=structure)
    if n == 0:
        return np.asarray(labels, dtype=np.intp)
    totals = np.bincount(labels.ravel(), weights=persons.ravel(), minlength=n + 1)
    keep = totals >= min_persons
    keep[0] = False
    return np.where(keep[labels], labels, 0).astype(np.intp)


def _majority_fill(labels: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Add a cell to an urban centre when >= 5 of its 8 neighbours belong to it, until stable."""
    out = labels.copy()
    kernel = np.ones((3, 3))
    kernel[1, 1] = 0
    while True:
        added = False
        for lab in np.unique(out[out > 0]):
            near = ndimage.convolve((out == lab).astype(float), kernel, mode="constant")
            join = (out == 0) & (near >= MAJORITY_NEIGHBOURS)
            if join.any():
                out[join] = lab
                added = True
        if not added:
            return out


def degurba_classes(grid: PopulationGrid, opts: HierarchyOptions) -> npt.NDArray[np.int8]:
    """Classify every cell: 2 urban centre, 1 urban cluster, 0 rural (DEGURBA stage 1).

    Examples
    --------
    A 2 x 2 block of 20,000 persons per km² cell is an urban centre (80,000);
    the same four cells touching only at corners are not (4-connectivity),
    but they form an urban cluster (8-connectivity):

    >>> p = np.zeros((4, 4)); p[1:3, 1:3] = 20000
    >>> degurba_classes(PopulationGrid(p, 0, 0, 1000), HierarchyOptions())[1:3, 1:3].tolist()
    [[2, 2], [2, 2]]
    >>> p = np.zeros((4, 4)); p[1, 1] = p[2, 2] = 30000
    >>> degurba_classes(PopulationGrid(p, 0, 0, 1000), HierarchyOptions())[1:3, 1:3].tolist()
    [[1, 0], [0, 1]]
    """
    density = grid.persons / grid.cell_km2
    centres = _clusters(
        density >= opts.centre_density_km2, grid.persons, _FOUR, opts.centre_min_persons
    )
    if opts.fill_gaps:
        centres = _majority_fill(centres)
    clusters = _clusters(
        density >= opts.cluster_density_km2, grid.persons, _EIGHT, opts.cluster_min_persons
    )
    out = np.zeros(grid.persons.shape, dtype=np.int8)
    out[clusters > 0] = URBAN_CLUSTER
    out[centres > 0] = URBAN_CENTRE
    return out


def degurba_of_points(
    x_m: FloatArray, y_m: FloatArray, persons: FloatArray, opts: HierarchyOptions
) -> tuple[npt.NDArray[np.object_], PopulationGrid, npt.NDArray[np.int8]]:
    """Return each point's DEGURBA class name, the grid and the class of every cell."""
    grid, row, col = population_grid(x_m, y_m, persons, cell_m=opts.cell_m)
    classes = degurba_classes(grid, opts)
    names = np.array(DEGURBA_CLASSES, dtype=object)[classes[row, col]]
    return names, grid, classes


def assign_tiers(central: BoolArray, core: BoolArray) -> npt.NDArray[np.object_]:
    """Combine the central-city and core masks into tier names (central wins).

    Examples
    --------
    >>> assign_tiers(np.array([True, True, False, False]),
    ...     np.array([True, False, True, False])).tolist()
    ['central', 'central', 'suburban_core', 'remote']
    """
    out = np.full(len(central), "remote", dtype=object)
    out[np.asarray(core, dtype=bool)] = "suburban_core"
    out[np.asarray(central, dtype=bool)] = "central"
    return out


# --------------------------------------------------------------------------- measures


def category_arrays(
    residents: pd.DataFrame, categories: Sequence[str]
) -> tuple[dict[str, BoolArray], dict[str, FloatArray]]:
    """Covered flags and distances per category and ``all_categories`` (farthest category)."""
    covered = {
        c: residents[f"covered_{c}"].to_numpy(dtype=bool) for c in [*categories, "all_categories"]
    }
    dist = {c: residents[f"dist_{c}_m"].to_numpy(dtype=float) for c in categories}
    if dist:
        dist["all_categories"] = np.max(np.column_stack(list(dist.values())), axis=1)
    else:
        dist["all_categories"] = np.full(len(residents), np.inf)
    return covered, dist


def _share(mask: BoolArray, w: FloatArray) -> float:
    total = float(w.sum())
    return float(w[mask].sum()) / total if total > 0 else float("nan")


def _unit_zero(
    units: npt.NDArray[np.object_] | None, sel: BoolArray, covered: BoolArray, w: FloatArray
) -> tuple[int | None, list[str]]:
    """Units holding residents of the selection, and those whose coverage among them is 0."""
    if units is None:
        return None, []
    lab = pd.Series(units[sel]).astype(object)
    known = lab.notna().to_numpy()
    frame = pd.DataFrame(
        {"unit": lab[known].astype(str), "cov": (covered[sel] * w[sel])[known], "w": w[sel][known]}
    )
    sums = frame.groupby("unit", sort=True)[["cov", "w"]].sum()
    zero = sums.index[(sums["cov"] <= 0) & (sums["w"] > 0)]
    return int((sums["w"] > 0).sum()), [str(z) for z in zero]


def tier_measures(
    tiers: npt.NDArray[np.object_],
    persons: FloatArray,
    covered: dict[str, BoolArray],
    distances_m: dict[str, FloatArray],
    *,
    units: npt.NDArray[np.object_] | None = None,
) -> pd.DataFrame:
    """Return coverage, distance quantiles, persons left out and zero-coverage units per tier.

    Parameters
    ----------
    tiers
        Tier name per resident (:data:`TIERS`).
    persons
        Estimated persons per resident point.
    covered, distances_m
        Per category: covered flag and walking distance (``inf`` = beyond the
        search limit or no facility) per resident (:func:`category_arrays`).
    units
        Administrative unit per resident (None/NaN = in no unit), optional.

    Returns
    -------
    DataFrame
        One row per tier (all three, in :data:`TIERS` order) and category:
        ``tier``, ``category``, ``resident_points``, ``persons``,
        ``coverage`` (NaN without residents), ``median_m``,
        ``median_beyond_search_limit``, ``p90_m``, ``p90_beyond_search_limit``,
        ``left_out_persons``, ``units``, ``zero_coverage_units`` (count),
        ``zero_coverage_unit_share`` and ``zero_coverage_unit_names``.
    """
    w = np.asarray(persons, dtype=float)
    rows = []
    for tier in TIERS:
        sel = np.asarray(tiers == tier, dtype=bool)
        ws = w[sel]
        for cat, cov in covered.items():
            c, d = cov[sel], distances_m[cat][sel]
            n_units, zero = _unit_zero(units, sel, cov, w)
            rows.append(
                {
                    "tier": tier,
                    "category": cat,
                    "resident_points": int(sel.sum()),
                    "persons": float(ws.sum()),
                    "coverage": _share(c, ws),
                    **distance_quantiles(d, ws),
                    "left_out_persons": float(ws[~c].sum()),
                    "units": n_units,
                    "zero_coverage_units": None if n_units is None else len(zero),
                    "zero_coverage_unit_share": (
                        len(zero) / n_units if n_units else (None if n_units is None else np.nan)
                    ),
                    "zero_coverage_unit_names": ",".join(zero),
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the test


def bootstrap_coverage(
    covered: BoolArray, persons: FloatArray, *, bootstrap: int, rng: np.random.Generator
) -> FloatArray:
    """Return `bootstrap` replicates of a tier's persons-weighted coverage.

    A replicate draws ``n`` resident points (``n`` = the tier's points)
    uniformly with replacement and takes the persons-weighted share covered
    of the drawn points. A replicate whose drawn points hold no persons is
    NaN (ignored by the percentiles). Above
    :data:`BOOTSTRAP_RESAMPLE_MAX_POINTS` points, resampling costs
    ``bootstrap x n`` draws (567 million for a city tier), and the replicates
    are drawn from the resampling's normal limit instead: mean the tier's
    coverage ``R``, variance ``sum(w^2 (c - R)^2) / sum(w)^2`` (the
    linearised variance of a ratio under resampling, which keeps the weight
    of large buildings).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> bootstrap_coverage(np.array([True, True]), np.ones(2), bootstrap=3, rng=rng).tolist()
    [1.0, 1.0, 1.0]
    """
    c = np.asarray(covered, dtype=bool)
    w = np.asarray(persons, dtype=float)
    n = len(c)
    if n == 0 or not float(w.sum()) > 0:
        return np.full(bootstrap, np.nan)
    if n > BOOTSTRAP_RESAMPLE_MAX_POINTS:
        return normal_replicates(c, w, bootstrap=bootstrap, rng=rng)
    wc = np.where(c, w, 0.0)
    out = np.empty(bootstrap)
    chunk = max(1, BOOTSTRAP_CHUNK_DRAWS // n)
    for start in range(0, bootstrap, chunk):
        size = min(chunk, bootstrap - start)
        idx = rng.integers(0, n, size=(size, n))
        total = w[idx].sum(axis=1)
        hit = wc[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + size] = np.where(total > 0, hit / total, np.nan)
    return out


def normal_replicates(
    covered: BoolArray, persons: FloatArray, *, bootstrap: int, rng: np.random.Generator
) -> FloatArray:
    """Return `bootstrap` draws from the normal limit of the resampled coverage, clipped to [0, 1].

    Examples
    --------
    >>> r = normal_replicates(np.array([True, False]), np.ones(2), bootstrap=4,
    ...                       rng=np.random.default_rng(0))
    >>> bool(((r >= 0) & (r <= 1)).all())
    True
    """
    c = np.asarray(covered, dtype=float)
    w = np.asarray(persons, dtype=float)
    total = float(w.sum())
    share = float((w * c).sum()) / total
    sd = float(np.sqrt(((w * (c - share)) ** 2).sum())) / total
    return np.clip(share + sd * rng.standard_normal(bootstrap), 0.0, 1.0)


def _pair_status(low: float, high: float, a: FloatArray, b: FloatArray, *, small: bool) -> str:
    """Say "higher", "lower", "equal" or "undecided"; a `small` tier is never decided.

    A tier whose few points are all covered (or none) has replicates without
    any spread, so its interval says nothing about its size: two covered
    buildings would otherwise make a "lower" of a 95% core.
    """
    if np.ptp(a) == 0 and np.ptp(b) == 0 and a[0] == b[0] and a[0] in (0.0, 1.0):
        return "equal"
    if small:
        return "undecided"
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    return "undecided"


def _verdict(adjacent: list[str], central_remote: str | None = None) -> str:
    """Return the verdict: any pair lower fails (C >= K >= R implies C >= R)."""
    if "lower" in adjacent or central_remote == "lower":
        return "fails"
    if all(s in ("higher", "equal") for s in adjacent):
        return "holds"
    return "undecided"


def ordering_test(
    tiers: npt.NDArray[np.object_],
    persons: FloatArray,
    covered: dict[str, BoolArray],
    *,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    min_tier_points: int = DEFAULT_MIN_TIER_POINTS,
) -> dict[str, dict[str, Any]]:
    """Test central >= suburban core >= remote per category with bootstrap intervals.

    A pair involving a tier of fewer than `min_tier_points` resident points
    is "undecided" whatever its interval (unless both tiers are identically
    all-covered or all-uncovered: "equal").

    Returns
    -------
    dict
        Per category: ``coverage`` and ``coverage_ci`` per tier (None for a
        tier without residents), ``differences`` (one entry per pair of
        :data:`PAIRS` whose tiers both hold residents: ``pair``,
        ``points``, ``ci_low``, ``ci_high`` in coverage points, ``status``),
        ``empty_tiers`` and ``verdict``: "holds", "fails", "undecided" or
        "not testable".
    """
    w = np.asarray(persons, dtype=float)
    masks = {t: np.asarray(tiers == t, dtype=bool) for t in TIERS}
    empty = [t for t in TIERS if not (w[masks[t]].sum() > 0)]
    alpha = (1 - CONFIDENCE) / 2 * 100
    out: dict[str, dict[str, Any]] = {}
    for k, (cat, cov) in enumerate(covered.items()):
        rng = np.random.default_rng([seed, k])
        reps = {
            t: bootstrap_coverage(cov[m], w[m], bootstrap=bootstrap, rng=rng)
            for t, m in masks.items()
        }
        level = {t: None if t in empty else _share(cov[m], w[m]) for t, m in masks.items()}
        entry: dict[str, Any] = {
            "coverage": level,
            "coverage_ci": {
                t: None
                if t in empty
                else [float(np.nanpercentile(r, alpha)), float(np.nanpercentile(r, 100 - alpha))]
                for t, r in reps.items()
            },
            "differences": [],
            "empty_tiers": empty,
            "small_tiers": [
                t for t, m in masks.items() if t not in empty and int(m.sum()) < min_tier_points
            ],
            "min_tier_points": min_tier_points,
        }
        for a, b in PAIRS:
            if a in empty or b in empty:
                continue
            diff = (reps[a] - reps[b]) * 100
            low = float(np.nanpercentile(diff, alpha))
            high = float(np.nanpercentile(diff, 100 - alpha))
            entry["differences"].append(
                {
                    "pair": f"{a}-{b}",
                    "points": (float(level[a] or 0) - float(level[b] or 0)) * 100,
                    "ci_low": low,
                    "ci_high": high,
                    "status": _pair_status(
                        low,
                        high,
                        reps[a],
                        reps[b],
                        small=min(int(masks[a].sum()), int(masks[b].sum())) < min_tier_points,
                    ),
                }
            )
        adjacent = [d["status"] for d in entry["differences"] if d["pair"] != "central-remote"]
        far = [d["status"] for d in entry["differences"] if d["pair"] == "central-remote"]
        entry["verdict"] = "not testable" if empty else _verdict(adjacent, far[0] if far else None)
        out[cat] = entry
    return out


_SYMBOL = {"higher": ">", "lower": "<", "equal": "=", "undecided": "≈"}


def verdict_sentence(category: str, entry: dict[str, Any], lang: Lang = "en") -> str:
    """Say a category's ordering and verdict in plain language.

    Examples
    --------
    >>> e = {"coverage": {"central": 0.93, "suburban_core": 0.71, "remote": 0.38},
    ...      "differences": [{"pair": "central-suburban_core", "status": "higher"},
    ...                      {"pair": "suburban_core-remote", "status": "higher"}],
    ...      "empty_tiers": [], "verdict": "holds"}
    >>> verdict_sentence("elderly_care", e, "zh")
    '养老: 中心城区 93% > 郊区核心 71% > 边远地区 38%（符合论文的排序）'
    >>> verdict_sentence("elderly_care", e)
    "Elderly care: central city 93% > suburban core 71% > remote areas 38% (the paper's ordering holds)"
    """  # noqa: E501
    status = {d["pair"]: d["status"] for d in entry["differences"]}
    empty = list(entry["empty_tiers"])
    parts: list[str] = []
    previous: str | None = None
    for tier in TIERS:
        if tier in empty:
            continue
        shown = f"{text('tier_' + tier, lang)} {entry['coverage'][tier] * 100:.0f}%"
        if previous is not None:
            shown = f" {_SYMBOL.get(status.get(f'{previous}-{tier}', ''), ';')} {shown}"
        parts.append(shown)
        previous = tier
    body = "".join(parts)
    verdict = text("verdict_" + entry["verdict"].replace(" ", "_"), lang)
    small = list(entry.get("small_tiers", []))
    open_ci = any(
        d["status"] == "undecided" and not set(d["pair"].split("-")) & set(small)
        for d in entry["differences"]
        if d["pair"] != "central-remote"
    )
    if entry["verdict"] == "undecided" and small and not open_ci:
        verdict = text("verdict_undecided_small", lang).format(
            tiers=text("and", lang).join(text("tier_short_" + t, lang) for t in small),
            n=entry.get("min_tier_points", DEFAULT_MIN_TIER_POINTS),
        )
    if empty:
        names = text("and", lang).join(text("tier_short_" + t, lang) for t in empty)
        key = "no_residents_one" if len(empty) == 1 else "no_residents_many"
        note = text(key, lang).format(tiers=names)
        body = f"{body}{'；' if lang == 'zh' else '; '}{note}" if body else note
    label = category_label("all" if category == "all_categories" else category, lang)
    if lang == "zh":
        return f"{label}: {body}（{verdict}）"
    return f"{label}: {body} ({verdict})"


def empty_tiers_sentence(empty: Sequence[str], lang: Lang = "en") -> str | None:
    """Say which tiers hold no residents (None when every tier holds some).

    Examples
    --------
    >>> empty_tiers_sentence(["suburban_core", "remote"])
    'the suburban-core and remote tiers hold no residents'
    """
    if not empty:
        return None
    names = text("and", lang).join(text("tier_short_" + t, lang) for t in empty)
    return text("no_residents_one" if len(empty) == 1 else "no_residents_many", lang).format(
        tiers=names
    )


# --------------------------------------------------------------------------- layers


def grid_frame(
    grid: PopulationGrid, classes: npt.NDArray[np.int8], *, crs: Any
) -> gpd.GeoDataFrame:
    """Return the populated cells as squares with ``persons``, ``density_km2`` and ``degurba``."""
    rows, cols = np.nonzero(grid.persons > 0)
    x = grid.x0 + cols * grid.cell_m
    y = grid.y0 + rows * grid.cell_m
    persons = grid.persons[rows, cols]
    return gpd.GeoDataFrame(
        {
            "persons": persons,
            "density_km2": persons / grid.cell_km2,
            "degurba": np.array(DEGURBA_CLASSES, dtype=object)[classes[rows, cols]],
        },
        geometry=shapely.box(x, y, x + grid.cell_m, y + grid.cell_m),
        crs=crs,
    )


def near_points(
    points: gpd.GeoDataFrame, centres: gpd.GeoDataFrame, *, radius_m: float
) -> BoolArray:
    """Return whether each point lies within `radius_m` of any centre (same metric CRS)."""
    if len(points) == 0 or len(centres) == 0:
        return np.zeros(len(points), dtype=bool)
    tree = shapely.STRtree(centres.geometry.to_numpy())
    idx, _ = tree.query(points.geometry.to_numpy(), predicate="dwithin", distance=radius_m)
    out = np.zeros(len(points), dtype=bool)
    out[idx] = True
    return out


def inside(points: gpd.GeoDataFrame, area: BaseGeometry | None) -> BoolArray:
    """Return whether each point lies inside or on the outline of `area` (False without one)."""
    if area is None or area.is_empty:
        return np.zeros(len(points), dtype=bool)
    return np.asarray(shapely.intersects(points.geometry.to_numpy(), area), dtype=bool)


def method_note(opts: HierarchyOptions, lang: Lang = "en") -> str:
    """Describe the tiers, the grid and the test with the thresholds in use (for reports)."""
    if lang == "zh":
        return _method_note_zh(opts)
    gaps = ", gaps filled by the 5-of-8 majority rule" if opts.fill_gaps else ", gaps not filled"
    return (
        "Tiers: central city = the 街道 sub-districts (unit codes 0xx) or the --central polygon; "
        "suburban core = outside it, in an urban centre or urban cluster of the Degree of "
        f"Urbanisation grid of {opts.cell_m:g} m cells (European Commission and UN Statistical "
        "Commission 2020, 'A recommendation on the method to delineate cities, urban and rural "
        "areas for international statistical comparisons': urban centre = 4-connected cells >= "
        f"{opts.centre_density_km2:,g} persons/km² totalling >= {opts.centre_min_persons:,g}"
        f"{gaps}; urban cluster = 8-connected cells >= {opts.cluster_density_km2:,g}/km² "
        f"totalling >= {opts.cluster_min_persons:,g}), or within {opts.centre_radius_m:g} m of a "
        "given town seat or OSM place node; remote = the rest. Measures are weighted by "
        "estimated persons; a resident beyond the search limit counts as an infinite distance. "
        "The ordering test compares coverage points between tiers with 95% percentile "
        f"bootstrap intervals ({opts.bootstrap} replicates, seed {opts.seed}; resident points "
        "resampled uniformly within each tier, coverage of each resample weighted by persons; "
        f"a tier of fewer than {opts.min_tier_points} resident points decides no pair). "
        "Cells at the edge of a partial "
        "analysed area hold only part of their residents, so densities there are too low."
    )


def _method_note_zh(opts: HierarchyOptions) -> str:
    """Return the Chinese :func:`method_note`."""
    gaps = "，空隙按“周围 8 格中至少 5 格”多数规则填补" if opts.fill_gaps else "，不填补空隙"
    return (
        "地区层级：中心城区 = 街道（统计代码 0xx）或 --central 给出的范围；郊区核心 = 其外、"
        f"位于城市化程度（Degree of Urbanisation）{opts.cell_m:g} 米网格的城市中心或城市集群内"
        "（欧盟委员会与联合国统计委员会 2020 年《关于划定城市、城镇和农村地区以进行国际统计比较的"
        f"方法的建议》：城市中心 = 四邻接、每平方公里 ≥ {opts.centre_density_km2:,g} 人、合计 ≥ "
        f"{opts.centre_min_persons:,g} 人的网格{gaps}；城市集群 = 八邻接、每平方公里 ≥ "
        f"{opts.cluster_density_km2:,g} 人、合计 ≥ {opts.cluster_min_persons:,g} 人的网格），"
        f"或距给定镇区中心或 OSM 地名点 {opts.centre_radius_m:g} 米以内；边远地区 = 其余。"
        "各指标按估算人口加权；超出搜索范围的居民按无穷远计。排序检验比较各层级覆盖率之差"
        f"（百分点），给出 95% 百分位自助法置信区间（{opts.bootstrap} 次重抽样，随机种子 "
        f"{opts.seed}；在每个层级内对居民点等概率有放回重抽样，每次重抽样的覆盖率按人口加权；"
        f"居民点少于 {opts.min_tier_points} 个的层级不判定高低）。"
        "分析范围只覆盖部分网格时，边缘网格只含其部分居民，其密度偏低。"
    )
