"""Charts of coverage: data in, ``(fig, ax)`` out.

Four charts read at a glance where tables must be read: coverage by category
against the target, cumulative accessibility curves (the share of residents
within *t* minutes, the standard figure of accessibility studies), coverage by
街道/镇 as a sorted bar chart, and the ring gradient (coverage against the
distance from the district core). Each takes an optional ``ax`` and a
``lang`` (``"en"`` or ``"zh"``); every word comes from :mod:`lifecircle.i18n`
and Chinese text is set in the CJK font of :func:`lifecircle.plot.cjk_font`.

The data behind the curves (:func:`accessibility_curve`) is a plain function
of the residents' distance columns, so tests and notebooks can use it alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from lifecircle.coverage import STATUS_OK, Target
from lifecircle.i18n import Lang, category_label, text
from lifecircle.plot import CATEGORY_COLORS, cjk_font, new_axes

ALL = "all_categories"
CURVE_MAX_MIN = 30.0
CURVE_STEP_MIN = 0.5
ALL_COLOR = "#333333"
INSIDE_FROM_PCT = 15.0  # value labels go inside bars this long


# --------------------------------------------------------------------------- data


def targets_from_summary(summary: dict[str, Any]) -> list[Target]:
    """Rebuild the tiers of a run from its ``coverage.json`` parameters.

    Examples
    --------
    >>> s = {"parameters": {"thresholds": [{"category": "school", "tier": "any",
    ...      "subtypes": ["*"], "minutes": 15.0, "speed_kmh": 4.0, "required": True,
    ...      "source": "x"}]}}
    >>> targets_from_summary(s)[0].column
    'dist_school_m'
    """
    return [
        Target(
            str(t["category"]),
            str(t["tier"]),
            tuple(str(s) for s in t["subtypes"]),
            float(t["minutes"]),
            float(t["speed_kmh"]),
            str(t.get("source", "")),
            bool(t.get("required", True)),
        )
        for t in summary["parameters"]["thresholds"]
    ]


def category_minutes(targets: Sequence[Target], category: str) -> float:
    """Return the walking minutes of a category: its longest required tier."""
    minutes = [t.minutes for t in targets if t.category == category and t.required]
    if not minutes:
        msg = f"no required tier for category {category!r}: it has no coverage threshold"
        raise ValueError(msg)
    return max(minutes)


def access_ratio(
    residents: pd.DataFrame, targets: Sequence[Target], category: str
) -> npt.NDArray[np.float64]:
    """Return, per resident, the walk to a category as a share of its threshold.

    The share is the largest ``distance / threshold`` over the category's
    required tiers (a resident reaches the category within ``r`` times its
    threshold); residents who are unreachable, or beyond the search limit,
    get ``inf``. With one tier, ``ratio * minutes`` is the walking time to the
    nearest facility.
    """
    tiers = [t for t in targets if t.category == category and t.required]
    ratio = np.zeros(len(residents))
    for t in tiers:
        dist = residents[t.column].to_numpy(dtype=float)
        ratio = np.maximum(ratio, np.where(np.isfinite(dist), dist / t.threshold_m, np.inf))
    ok = residents["status"].to_numpy() == STATUS_OK
    return np.where(ok, ratio, np.inf)


def accessibility_curve(
    residents: pd.DataFrame,
    targets: Sequence[Target],
    *,
    minutes: npt.ArrayLike | None = None,
    weight_column: str = "weight",
) -> pd.DataFrame:
    """Return the share of residents within *t* minutes of each category.

    Parameters
    ----------
    residents
        Residents with ``status``, the weight and the tiers' distance columns
        (a coverage run's ``residents``).
    targets
        The run's tiers (:func:`targets_from_summary`).
    minutes
        The times *t* (default 0 to 30 by 0.5).
    weight_column
        The resident weight.

    Returns
    -------
    pandas.DataFrame
        Index ``minutes``; one column per category, plus ``all_categories``
        when every category has the same minutes. Shares are weighted and
        relative to all residents: unreachable ones never arrive, so each
        curve ends at the share that can reach the category at all. At the
        category's minutes the value equals its coverage.
    """
    grid = (
        np.arange(0.0, CURVE_MAX_MIN + CURVE_STEP_MIN / 2, CURVE_STEP_MIN)
        if minutes is None
        else np.asarray(minutes, dtype=float)
    )
    w = residents[weight_column].to_numpy(dtype=float)
    total = float(w.sum())
    cats = list(dict.fromkeys(t.category for t in targets if t.required))
    out: dict[str, npt.NDArray[np.float64]] = {}
    times: dict[str, npt.NDArray[np.float64]] = {}
    for cat in cats:
        cat_min = category_minutes(targets, cat)
        ratio = access_ratio(residents, targets, cat)
        times[cat] = ratio * cat_min
        # compare ratios with t / minutes, so t = minutes is exactly the coverage test
        out[cat] = _cumulative(ratio, w, grid / cat_min, total)
    if cats and len({category_minutes(targets, c) for c in cats}) == 1:
        cat_min = category_minutes(targets, cats[0])
        ratio_all = np.max(np.vstack([times[c] for c in cats]), axis=0) / cat_min
        out[ALL] = _cumulative(ratio_all, w, grid / cat_min, total)
    return pd.DataFrame(out, index=pd.Index(grid, name="minutes"))


def _cumulative(
    ratio: npt.NDArray[np.float64],
    w: npt.NDArray[np.float64],
    limits: npt.NDArray[np.float64],
    total: float,
) -> npt.NDArray[np.float64]:
    if total <= 0:
        return np.full(len(limits), np.nan)
    order = np.argsort(ratio, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(w[order])])
    counts = np.searchsorted(ratio[order], limits, side="right")
    return np.asarray(cum[counts] / total, dtype=float)


def unit_order(table: pd.DataFrame, category: str) -> list[str]:
    """Return the units holding residents, from the best covered to the worst.

    `table` is the ``admin`` zone table (``zone``, ``category``,
    ``coverage``); ties keep the table's order.
    """
    rows = table.loc[(table["category"] == category) & table["coverage"].notna()]
    return [str(z) for z in rows.sort_values("coverage", ascending=False, kind="stable")["zone"]]


def ring_midpoints_km(zones: Iterable[str]) -> list[float]:
    """Return the midpoint of ring labels such as ``"3-6 km"`` (NaN when not a ring).

    Examples
    --------
    >>> ring_midpoints_km(["0-3 km", "10-15 km", "outside rings"])
    [1.5, 12.5, nan]
    """
    out = []
    for z in zones:
        m = re.fullmatch(r"\s*([\d.]+)\s*-\s*([\d.]+)\s*km\s*", str(z))
        out.append((float(m[1]) + float(m[2])) / 2 if m else float("nan"))
    return out


# --------------------------------------------------------------------------- style


def _font(lang: Lang, labels: Iterable[str] = ()) -> FontProperties | None:
    """Return the CJK font when the chart is in Chinese or shows Chinese names."""
    if lang == "zh" or any(_has_cjk(s) for s in labels):
        return cjk_font()
    return None


def _has_cjk(s: str) -> bool:
    return any("\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in str(s))


def _kw(font: FontProperties | None, size: float) -> dict[str, Any]:
    if font is None:
        return {"fontsize": size}
    fp = font.copy()
    fp.set_size(size)
    return {"fontproperties": fp}


def _label(category: str, lang: Lang) -> str:
    return category_label("all" if category == ALL else category, lang)


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def _finish(ax: Axes, font: FontProperties | None, *, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, **_kw(font, 11))
    ax.set_xlabel(xlabel, **_kw(font, 9))
    ax.set_ylabel(ylabel, **_kw(font, 9))
    for tick in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
        if font is not None:
            tick.set_fontproperties(_kw(font, 8)["fontproperties"])
    ax.spines[["top", "right"]].set_visible(False)


def _legend(ax: Axes, font: FontProperties | None, **kw: Any) -> None:
    prop = _kw(font, 8)
    ax.legend(prop=prop.get("fontproperties"), fontsize=None if font else 8, **kw)


# --------------------------------------------------------------------------- charts


def plot_coverage_by_category(
    summary: dict[str, Any], *, ax: Axes | None = None, lang: Lang = "en"
) -> tuple[Figure, Axes]:
    """Bar chart of coverage per category and for all four, against the target line.

    Parameters
    ----------
    summary
        A ``coverage.json`` dict (``categories``, ``all_categories``, ``parameters``).
    ax
        Axes to draw on.
    lang
        ``"en"`` or ``"zh"``.

    Returns
    -------
    fig, ax
    """
    fig, ax = new_axes(ax, (7.5, 4.5))
    font = _font(lang)
    keys = [*summary["categories"], ALL]
    shares = [
        (summary["categories"][k] if k != ALL else summary["all_categories"])["coverage"]
        for k in keys
    ]
    values = np.array([np.nan if s is None else s * 100 for s in shares], dtype=float)
    colors = [CATEGORY_COLORS.get(k, ALL_COLOR) for k in keys]
    x = np.arange(len(keys))
    bars = ax.bar(x, np.nan_to_num(values), color=colors, width=0.65, zorder=2)
    for bar, v in zip(bars, values, strict=True):
        inside = bool(v >= INSIDE_FROM_PCT)  # clear of the target line
        ax.annotate(
            "–" if np.isnan(v) else f"{v:.1f}%",
            (bar.get_x() + bar.get_width() / 2, 0 if np.isnan(v) else v),
            xytext=(0, -4 if inside else 3),
            textcoords="offset points",
            ha="center",
            va="top" if inside else "bottom",
            color="white" if inside else "black",
            fontweight="bold",
            **_kw(font, 9),
        )
    target = float(summary["parameters"]["target"])
    _target_line(ax, target, font, lang, horizontal=True)
    ax.set_xticks(x, [_label(k, lang) for k in keys])
    ax.set_ylim(0, 112)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    label = summary["parameters"].get("threshold_label", "")
    if lang != "en":  # the recorded label is English ("15 min (1000 m) at 4 km/h")
        from lifecircle.report import threshold_text

        label = threshold_text(summary["parameters"], lang)
    _finish(
        ax,
        font,
        title=text("chart_category_title", lang).format(threshold=label),
        xlabel="",
        ylabel=text("share_residents_pct", lang),
    )
    _legend(ax, font, loc="upper right")
    return fig, ax


def _target_line(
    ax: Axes, target: float, font: FontProperties | None, lang: Lang, *, horizontal: bool
) -> None:
    label = text("target_line", lang).format(pct=f"{target * 100:g}%")
    line = ax.axhline if horizontal else ax.axvline
    line(target * 100, color="black", linestyle="--", linewidth=1.2, label=label, zorder=3)


def plot_accessibility_curves(
    curve: pd.DataFrame,
    *,
    threshold_min: float,
    target: float | None = None,
    ax: Axes | None = None,
    lang: Lang = "en",
) -> tuple[Figure, Axes]:
    """Cumulative accessibility: the share of residents within *t* minutes, per category.

    Parameters
    ----------
    curve
        The frame of :func:`accessibility_curve`.
    threshold_min
        The threshold, drawn as a vertical line.
    target
        The coverage target, drawn as a faint horizontal line (optional).
    ax
        Axes to draw on.
    lang
        ``"en"`` or ``"zh"``.

    Returns
    -------
    fig, ax
    """
    fig, ax = new_axes(ax, (7.5, 4.8))
    font = _font(lang)
    t = curve.index.to_numpy(dtype=float)
    at = float(np.abs(t - threshold_min).argmin())
    for col in curve.columns:
        share = curve[col].to_numpy(dtype=float)
        label = f"{_label(str(col), lang)} ({_pct(share[int(at)])})"
        ax.plot(
            t,
            share * 100,
            color=CATEGORY_COLORS.get(str(col), ALL_COLOR),
            linestyle="--" if col == ALL else "-",
            linewidth=2,
            label=label,
            zorder=3,
        )
    ax.axvline(threshold_min, color="grey", linestyle=":", linewidth=1.2, zorder=2)
    ax.annotate(
        text("threshold_line", lang).format(minutes=f"{threshold_min:g}"),
        (threshold_min, 2),
        xytext=(4, 0),
        textcoords="offset points",
        color="grey",
        **_kw(font, 8),
    )
    if target is not None:
        ax.axhline(target * 100, color="black", linestyle="--", linewidth=0.8, alpha=0.5)
    ax.set_xlim(float(t.min()), float(t.max()))
    ax.set_ylim(0, 101)
    ax.grid(alpha=0.3, zorder=0)
    _finish(
        ax,
        font,
        title=text("chart_curve_title", lang),
        xlabel=text("walking_minutes", lang),
        ylabel=text("share_residents_pct", lang),
    )
    _legend(ax, font, loc="lower right", title=None)
    return fig, ax


def plot_unit_coverage(
    table: pd.DataFrame,
    category: str,
    *,
    target: float,
    units_without_residents: Sequence[str] = (),
    ax: Axes | None = None,
    lang: Lang = "en",
) -> tuple[Figure, Axes]:
    """Horizontal bars of coverage by 街道/镇, sorted from the best covered (top) down.

    Parameters
    ----------
    table
        The ``admin`` zone table (``zone``, ``category``, ``coverage``).
    category
        A category or ``all_categories``.
    target
        The coverage target (a vertical line).
    units_without_residents
        Units listed under the chart as holding no residents in the analysed area.
    ax
        Axes to draw on.
    lang
        ``"en"`` or ``"zh"``.

    Returns
    -------
    fig, ax
    """
    order = unit_order(table, category)
    fig, ax = new_axes(ax, (7.5, max(3.0, 1.6 + 0.28 * len(order))))
    font = _font(lang)
    name_font = _font(lang, order)  # 街道/镇 names are Chinese in either language
    rows = table.loc[table["category"] == category].drop_duplicates("zone").set_index("zone")
    values = rows["coverage"].reindex(order).to_numpy(dtype=float) * 100
    y = np.arange(len(order))[::-1]  # best on top
    colors = ["#4c9a2a" if v >= target * 100 - 1e-9 else "#d95f02" for v in values]
    ax.barh(y, values, color=colors, height=0.7, zorder=2)
    for yi, v in zip(y, values, strict=True):
        inside = bool(v >= INSIDE_FROM_PCT)
        ax.annotate(
            f"{v:.1f}%",
            (v, yi),
            xytext=(-3 if inside else 3, 0),
            textcoords="offset points",
            va="center",
            ha="right" if inside else "left",
            color="white" if inside else "black",
            fontweight="bold",
            **_kw(font, 8),
        )
    _target_line(ax, target, font, lang, horizontal=False)
    ax.set_yticks(y, order)
    ax.set_xlim(0, 112)
    ax.set_ylim(-0.7, max(len(order) - 0.3, 0.7))
    ax.grid(axis="x", alpha=0.3, zorder=0)
    if units_without_residents:
        note = text("units_no_residents", lang).format(n=len(units_without_residents))
        ax.annotate(
            note,
            (0, 0),
            xycoords="axes fraction",
            xytext=(0, -36),
            textcoords="offset points",
            ha="left",
            va="top",
            color="grey",
            **_kw(font, 8),
        )
    _finish(
        ax,
        font,
        title=text("chart_units_title", lang).format(category=_label(category, lang)),
        xlabel=text("share_residents_pct", lang),
        ylabel="",
    )
    if name_font is not None:
        for tick in ax.get_yticklabels():
            tick.set_fontproperties(_kw(name_font, 8)["fontproperties"])
    _legend(ax, font, loc="lower right")
    return fig, ax


def plot_ring_gradient(
    rings: pd.DataFrame,
    *,
    target: float,
    categories: Sequence[str] | None = None,
    ax: Axes | None = None,
    lang: Lang = "en",
) -> tuple[Figure, Axes]:
    """Coverage by distance from the district core: one line per category over ring midpoints.

    Parameters
    ----------
    rings
        The ``rings`` zone table (``zone`` labels such as ``"3-6 km"``,
        ``category``, ``coverage``); rings without residents are left out.
    target
        The coverage target (a horizontal line).
    categories
        Categories to draw (default: all in the table, ``all_categories`` last).
    ax
        Axes to draw on.
    lang
        ``"en"`` or ``"zh"``.

    Returns
    -------
    fig, ax
    """
    fig, ax = new_axes(ax, (7.5, 4.5))
    font = _font(lang)
    data = rings.assign(mid_km=ring_midpoints_km(rings["zone"]))
    data = data.loc[data["coverage"].notna() & data["mid_km"].notna()]
    cats = list(categories) if categories is not None else list(dict.fromkeys(data["category"]))
    for cat in cats:
        sub = data.loc[data["category"] == cat].sort_values("mid_km")
        ax.plot(
            sub["mid_km"],
            sub["coverage"] * 100,
            marker="o",
            color=CATEGORY_COLORS.get(cat, ALL_COLOR),
            linestyle="--" if cat == ALL else "-",
            linewidth=2,
            label=_label(cat, lang),
            zorder=3,
        )
    _target_line(ax, target, font, lang, horizontal=True)
    ax.set_ylim(0, 105)
    ax.set_xlim(0, float(data["mid_km"].max()) * 1.15 + 0.5 if len(data) else 1.0)
    ax.grid(alpha=0.3, zorder=0)
    if data["mid_km"].nunique() < 2:
        ax.text(
            0.5,
            0.5,
            text("one_ring_note", lang),
            transform=ax.transAxes,
            ha="center",
            color="grey",
            **_kw(font, 9),
        )
    _finish(
        ax,
        font,
        title=text("chart_rings_title", lang),
        xlabel=text("ring_midpoint_km", lang),
        ylabel=text("share_residents_pct", lang),
    )
    _legend(ax, font, loc="lower left")
    return fig, ax


# --------------------------------------------------------------------------- sets


def coverage_charts(
    summary: dict[str, Any], residents: pd.DataFrame, *, lang: Lang = "en"
) -> dict[str, Figure]:
    """Return the charts of a coverage run by file name (``coverage`` and the gaps report).

    ``coverage_by_category.png`` and ``accessibility_curves.png``.
    """
    targets = targets_from_summary(summary)
    params = summary["parameters"]
    curve = accessibility_curve(residents, targets)
    minutes = max(category_minutes(targets, c) for c in summary["categories"])
    return {
        "coverage_by_category.png": plot_coverage_by_category(summary, lang=lang)[0],
        "accessibility_curves.png": plot_accessibility_curves(
            curve, threshold_min=minutes, target=float(params["target"]), lang=lang
        )[0],
    }


def gap_charts(
    tables: dict[str, pd.DataFrame],
    *,
    target: float,
    units_without_residents: Sequence[str] = (),
    lang: Lang = "en",
) -> dict[str, Figure]:
    """Return the charts of a gap run by file name.

    ``ring_gradient.png``, and with administrative units
    ``unit_coverage_<category>.png`` per category and ``all_categories``.
    """
    figs = {"ring_gradient.png": plot_ring_gradient(tables["rings"], target=target, lang=lang)[0]}
    admin = tables.get("admin")
    if admin is not None and len(admin):
        for cat in dict.fromkeys(admin["category"]):
            figs[f"unit_coverage_{cat}.png"] = plot_unit_coverage(
                admin,
                str(cat),
                target=target,
                units_without_residents=units_without_residents,
                lang=lang,
            )[0]
    return figs


def chart_caption(file_name: str, lang: Lang = "en") -> str:
    """Return the report caption of a chart file of :func:`coverage_charts` or :func:`gap_charts`.

    Examples
    --------
    >>> chart_caption("unit_coverage_elderly_care.png", "zh")
    '养老：各街道/镇覆盖率（排序）'
    """
    stem = file_name.removesuffix(".png")
    if stem.startswith("unit_coverage_"):
        cat = _label(stem.removeprefix("unit_coverage_"), lang)
        return text("caption_unit_coverage", lang).format(category=cat)
    return text(f"caption_{stem}", lang)
