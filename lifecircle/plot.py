"""Maps with matplotlib: every function takes an optional ``ax`` and returns ``(fig, ax)``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import shapely
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from lifecircle.network import network_to_gdfs

if TYPE_CHECKING:
    from lifecircle.prepare import PreparedArea

CATEGORY_COLORS = {
    "school": "#1f77b4",
    "health": "#d62728",
    "elderly_care": "#9467bd",
    "culture": "#2ca02c",
}
ATTRIBUTION = "© OpenStreetMap contributors"


def add_scale_bar(ax: Axes, *, length_m: float | None = None) -> None:
    """Draw a scale bar in the lower left corner of a map in metres."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    if length_m is None:
        raw = (x1 - x0) / 5
        magnitude = 10 ** np.floor(np.log10(raw))
        length_m = float(max(m for m in (1, 2, 5) if m * magnitude <= raw) * magnitude)
    bx, by = x0 + (x1 - x0) * 0.05, y0 + (y1 - y0) * 0.05
    ax.plot([bx, bx + length_m], [by, by], color="black", linewidth=3, solid_capstyle="butt")
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    ax.text(bx + length_m / 2, by + (y1 - y0) * 0.015, label, ha="center", va="bottom", fontsize=8)


def add_north_arrow(ax: Axes) -> None:
    """Draw a north arrow in the upper right corner (the map CRS is north-up UTM)."""
    ax.annotate(
        "N",
        xy=(0.95, 0.95),
        xytext=(0.95, 0.86),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=10,
        arrowprops={"arrowstyle": "-|>", "color": "black"},
    )


def plot_coverage_map(
    prepared: PreparedArea,
    residents: gpd.GeoDataFrame,
    category_isochrones: gpd.GeoDataFrame | None,
    summary: dict[str, Any],
    *,
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    """Map isochrones, facilities, uncovered residents and the district outline.

    Returns
    -------
    fig, ax
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 10))
    else:
        fig = ax.get_figure()  # type: ignore[assignment]
    crs = prepared.crs
    extent = prepared.extent
    _, edges = network_to_gdfs(prepared.network)
    edges.plot(ax=ax, color="#bbbbbb", linewidth=0.4, zorder=1)
    handles: list[Any] = [Line2D([], [], color="#bbbbbb", label="walkable streets")]
    if category_isochrones is not None:
        for cat, geom in zip(
            category_isochrones["category"], category_isochrones.geometry, strict=True
        ):
            color = CATEGORY_COLORS.get(str(cat), "grey")
            gpd.GeoSeries([geom], crs=crs).plot(
                ax=ax, color=color, alpha=0.15, edgecolor=color, linewidth=0.5, zorder=2
            )
            handles.append(Patch(facecolor=color, alpha=0.3, label=f"{cat} reach"))
    fac = prepared.facilities
    for cat, color in CATEGORY_COLORS.items():
        sub = fac.loc[fac["category"] == cat]
        if len(sub):
            sub.plot(
                ax=ax,
                color=color,
                markersize=18,
                marker="^",
                edgecolor="black",
                linewidth=0.3,
                zorder=4,
            )
            handles.append(Line2D([], [], marker="^", color=color, linestyle="", label=cat))
    uncovered = residents.loc[~residents["covered_all_categories"].to_numpy()]
    if len(uncovered):
        uncovered.plot(ax=ax, color="black", markersize=6, zorder=3)
    handles.append(
        Line2D(
            [],
            [],
            marker="o",
            color="black",
            linestyle="",
            markersize=3,
            label="residents not covered (all categories)",
        )
    )
    boundary = prepared.boundary.to_crs(crs)
    boundary.boundary.plot(ax=ax, color="black", linewidth=1.2, zorder=5)
    handles.append(Line2D([], [], color="black", label="district boundary"))
    extent.boundary.plot(ax=ax, color="orange", linewidth=1, linestyle="--", zorder=5)
    handles.append(Line2D([], [], color="orange", linestyle="--", label="analysed extent"))
    minx, miny, maxx, maxy = shapely.buffer(extent.geometry.iloc[0], 300).bounds
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    all_cov = summary["all_categories"]["coverage"]
    pct = "n/a" if all_cov is None else f"{all_cov * 100:.1f}%"
    params = summary["parameters"]
    ax.set_title(
        f"{prepared.key}: residents within {params['threshold_m']:.0f} m of every category: {pct}"
        f" (target {params['target'] * 100:g}%)",
        fontsize=11,
    )
    ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9)
    add_scale_bar(ax)
    add_north_arrow(ax)
    ax.text(
        0.99,
        0.01,
        ATTRIBUTION,
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=7,
        bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"},
    )
    return fig, ax
