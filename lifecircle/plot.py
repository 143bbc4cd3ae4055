"""Maps with matplotlib: every function takes an optional ``ax`` and returns ``(fig, ax)``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import shapely
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from lifecircle.network import WalkNetwork

if TYPE_CHECKING:
    from lifecircle.i18n import Lang
    from lifecircle.prepare import PreparedArea

CATEGORY_COLORS = {
    "school": "#1f77b4",
    "health": "#d62728",
    "elderly_care": "#9467bd",
    "culture": "#2ca02c",
}
ATTRIBUTION = "© OpenStreetMap contributors"
MAP_DPI = 150  # the resolution maps are saved at (lifecircle.io.save_figure)


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Return `ax` and its figure, or a new figure and axes of `figsize` inches."""
    if ax is None:
        return plt.subplots(figsize=figsize)
    return ax.get_figure(), ax  # type: ignore[return-value]


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


def draw_outlines(ax: Axes, geoms: Any, **style: Any) -> None:
    """Draw the outlines of polygons (or lines) as one line collection.

    ``GeoSeries.plot`` redraws the whole figure when it returns (its
    ``draw_idle`` renders at once on a file backend): after half a million
    resident points, each outline cost seconds. This adds the lines without
    a redraw and without touching the view.
    """
    from matplotlib.collections import LineCollection

    arr = np.asarray(gpd.GeoSeries(geoms).to_numpy(), dtype=object)
    polygonal = np.isin(shapely.get_type_id(arr), (3, 6))  # Polygon, MultiPolygon
    lines = arr.copy()
    lines[polygonal] = shapely.boundary(arr[polygonal])
    parts = shapely.get_parts(lines)
    parts = parts[np.isin(shapely.get_type_id(parts), (1, 2)) & ~shapely.is_empty(parts)]
    segments = [shapely.get_coordinates(p) for p in parts]
    ax.add_collection(LineCollection(segments, **style), autolim=False)


def _polygon_path(geom: shapely.Geometry) -> Any:
    """Return a matplotlib path of a (multi)polygon: every ring closed, holes kept.

    Exteriors run counter-clockwise and holes clockwise whatever the input's
    orientation: matplotlib fills by the non-zero winding rule, so a hole
    running the exterior's way would be filled. All rings at once (a city's
    layer has hundreds of thousands of holes).
    """
    from matplotlib.path import Path

    rings, part_of = shapely.get_rings(shapely.get_parts(geom), return_index=True)
    if len(rings) == 0:
        return Path(np.zeros((0, 2)))
    shell = np.r_[True, part_of[1:] != part_of[:-1]]
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    n = np.bincount(ring_of, minlength=len(rings))
    start = np.r_[0, np.cumsum(n)[:-1]]
    flip = np.asarray(shapely.is_ccw(rings), dtype=bool) != shell  # holes run clockwise
    pos = np.arange(len(xy))
    first, last = start[ring_of], start[ring_of] + n[ring_of] - 1
    xy = xy[np.where(flip[ring_of], first + last - pos, pos)]
    codes = np.full(len(xy), Path.LINETO, dtype=np.uint8)
    codes[start] = Path.MOVETO
    codes[start + n - 1] = Path.CLOSEPOLY
    keep = (n >= 3)[ring_of]
    return Path(xy[keep], codes[keep])


def draw_polygons(ax: Axes, geoms: Any, *, facecolors: Any, **style: Any) -> None:
    """Draw (multi)polygons as one path collection, without a redraw or a change of view.

    `facecolors` is one colour or one per geometry; `style` goes to
    :class:`matplotlib.collections.PathCollection` (``alpha``,
    ``edgecolor``, ``linewidth``, ``zorder``). See :func:`draw_outlines`
    for why not ``GeoSeries.plot``.
    """
    from matplotlib.collections import PathCollection

    arr = np.asarray(gpd.GeoSeries(geoms).to_numpy(), dtype=object)
    keep = np.isin(shapely.get_type_id(arr), (3, 6)) & ~shapely.is_empty(arr)
    if isinstance(facecolors, np.ndarray) and facecolors.ndim == 2:
        facecolors = facecolors[keep]
    paths = [_polygon_path(g) for g in arr[keep]]
    ax.add_collection(PathCollection(paths, facecolors=facecolors, **style), autolim=False)


