"""Figures of the settlement hierarchy: the tier map and the tier coverage chart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from lifecircle.hierarchy import TIERS
from lifecircle.i18n import Lang, category_label, text
from lifecircle.plot import (
    add_map_furniture,
    add_outlines_and_view,
    add_points,
    cjk_font,
    draw_polygons,
    map_bounds,
    new_axes,
)

if TYPE_CHECKING:
    from lifecircle.prepare import PreparedArea

TIER_COLORS = {"central": "#d95f02", "suburban_core": "#7570b3", "remote": "#1b9e77"}
DEGURBA_FILL = {"urban_centre": "#bdbdbd", "urban_cluster": "#e6e6e6"}


def _label(category: str, lang: Lang) -> str:
    return category_label("all" if category == "all_categories" else category, lang)


def plot_tier_map(
    prepared: PreparedArea,
    residents: gpd.GeoDataFrame,
    tier_table: pd.DataFrame,
    *,
    category: str = "all_categories",
    grid: gpd.GeoDataFrame | None = None,
    lang: Lang = "en",
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    """Map residents in three tier colours, filled when covered for `category`, hollow when not.

    The Degree of Urbanisation cells (urban centre, urban cluster) are shaded
    underneath; the legend gives each tier's coverage and persons, and says
    so when a tier holds no residents.

    Parameters
    ----------
    prepared
        The prepared area (outlines and view).
    residents
        Residents with ``tier`` and ``covered_<category>`` columns (metric CRS).
    tier_table
        :func:`lifecircle.hierarchy.tier_measures` output.
    category
        Category whose coverage is shown (default all categories).
    grid
        :func:`lifecircle.hierarchy.grid_frame` cells, optional.
    lang
        Language of the labels.
    ax
        Axes to draw on.

    Returns
    -------
    fig, ax
    """
    fig, ax = new_axes(ax, (10, 10))
    handles: list[Any] = []
    if grid is not None and len(grid):
        for cls, colour in DEGURBA_FILL.items():
            cells = grid.loc[grid["degurba"] == cls]
            if len(cells):
                draw_polygons(
                    ax,
                    cells.geometry,
                    facecolors=colour,
                    edgecolor="white",
                    linewidth=0.5,
                    zorder=0,
                )
                handles.append(Patch(color=colour, label=f"DEGURBA {cls.replace('_', ' ')}"))
    rows = tier_table.loc[tier_table["category"] == category].set_index("tier")
    covered = residents[f"covered_{category}"].to_numpy(dtype=bool)
    pts = residents.geometry.to_numpy()
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    view = map_bounds(prepared)
    for tier in TIERS:
        sel = (residents["tier"] == tier).to_numpy()
        colour = TIER_COLORS[tier]
        cov = rows["coverage"].get(tier, np.nan)
        if sel.any():
            # one scatter (or image, for city-size sets) per style
            add_points(ax, x[sel & covered], y[sel & covered], color=colour, size=9, bounds=view)
            add_points(
                ax,
                x[sel & ~covered],
                y[sel & ~covered],
                color=colour,
                size=14,
                bounds=view,
                hollow_width=0.9,
            )
            persons = rows["persons"].get(tier, np.nan)
            note = f"{cov * 100:.0f}%" + (
                f", {persons:,.0f} {text('persons_unit', lang)}" if np.isfinite(persons) else ""
            )
        else:
            note = text("no_residents", lang)
        label = f"{text('tier_' + tier, lang)}: {note}"
        handles.append(
            Line2D([], [], marker="o", color=colour, linestyle="", markersize=5, label=label)
        )
    handles.append(
        Line2D(
            [],
            [],
            marker="o",
            markerfacecolor="none",
            color="black",
            linestyle="",
            markersize=5,
            label=text("uncovered_residents", lang),
        )
    )
    add_outlines_and_view(ax, prepared, handles)
    ax.set_title(
        f"{prepared.key}: {text('hierarchy_title', lang)} ({_label(category, lang)})",
        fontsize=11,
        fontproperties=cjk_font() if lang == "zh" else None,
    )
    add_map_furniture(ax, handles)
    legend = ax.get_legend()
    if lang == "zh" and legend is not None:
        for entry in legend.get_texts():
            entry.set_fontproperties(cjk_font())
    return fig, ax


def plot_tier_chart(
    test: dict[str, dict[str, Any]], *, lang: Lang = "en", ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """Bar chart of coverage per category and tier with 95% bootstrap intervals.

    A tier without residents gets no bar and is named in the legend as such.

    Parameters
    ----------
    test
        :func:`lifecircle.hierarchy.ordering_test` output (with ``verdict``).
    lang
        Language of the labels.
    ax
        Axes to draw on.

    Returns
    -------
    fig, ax
    """
    fig, ax = new_axes(ax, (9, 4.5))
    cats = list(test)
    x = np.arange(len(cats))
    width = 0.26
    font = cjk_font() if lang == "zh" else None
    handles: list[Any] = []
    for k, tier in enumerate(TIERS):
        vals = [test[c]["coverage"][tier] for c in cats]
        label = text("tier_" + tier, lang)
        if all(v is None for v in vals):
            label = f"{label}: {text('no_residents', lang)}"
            handles.append(Patch(facecolor="none", edgecolor=TIER_COLORS[tier], label=label))
            continue
        handles.append(Patch(color=TIER_COLORS[tier], label=label))
        heights = np.array([np.nan if v is None else v * 100 for v in vals])
        ci = [test[c]["coverage_ci"][tier] or [np.nan, np.nan] for c in cats]
        low = heights - np.array([v[0] * 100 for v in ci])
        high = np.array([v[1] * 100 for v in ci]) - heights
        ax.bar(
            x + (k - 1) * width,
            heights,
            width,
            color=TIER_COLORS[tier],
            yerr=np.vstack([low, high]),
            capsize=3,
        )
        for xi, h in zip(x + (k - 1) * width, heights, strict=True):
            if np.isfinite(h):
                ax.annotate(
                    f"{h:.0f}",
                    (xi, h),
                    xytext=(0, 8),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    names = [
        f"{_label(c, lang)}\n{text('verdict_short_' + test[c]['verdict'].replace(' ', '_'), lang)}"
        for c in cats
    ]
    ax.set_xticks(x, names, fontsize=8, fontproperties=font)
    ax.set_ylim(0, 105)
    ax.set_ylabel(f"{text('coverage', lang)} (%)", fontproperties=font)
    ax.legend(handles=handles, fontsize=8, prop=font)
    ax.set_title(text("hierarchy_title", lang), fontsize=11, fontproperties=font)
    return fig, ax
