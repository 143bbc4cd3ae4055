"""Checks of the numeric options and of CSV text, before any work starts.

Every check is pure: it raises :class:`~lifecircle.errors.InputError` with
one line naming the option and the fix, or warns (``RuntimeWarning``) when
a value is valid but unusual, saying what is assumed. The CLI calls
:func:`check_numeric_options` before the pipeline, so a refused value
leaves no output behind; batch specs can call it with their own labels.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from io import StringIO

import pandas as pd

from lifecircle.errors import InputError


@dataclass(frozen=True)
class NumberRule:
    """What a numeric option accepts.

    ``low`` is the smallest valid value (``low_open``: excluded); values
    outside ``usual`` (inclusive) are valid but warned about with ``note``.
    Non-finite values (NaN, inf) are always refused.
    """

    low: float
    low_open: bool
    fix: str
    usual: tuple[float, float] = (-math.inf, math.inf)
    note: str = ""


NUMBER_RULES: dict[str, NumberRule] = {
    "minutes": NumberRule(
        0.0,
        True,
        "give the walking time in minutes, e.g. 15",
        (1.0, 60.0),
        "a life circle is 5 to 15 minutes; the value is used as given",
    ),
    "speed_kmh": NumberRule(
        0.0,
        True,
        "give the walking speed in km/h, e.g. 4",
        (2.0, 7.0),
        "walking is 2-7 km/h (is it m/s or a cycling speed?); the value is used as km/h",
    ),
    "max_snap_m": NumberRule(
        0.0,
        True,
        "give a distance in metres, e.g. 300",
        (0.0, 2000.0),
        "points that far from a street count as reachable",
    ),
    "facility_max_snap_m": NumberRule(
        0.0,
        True,
        "give a distance in metres, e.g. 100",
        (0.0, 2000.0),
        "facilities that far from a street count as reachable",
    ),
    "time_limit_s": NumberRule(0.0, True, "give the solver's time limit in seconds, e.g. 60"),
    "candidate_spacing_m": NumberRule(
        0.0,
        True,
        "give the spacing of street candidates in metres, e.g. 100",
        (5.0, 2000.0),
        "candidate sites that close or far apart; the value is used as given",
    ),
    "isochrone_buffer_m": NumberRule(
        0.0,
        True,
        "give a width in metres > 0, e.g. 25",
        (5.0, 500.0),
        "isochrone polygons are drawn on a lattice of a fifth of the width but at least 1 m, "
        "so under 5 m they are coarse for their width, and over 500 m much wider than the streets",
    ),
    "margin_m": NumberRule(0.0, False, "give a distance in metres >= 0, e.g. 3000"),
    "cluster_eps_m": NumberRule(
        0.0,
        True,
        "give a radius in metres, e.g. 250",
        (10.0, 5000.0),
        "the gap clusters will be single points or a few huge blobs",
    ),
    "zone_ring_m": NumberRule(0.0, True, "give a ring width in metres, e.g. 2000"),
    "floor_area_per_person_m2": NumberRule(
        0.0,
        True,
        "give square metres of residential floor area per person, e.g. 37.8 (Shanghai)",
        (10.0, 100.0),
        "residential floor area per person is about 20-60 m² in Chinese cities; the value is "
        "used as given",
    ),
    "population_total": NumberRule(
        0.0, True, "give the number of residents of the analysed area, e.g. 120000"
    ),
    "lag_points": NumberRule(
        0.0,
        False,
        "give percentage points >= 0, e.g. 10",
        (0.0, 100.0),
        "no ring can lag by more than 100 points, so nothing is flagged",
    ),
    # the settlement hierarchy (lifecircle.hierarchy; DEGURBA defaults of the 2020 UN method)
    "cell_m": NumberRule(
        0.0,
        True,
        "give the grid cell size in metres, e.g. 1000 (the Degree of Urbanisation's 1 km)",
        (250.0, 5000.0),
        "the Degree of Urbanisation's thresholds are defined on 1 km cells",
    ),
    "centre_density_km2": NumberRule(
        0.0,
        True,
        "give inhabitants per km², e.g. 1500",
        (100.0, 50000.0),
        "the urban-centre density threshold is far from the method's 1,500/km²",
    ),
    "centre_min_persons": NumberRule(0.0, False, "give a number of inhabitants >= 0, e.g. 50000"),
    "cluster_density_km2": NumberRule(
        0.0,
        True,
        "give inhabitants per km², e.g. 300",
        (10.0, 10000.0),
        "the urban-cluster density threshold is far from the method's 300/km²",
    ),
    "cluster_min_persons": NumberRule(0.0, False, "give a number of inhabitants >= 0, e.g. 5000"),
    "centre_radius_m": NumberRule(
        0.0,
        False,
        "give a radius in metres >= 0, e.g. 1500",
        (0.0, 10000.0),
        "a town seat's core reaches farther than 10 km",
    ),
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_number(
    name: str, value: float, *, label: Callable[[str], str] = _flag, stacklevel: int = 2
) -> float:
    """Check one numeric option against its rule in :data:`NUMBER_RULES`.

    Parameters
    ----------
    name
        Option name without dashes (``speed_kmh``).
    value
        The value given.
    label
        Turns `name` into what the user typed (default: ``--speed-kmh``).

    Returns
    -------
    float
        `value`, unchanged.

    Examples
    --------
    >>> check_number("speed_kmh", 4.0)
    4.0
    >>> check_number("speed_kmh", float("nan"))
    Traceback (most recent call last):
    ...
    lifecircle.errors.InputError: --speed-kmh must be a finite number > 0, got nan: give the walking speed in km/h, e.g. 4
    """  # noqa: E501
    rule = NUMBER_RULES[name]
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    bound = f"{'>' if rule.low_open else '>='} {rule.low:g}"
    below = number <= rule.low if rule.low_open else number < rule.low
    if not math.isfinite(number) or below:
        msg = f"{label(name)} must be a finite number {bound}, got {value}: {rule.fix}"
        raise InputError(msg)
    lo, hi = rule.usual
    if not lo <= number <= hi:
        msg = f"{label(name)} {number:g} is outside the usual {lo:g}-{hi:g}: {rule.note}"
        warnings.warn(msg, RuntimeWarning, stacklevel=stacklevel)
    return number


def check_numeric_options(
    values: Mapping[str, float], *, label: Callable[[str], str] = _flag
) -> None:
    """Check every option of `values` that has a rule (others are ignored).

    Examples
    --------
    >>> check_numeric_options({"minutes": 15.0, "speed_kmh": 4.0, "name": "x"})
    >>> check_numeric_options({"cluster_eps_m": 0.0})
    Traceback (most recent call last):
    ...
    lifecircle.errors.InputError: --cluster-eps-m must be a finite number > 0, got 0.0: give a radius in metres, e.g. 250
    """  # noqa: E501
    for name, value in values.items():
        if name in NUMBER_RULES and value is not None:  # None: an optional option not given
            check_number(name, value, label=label, stacklevel=3)


def check_ring_edges(edges_km: tuple[float, ...], *, option: str = "--rings") -> tuple[float, ...]:
    """Check distance-ring edges: finite, >= 0, at least two, increasing.

    Examples
    --------
    >>> check_ring_edges((0.0, 3.0, 6.0))
    (0.0, 3.0, 6.0)
    """
    bad = [e for e in edges_km if not (math.isfinite(e) and e >= 0)]
    if bad or len(edges_km) < 2 or any(b <= a for a, b in itertools.pairwise(edges_km)):
        shown = ",".join(f"{e:g}" for e in edges_km)
        msg = (
            f"{option} {shown} must be at least two increasing finite distances >= 0 km "
            "from the district core, e.g. 0,3,6,10"
        )
        raise InputError(msg)
    return edges_km


def read_csv_text(text: str, *, what: str) -> pd.DataFrame:
    """Parse CSV text as strings; an empty or malformed table is one InputError.

    Parameters
    ----------
    text
        The file's text.
    what
        What the table is, for the message (``"tag table /x/tags.csv"``).
    """
    if not text.strip():
        msg = f"{what} is empty: give a CSV file with a header row"
        raise InputError(msg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # a row longer than the header
            table = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False, index_col=False)
    except (ValueError, pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = f"{what} is not a valid CSV file ({first}): check its commas and quotes"
        raise InputError(msg) from None
    table.columns = [str(c).strip() for c in table.columns]
    return table


def no_poi_inside_message(name: str, count: int) -> str:
    """Say that none of a POI file's mapped points lies in the area, and the likely causes."""
    return (
        f"--pois {name}: none of its {count} mapped POIs lies inside the area: check "
        "--pois-lon/--pois-lat (swapped?) and --pois-crs, or the file covers another place"
    )


def check_area_name(name: str | None) -> str | None:
    """Check a ``--name``: it names a cache folder, so it must be a plain folder name.

    Refused: empty, a leading dot, a slash, backslash or colon, control characters.

    Examples
    --------
    >>> check_area_name("陆家嘴-2026")
    '陆家嘴-2026'
    >>> check_area_name("../elsewhere")
    Traceback (most recent call last):
    ...
    lifecircle.errors.InputError: --name '../elsewhere' must be a plain name (no slash, backslash, colon or leading dot), e.g. lujiazui
    """  # noqa: E501
    if name is None:
        return None
    bad = (
        not name.strip()
        or name.startswith(".")
        or any(c in name for c in "/:" + chr(92))
        or any(ord(c) < 32 for c in name)
    )
    if bad:
        msg = (
            f"--name {name!r} must be a plain name (no slash, backslash, colon or leading dot), "
            "e.g. lujiazui"
        )
        raise InputError(msg)
    return name