def draw_markers(ax: Axes, geoms: Any, **style: Any) -> None:
    """Draw a marker at each geometry (its representative point) with ``ax.scatter``."""
    arr = np.asarray(gpd.GeoSeries(geoms).to_numpy(), dtype=object)
    pts = shapely.point_on_surface(arr[~shapely.is_empty(arr)])
    ax.scatter(shapely.get_x(pts), shapely.get_y(pts), **style)


def add_outlines_and_view(
    ax: Axes, prepared: PreparedArea, handles: list[Any], *, lang: Lang = "en"
) -> None:
    """Draw the district boundary and analysed extent, and frame the view on the extent."""
    from lifecircle.i18n import text

    draw_outlines(
        ax, prepared.boundary.to_crs(prepared.crs).geometry, color="black", linewidth=1.2, zorder=5
    )
    handles.append(Line2D([], [], color="black", label=text("district_boundary", lang)))
    draw_outlines(
        ax, prepared.extent.geometry, color="orange", linewidth=1, linestyle="--", zorder=5
    )
    handles.append(
        Line2D([], [], color="orange", linestyle="--", label=text("analysed_extent", lang))
    )
    minx, miny, maxx, maxy = map_bounds(prepared)
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def add_map_furniture(ax: Axes, handles: list[Any], *, font: FontProperties | None = None) -> None:
    """Add the legend (in `font`, e.g. the CJK font), scale bar, north arrow and attribution."""
    prop = _font_kw(font, 8).get("fontproperties")
    ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9, prop=prop)
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


def map_bounds(prepared: PreparedArea) -> tuple[float, float, float, float]:
    """Return the map view: the analysed extent's bounds widened by 300 m on each side."""
    minx, miny, maxx, maxy = prepared.extent.geometry.iloc[0].bounds
    return float(minx) - 300, float(miny) - 300, float(maxx) + 300, float(maxy) + 300


def pixel_size_m(ax: Axes, bounds: tuple[float, float, float, float]) -> float:
    """Return the metres per pixel of a map of `bounds` on `ax` saved at :data:`MAP_DPI`."""
    fig = ax.get_figure(root=True)
    dpi = fig.dpi if fig is not None else MAP_DPI
    box = ax.get_window_extent()
    width_px = max(box.width / dpi * MAP_DPI, 1.0)
    height_px = max(box.height / dpi * MAP_DPI, 1.0)
    minx, miny, maxx, maxy = bounds
    return max((maxx - minx) / width_px, (maxy - miny) / height_px, 1e-9)


def street_raster(
    network: WalkNetwork,
    bounds: tuple[float, float, float, float],
    pixel_m: float,
    *,
    chunk: int = 500_000,
) -> npt.NDArray[np.bool_]:
    """Return a boolean image (row 0 = north) with ink on every pixel a street passes through.

    Each edge is sampled at most half a pixel apart, ends included, and the
    pixels of the samples are inked: a street is a line of 8-connected pixels
    without gaps (like a one-pixel-wide line drawn by a renderer).
    """
    minx, miny, maxx, maxy = bounds
    n_cols = max(1, int(np.ceil((maxx - minx) / pixel_m)))
    n_rows = max(1, int(np.ceil((maxy - miny) / pixel_m)))
    img = np.zeros(n_rows * n_cols, dtype=bool)
    xu, yu, xv, yv = (
        network.x[network.u],
        network.y[network.u],
        network.x[network.v],
        network.y[network.v],
    )
    inside = (
        (np.maximum(xu, xv) >= minx)
        & (np.minimum(xu, xv) <= maxx)
        & (np.maximum(yu, yv) >= miny)
        & (np.minimum(yu, yv) <= maxy)
    )
    edges = np.flatnonzero(inside)
    n_samples = np.ceil(np.hypot(xv - xu, yv - yu)[edges] / (pixel_m / 2)).astype(np.int64) + 1
    for lo in range(0, len(edges), chunk):
        e, k = edges[lo : lo + chunk], n_samples[lo : lo + chunk]
        which = np.repeat(np.arange(len(e)), k)
        step = np.arange(len(which)) - np.repeat(np.cumsum(k) - k, k)
        f = step / np.maximum(k - 1, 1)[which]
        x = xu[e][which] + f * (xv[e] - xu[e])[which]
        y = yu[e][which] + f * (yv[e] - yu[e])[which]
        col = np.floor((x - minx) / pixel_m).astype(np.int64)
        row = np.floor((maxy - y) / pixel_m).astype(np.int64)
        ok = (col >= 0) & (col < n_cols) & (row >= 0) & (row < n_rows)
        img[row[ok] * n_cols + col[ok]] = True
    return img.reshape(n_rows, n_cols)


def show_ink(
    ax: Axes,
    ink: npt.NDArray[np.bool_],
    bounds: tuple[float, float, float, float],
    pixel_m: float,
    *,
    color: str,
    zorder: float,
) -> AxesImage:
    """Draw a boolean image (row 0 = north, from the top left of `bounds`) in `color`."""
    rgba = np.zeros((*ink.shape, 4), dtype=np.float32)
    rgba[ink] = to_rgba(color)
    n_rows, n_cols = ink.shape
    minx, maxy = bounds[0], bounds[3]
    return ax.imshow(
        rgba,
        extent=(minx, minx + n_cols * pixel_m, maxy - n_rows * pixel_m, maxy),
        origin="upper",
        interpolation="nearest",
        zorder=zorder,
        rasterized=True,
    )


def add_streets(
    ax: Axes,
    network: WalkNetwork,
    *,
    bounds: tuple[float, float, float, float],
    color: str = "#bbbbbb",
    zorder: float = 1,
) -> AxesImage:
    """Draw every street as one image at the map's pixel size (fast for millions of edges).

    Streets are rasterised (:func:`street_raster`) at the pixel size of the
    saved map (:func:`pixel_size_m`): one pixel wide, the width of a 0.4 pt
    line at :data:`MAP_DPI`, whatever the number of edges.
    """
    pixel_m = pixel_size_m(ax, bounds)
    ink = _street_raster_once(network, bounds, pixel_m)
    return show_ink(ax, ink, bounds, pixel_m, color=color, zorder=zorder)


_LAST_RASTER: list[tuple[WalkNetwork, tuple[float, ...], npt.NDArray[np.bool_]]] = []


def _street_raster_once(
    network: WalkNetwork, bounds: tuple[float, float, float, float], pixel_m: float
) -> npt.NDArray[np.bool_]:
    """:func:`street_raster`, reused while the network, view and pixel size stay the same.

    A run draws the same streets in every panel and map (4 small multiples, 5
    gap maps per language): at city scale each raster scans millions of edges.
    The slot holds the network itself, so an identity match cannot be a reused id.
    """
    key = (*bounds, pixel_m)
    if _LAST_RASTER and _LAST_RASTER[0][0] is network and _LAST_RASTER[0][1] == key:
        return _LAST_RASTER[0][2]
    ink = street_raster(network, bounds, pixel_m)
    _LAST_RASTER[:] = [(network, key, ink)]
    return ink


RASTER_POINTS_ABOVE = 50_000  # more points than this are drawn as one image


def _ink_markers_py(
    fx: npt.NDArray[np.float64],
    fy: npt.NDArray[np.float64],
    r: float,
    inner: float,
    reach: int,
    img: npt.NDArray[np.bool_],
) -> None:  # pragma: no cover - compiled by numba in _ink_markers
    """Ink the pixels whose centres lie within `r` (and not within `inner`) of each point."""
    n_rows, n_cols = img.shape
    for k in range(fx.size):
        col0, row0 = int(np.floor(fx[k])), int(np.floor(fy[k]))
        for dr in range(-reach, reach + 1):
            row = row0 + dr
            if row < 0 or row >= n_rows:
                continue
            for dc in range(-reach, reach + 1):
                col = col0 + dc
                if col < 0 or col >= n_cols:
                    continue
                d = np.hypot(col + 0.5 - fx[k], row + 0.5 - fy[k])
                if (d <= r or (dr == 0 and dc == 0)) and d >= inner:
                    img[row, col] = True


def _ink_markers() -> Any:
    """Return the compiled marker loop (:func:`lifecircle.fields.compiled`)."""
    from lifecircle.fields import compiled

    return compiled(_ink_markers_py)


def point_raster(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    bounds: tuple[float, float, float, float],
    pixel_m: float,
    *,
    diameter_px: float,
    ring_px: float | None = None,
) -> npt.NDArray[np.bool_]:
    """Return a boolean image (row 0 = north) inked where round markers of the points fall.

    A marker inks the pixels whose centres lie within ``diameter_px / 2``
    pixels of the point (at least its own pixel); with `ring_px`, those
    within ``ring_px / 2`` of the circle of that diameter (a hollow marker's
    stroke, as a renderer centres it on the outline).
    """
    minx, miny, maxx, maxy = bounds
    n_cols = max(1, int(np.ceil((maxx - minx) / pixel_m)))
    n_rows = max(1, int(np.ceil((maxy - miny) / pixel_m)))
    fx = (np.asarray(x, dtype=float) - minx) / pixel_m
    fy = (maxy - np.asarray(y, dtype=float)) / pixel_m
    r = max(diameter_px / 2, 0.5)
    inner = -1.0
    if ring_px is not None:
        r, inner = r + ring_px / 2, max(r - ring_px / 2, 0.0)
    img = np.zeros((n_rows, n_cols), dtype=np.bool_)
    _ink_markers()(fx, fy, r, inner, int(np.ceil(r)) + 1, img)  # compiled: 0.9 s -> 0.05 s
    return img


def add_points(
    ax: Axes,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    color: str,
    size: float,
    bounds: tuple[float, float, float, float] | None,
    hollow_width: float | None = None,
    zorder: float = 3,
) -> None:
    """Draw round markers of area `size` pt² (hollow with an edge of `hollow_width` pt).

    Up to :data:`RASTER_POINTS_ABOVE` points (or without `bounds`) this is a
    scatter; more are drawn as one image at the saved map's pixel size
    (:func:`point_raster`): rendering half a million markers cost seconds
    per map, the image a fraction of one.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) == 0:
        return
    if bounds is None or len(x) <= RASTER_POINTS_ABOVE:
        style: dict[str, Any] = (
            {"facecolors": "none", "edgecolors": color, "linewidths": hollow_width}
            if hollow_width is not None
            else {"c": color, "linewidths": 0}
        )
        ax.scatter(x, y, s=size, zorder=zorder, rasterized=True, **style)
        return
    pixel_m = pixel_size_m(ax, bounds)
    px_per_pt = MAP_DPI / 72
    ink = point_raster(
        x,
        y,
        bounds,
        pixel_m,
        diameter_px=np.sqrt(size) * px_per_pt,
        ring_px=None if hollow_width is None else hollow_width * px_per_pt,
    )
    show_ink(ax, ink, bounds, pixel_m, color=color, zorder=zorder)


def add_residents(
    ax: Axes,
    residents: gpd.GeoDataFrame,
    handles: list[Any],
    *,
    label: str,
    size: float = 6,
    bounds: tuple[float, float, float, float] | None = None,
) -> None:
    """Draw resident points in black and add their legend entry (one image above 50,000)."""
    pts = residents.geometry.to_numpy()
    add_points(ax, shapely.get_x(pts), shapely.get_y(pts), color="black", size=size, bounds=bounds)
    handles.append(
        Line2D([], [], marker="o", color="black", linestyle="", markersize=3, label=label)
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
    fig, ax = new_axes(ax, (10, 10))
    add_streets(ax, prepared.network, bounds=map_bounds(prepared), color="#bbbbbb")
    handles: list[Any] = [Line2D([], [], color="#bbbbbb", label="walkable streets")]
    if category_isochrones is not None:
        for cat, geom in zip(
            category_isochrones["category"], category_isochrones.geometry, strict=True
        ):
            from lifecircle.webmap import simplify_rings

            color = CATEGORY_COLORS.get(str(cat), "grey")
            # half a pixel, ring by ring: GEOS's polygon simplification (it repairs each
            # result) took minutes on a city's layer, and a sub-pixel crossing is invisible
            tolerance_m = pixel_size_m(ax, map_bounds(prepared)) / 2
            draw_polygons(
                ax,
                simplify_rings(np.array([geom], dtype=object), tolerance_m),
                facecolors=color,
                alpha=0.15,
                edgecolor=color,
                linewidth=0.5,
                zorder=2,
            )
            handles.append(Patch(facecolor=color, alpha=0.3, label=f"{cat} reach"))
    fac = prepared.facilities
    for cat, color in CATEGORY_COLORS.items():
        sub = fac.loc[fac["category"] == cat]
        if len(sub):
            draw_markers(
                ax,
                sub.geometry,
                c=color,
                s=18,
                marker="^",
                edgecolors="black",
                linewidths=0.3,
                zorder=4,
            )
            handles.append(Line2D([], [], marker="^", color=color, linestyle="", label=cat))
    uncovered = residents.loc[~residents["covered_all_categories"].to_numpy()]
    add_residents(
        ax,
        uncovered,
        handles,
        label="residents not covered (all categories)",
        bounds=map_bounds(prepared),
    )
    add_outlines_and_view(ax, prepared, handles)
    all_cov = summary["all_categories"]["coverage"]
    pct = "n/a" if all_cov is None else f"{all_cov * 100:.1f}%"
    params = summary["parameters"]
    ax.set_title(
        f"{prepared.key}: residents within {params['threshold_label']} of every category: {pct}"
        f" (target {params['target'] * 100:g}%)",
        fontsize=11,
    )
    add_map_furniture(ax, handles)
    return fig, ax


def cjk_font() -> FontProperties | None:
    """Return a font that renders Chinese (e.g. Debian's fonts-noto-cjk), or None.

    Maps label zones with it; without one, Chinese labels are left off (a
    clean fallback: matplotlib would otherwise draw empty boxes).
    """
    from matplotlib import font_manager

    for font in font_manager.fontManager.ttflist:
        if "CJK" in font.name:
            return FontProperties(fname=font.fname)
    # installed after matplotlib built its font cache: look on disk
    for path in font_manager.findSystemFonts():
        if "CJK" in path and path.lower().endswith((".ttc", ".otf", ".ttf")):
            return FontProperties(fname=path)
    return None


def _has_cjk(text: str) -> bool:
    return any("\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in text)


def plot_gap_map(
    prepared: PreparedArea,
    residents: gpd.GeoDataFrame,
    rings: gpd.GeoDataFrame,
    clusters: gpd.GeoDataFrame,
    category: str,
    *,
    admin: gpd.GeoDataFrame | None = None,
    ax: Axes | None = None,
    lang: Lang = "en",
) -> tuple[Figure, Axes]:
    """Map the gaps of one category (or ``all_categories``), titled and labelled in `lang`.

    Distance rings are coloured by the category's coverage (a choropleth),
    with administrative units outlined and labelled, the analysed extent,
    streets, gap clusters (ranked), facilities, legend, scale bar, north
    arrow and the OSM attribution.

    Parameters
    ----------
    prepared
        The prepared area.
    residents
        Residents with ``covered_<category>`` and ``ring`` columns.
    rings
        Ring polygons with a ``coverage`` column for this category.
    clusters
        Gap clusters (polygons with ``rank``).
    category
        A category name or ``all_categories``.
    admin
        Administrative units with ``zone`` and ``coverage`` columns, optional.
    ax
        Axes to draw on.
    lang
        ``"en"`` or ``"zh"``: title, legend and colour bar label.

    Returns
    -------
    fig, ax
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    from lifecircle.i18n import category_label, text
    from lifecircle.report import category_display
    from lifecircle.webmap import area_name

    fig, ax = new_axes(ax, (10, 10))
    cmap = colormaps["RdYlGn"]
    norm = Normalize(vmin=0.0, vmax=1.0)
    shown = rings.loc[rings["coverage"].notna()]
    if len(shown):
        draw_polygons(
            ax,
            shown.geometry,
            facecolors=cmap(norm(shown["coverage"].to_numpy(dtype=float))),
            alpha=0.35,
            edgecolor="grey",
            linewidth=0.6,
            zorder=0,
        )
    add_streets(ax, prepared.network, bounds=map_bounds(prepared), color="#9a9a9a")
    handles: list[Any] = [Line2D([], [], color="#9a9a9a", label=text("walkable_streets", lang))]
    font = cjk_font()
    if admin is not None and len(admin):
        draw_outlines(ax, admin.geometry, color="#444444", linewidth=0.8, linestyle=":", zorder=2)
        handles.append(
            Line2D([], [], color="#444444", linestyle=":", label=text("gap_map_units", lang))
        )
        for name, geom in zip(admin["zone"], admin.geometry, strict=True):
            if geom.is_empty or (_has_cjk(str(name)) and font is None):
                continue
            p = geom.representative_point()
            ax.annotate(
                str(name),
                (p.x, p.y),
                fontsize=8,
                ha="center",
                fontproperties=font,
                annotation_clip=True,
                zorder=6,
            )
    fac = prepared.facilities
    cats = list(CATEGORY_COLORS) if category == "all_categories" else [category]
    for cat in cats:
        sub = fac.loc[fac["category"] == cat]
        if len(sub):
            draw_markers(
                ax,
                sub.geometry,
                c=CATEGORY_COLORS[cat],
                s=16,
                marker="^",
                edgecolors="black",
                linewidths=0.3,
                zorder=5,
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="^",
                    color=CATEGORY_COLORS[cat],
                    linestyle="",
                    label=text("gap_map_facility", lang).format(cat=category_label(cat, lang)),
                )
            )
    uncovered = residents.loc[~residents[f"covered_{category}"].to_numpy(dtype=bool)]
    add_residents(
        ax,
        uncovered,
        handles,
        label=text("uncovered_residents", lang),
        size=5,
        bounds=map_bounds(prepared),
    )
    if len(clusters):
        draw_outlines(ax, clusters.geometry, color="magenta", linewidth=1.4, zorder=4)
        for rank, geom in zip(clusters["rank"].head(10), clusters.geometry.head(10), strict=True):
            p = geom.representative_point()
            ax.annotate(
                str(int(rank)),
                (p.x, p.y),
                color="magenta",
                fontsize=9,
                fontweight="bold",
                zorder=7,
                annotation_clip=True,
            )
        handles.append(Line2D([], [], color="magenta", label=text("gap_map_clusters", lang)))
    add_outlines_and_view(ax, prepared, handles, lang=lang)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=norm)
    cbar = fig.colorbar(sm, ax=ax, shrink=0.5, pad=0.01)
    zh = font if lang == "zh" else None
    cbar.set_label(text("gap_map_colorbar", lang), **_font_kw(zh, 10))
    title = text("gap_map_title", lang).format(
        area=area_name(prepared, lang),
        cat=category_display(category, lang),  # lower case inside an English sentence
    )
    ax.set_title(title, **_font_kw(zh, 11))
    ax.set_xlabel("")  # no ticks: the CRS axis names ("Easting [metre]") say nothing here
    ax.set_ylabel("")
    add_map_furniture(ax, handles, font=zh)
    return fig, ax


def plot_plan_curve(
    category: str,
    coverage_now: float,
    curve_coverage: list[float],
    target: float,
    *,
    sites_needed: int | None = None,
    ax: Axes | None = None,
    lang: Lang = "en",
) -> tuple[Figure, Axes]:
    """Chart coverage against the number of new sites, with the target line (words in `lang`).

    Returns
    -------
    fig, ax
    """
    from lifecircle.i18n import category_label, text

    fig, ax = new_axes(ax, (7, 4.5))
    font = cjk_font() if lang == "zh" else None
    color = CATEGORY_COLORS.get(category, "black")
    ks = np.arange(len(curve_coverage) + 1)
    values = np.array([coverage_now, *curve_coverage]) * 100
    ax.plot(ks, values, marker="o", color=color, label=text("plan_curve_line", lang))
    ax.axhline(target * 100, color="black", linestyle="--", linewidth=1, label=text("target", lang))
    if sites_needed is not None:
        ax.axvline(sites_needed, color="grey", linestyle=":", linewidth=1)
        ax.annotate(
            text("plan_sites_reach", lang).format(n=sites_needed),
            (sites_needed, target * 100),
            textcoords="offset points",
            xytext=(5, -15),
            **_font_kw(font, 8),
        )
    ax.set_xlabel(text("plan_new_sites_axis", lang), **_font_kw(font, 10))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "1.5 sites"
    ax.set_ylabel(text("plan_covered_axis", lang), **_font_kw(font, 10))
    ax.set_ylim(min(values.min(), target * 100) - 5, 101)
    label = category_label(category.split(":")[0], lang)
    ax.set_title(text("plan_curve_title", lang).format(cat=label), **_font_kw(font, 11))
    ax.legend(loc="lower right", prop=_font_kw(font, 8).get("fontproperties"), fontsize=8)
    ax.grid(alpha=0.3)
    return fig, ax


def plot_plan_map(
    prepared: PreparedArea,
    residents: gpd.GeoDataFrame,
    sites: gpd.GeoDataFrame,
    category: str,
    *,
    covered_after: np.ndarray,
    ax: Axes | None = None,
    lang: Lang = "en",
) -> tuple[Figure, Axes]:
    """Map proposed sites, existing facilities and the residents still uncovered (in `lang`).

    Parameters
    ----------
    prepared
        The area.
    residents
        Residents (metric CRS).
    sites
        Proposed sites with ``rank``.
    category
        The category planned.
    covered_after
        Boolean per resident: covered once the sites are built.

    Returns
    -------
    fig, ax
    """
    from lifecircle.i18n import category_label, text
    from lifecircle.report import area_display

    fig, ax = new_axes(ax, (10, 10))
    font = cjk_font() if lang == "zh" else None
    add_streets(ax, prepared.network, bounds=map_bounds(prepared), color="#bbbbbb")
    color = CATEGORY_COLORS.get(category, "black")
    handles: list[Any] = [Line2D([], [], color="#bbbbbb", label=text("walkable_streets", lang))]
    fac = prepared.facilities.loc[prepared.facilities["category"] == category]
    if len(fac):
        draw_markers(ax, fac.geometry, c=color, marker="^", s=30, edgecolors="black", zorder=4)
    label = category_label(category, lang)
    handles.append(
        Line2D(
            [],
            [],
            marker="^",
            color=color,
            linestyle="",
            label=text("plan_existing", lang).format(cat=label),
        )
    )
    add_residents(
        ax,
        residents.loc[~covered_after],
        handles,
        label=text("plan_left", lang),
        bounds=map_bounds(prepared),
    )
    if len(sites):
        pts = gpd.GeoSeries(sites.geometry.representative_point(), crs=sites.crs)
        draw_markers(ax, pts, c="gold", marker="*", s=160, edgecolors="black", zorder=6)
        for rank, x, y in zip(sites["rank"], pts.x, pts.y, strict=True):
            ax.annotate(
                str(rank),
                (x, y),
                xytext=(6, 6),
                textcoords="offset points",
                fontsize=9,
                weight="bold",
                zorder=7,
            )
    handles.append(
        Line2D(
            [],
            [],
            marker="*",
            color="gold",
            markeredgecolor="black",
            linestyle="",
            markersize=12,
            label=text("plan_proposed", lang),
        )
    )
    add_outlines_and_view(ax, prepared, handles, lang=lang)
    title = text("plan_map_title", lang).format(area=area_display(prepared.key, lang), cat=label)
    ax.set_title(title, **_font_kw(font, 11))
    add_map_furniture(ax, handles, font=font)
    return fig, ax


def plot_coverage_small_multiples(
    prepared: PreparedArea,
    residents: gpd.GeoDataFrame,
    category_isochrones: gpd.GeoDataFrame | None,
    summary: dict[str, Any],
    *,
    lang: Lang = "en",
    panel_in: float = 6.5,
) -> tuple[Figure, npt.NDArray[Any]]:
    """Map coverage as one panel per category (small multiples).

    Each panel shows that category's walking reach (its dissolved isochrone),
    its facilities and the residents it leaves uncovered, on the same streets,
    outlines and view, so the panels compare at a glance (four translucent
    layers on one map mix into grey).

    Parameters
    ----------
    prepared
        The prepared area.
    residents
        Residents with ``covered_<category>`` columns.
    category_isochrones
        Dissolved reach per category (``category``, geometry), or None.
    summary
        The ``coverage.json`` dict (categories, coverage, parameters).
    lang
        ``"en"`` or ``"zh"``.
    panel_in
        Width of one panel in inches.

    Returns
    -------
    fig, axes
        The figure and the array of its axes (unused panels hidden).
    """
    from lifecircle.i18n import text
    from lifecircle.webmap import area_name

    cats = list(summary["categories"])
    ncols = 2 if len(cats) <= 4 else 3
    nrows = max(1, -(-len(cats) // ncols))
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_in * ncols, panel_in * nrows + 0.8),
        squeeze=False,
        layout="constrained",  # laid out when drawn: panel titles never overlap the maps above
    )
    font = cjk_font() if lang == "zh" else None
    iso = category_isochrones if category_isochrones is not None else None
    params = summary["parameters"]
    with deferred_drawing(fig):
        for ax, cat in zip(axes.flat, cats, strict=False):
            _coverage_panel(ax, cat, prepared, residents, iso, summary, font, lang)
    for ax in axes.flat[len(cats) :]:
        ax.set_visible(False)
    _small_multiples_legend(fig, font, lang)
    fig.suptitle(
        text("small_multiples_title", lang).format(
            area=area_name(prepared, lang),  # 浦东新区 / Pudong New Area, not the cache key
            minutes=f"{params['minutes']:g}",
            target=f"{params['target'] * 100:g}%",
        ),
        **_font_kw(font, 14),
    )
    return fig, axes


@contextlib.contextmanager
def deferred_drawing(fig: Figure) -> Iterator[None]:
    """Skip the full redraw geopandas asks for after every layer; draw once when shown or saved.

    ``GeoDataFrame.plot`` calls ``canvas.draw_idle()``, which on the Agg
    canvas renders the whole figure: a map of n layers rendered n times.
    """
    canvas = fig.canvas
    canvas.draw_idle = lambda *args, **kwargs: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        del canvas.draw_idle  # back to the class's method


def _coverage_panel(
    ax: Axes,
    cat: str,
    prepared: PreparedArea,
    residents: gpd.GeoDataFrame,
    iso: gpd.GeoDataFrame | None,
    summary: dict[str, Any],
    font: FontProperties | None,
    lang: Lang,
) -> None:
    """Draw one category's panel of :func:`plot_coverage_small_multiples`."""
    from lifecircle.i18n import category_label, text

    params = summary["parameters"]
    color = CATEGORY_COLORS.get(cat, "grey")
    add_outlines_and_view(ax, prepared, [])  # sets the view the street raster is drawn for
    add_streets(ax, prepared.network, bounds=map_bounds(prepared))
    if iso is not None:
        sub_iso = iso.loc[iso["category"] == cat]
        if len(sub_iso):
            from lifecircle.webmap import simplify_rings

            tolerance_m = pixel_size_m(ax, map_bounds(prepared)) / 2  # half a pixel
            draw_polygons(
                ax,
                simplify_rings(sub_iso.geometry.to_numpy(), tolerance_m),
                facecolors=color,
                alpha=0.3,
                edgecolor=color,
                linewidth=0.8,
                zorder=2,
            )
    fac = prepared.facilities.loc[prepared.facilities["category"] == cat]
    if len(fac):
        draw_markers(
            ax,
            fac.geometry,
            c=color,
            marker="^",
            s=40,
            edgecolors="black",
            linewidths=0.5,
            zorder=4,
        )
    col = f"covered_{cat}"
    if col in residents.columns:
        left = residents.loc[~residents[col].to_numpy(dtype=bool)]
        add_residents(ax, left, [], label="", size=4, bounds=map_bounds(prepared))
    ax.set_xlabel("")
    ax.set_ylabel("")
    add_scale_bar(ax)
    share = summary["categories"][cat]["coverage"]
    pct = "–" if share is None else f"{share * 100:.1f}%"
    title = text("small_multiple_title", lang).format(
        category=category_label(cat, lang), pct=pct, minutes=f"{params['minutes']:g}"
    )
    if not len(fac):
        note = text("no_facility", lang)
        title += f"（{note}）" if lang == "zh" else f" ({note})"  # full-width brackets in Chinese
    ax.set_title(title, color=color, fontweight="bold", **_font_kw(font, 12))


def _font_kw(font: FontProperties | None, size: float) -> dict[str, Any]:
    if font is None:
        return {"fontsize": size}
    fp = font.copy()
    fp.set_size(size)
    return {"fontproperties": fp}


def _small_multiples_legend(fig: Figure, font: FontProperties | None, lang: Lang) -> None:
    from lifecircle.i18n import text

    handles = [
        Line2D([], [], color="#bbbbbb", label=text("walkable_streets", lang)),
        Patch(facecolor="#999999", alpha=0.4, label=text("isochrone", lang)),
        Line2D(
            [],
            [],
            marker="^",
            color="#999999",
            markeredgecolor="black",
            linestyle="",
            markersize=8,
            label=text("facilities", lang),
        ),
        Line2D(
            [],
            [],
            marker="o",
            color="black",
            linestyle="",
            markersize=3,
            label=text("uncovered_residents", lang),
        ),
        Line2D([], [], color="black", label=text("district_boundary", lang)),
        Line2D([], [], color="orange", linestyle="--", label=text("analysed_extent", lang)),
    ]
    kw = _font_kw(font, 10)
    fig.legend(
        handles=handles,
        loc="outside lower center",  # constrained layout keeps room for it under the panels
        ncol=len(handles),
        frameon=False,
        prop=kw.get("fontproperties"),
        fontsize=None if font else 10,
    )
    fig.text(0.99, 0.0, ATTRIBUTION, ha="right", va="bottom", fontsize=8)
