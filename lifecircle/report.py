"""Plain-text and HTML/Markdown renderings of results, in English or Chinese.

Every number a reader sees goes through one of the ``fmt_*`` helpers, so the
tables read the same everywhere: percentages with one decimal, whole metres,
thousands separators, yes/no verdicts and blanks (never "None", "nan" or
"False") where a value does not exist. Words come from :mod:`lifecircle.i18n`.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lifecircle.i18n import Lang, category_label, text

HTML_LANG = {"en": "en", "zh": "zh-CN"}


def _number(value: Any) -> float | None:
    """Return `value` as a finite float, or None (None, NaN, inf, text, bools)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fmt_pct(share: Any, digits: int = 1) -> str:
    """Format a share (0-1) as a percentage; blank when missing.

    Examples
    --------
    >>> fmt_pct(0.46312), fmt_pct(None), fmt_pct(float("nan")), fmt_pct(1.0)
    ('46.3%', '', '', '100.0%')
    """
    x = _number(share)
    return "" if x is None else f"{x * 100:.{digits}f}%"


def fmt_int(value: Any) -> str:
    """Format a count or an amount with thousands separators; blank when missing.

    Examples
    --------
    >>> fmt_int(1234.4), fmt_int(None), fmt_int(float("nan"))
    ('1,234', '', '')
    """
    x = _number(value)
    return "" if x is None else f"{round(x):,}"


def fmt_m(value: Any) -> str:
    """Format metres rounded to the metre (blank when missing or beyond the search limit).

    Examples
    --------
    >>> fmt_m(8.403), fmt_m(1194.61), fmt_m(None)
    ('8', '1,195', '')
    """
    return fmt_int(value)


def fmt_persons(value: Any) -> str:
    """Format an estimate of persons to three significant figures (it is no census count).

    Examples
    --------
    >>> fmt_persons(28143.7), fmt_persons(873.2), fmt_persons(41.6), fmt_persons(None)
    ('28,100', '873', '42', '')
    """
    x = _number(value)
    if x is None:
        return ""
    if abs(x) < 1000:
        return f"{round(x):,}"
    digits = len(str(int(abs(x)))) - 3
    return f"{int(round(x, -digits)):,}"


def fmt_num(value: Any, digits: int = 2, *, sign: bool = False) -> str:
    """Format a plain number with `digits` decimals; blank when missing.

    Examples
    --------
    >>> fmt_num(0.34992, 3), fmt_num(-0.5, 2, sign=True), fmt_num(None)
    ('0.350', '-0.50', '')
    """
    x = _number(value)
    if x is None:
        return ""
    return f"{x:+,.{digits}f}" if sign else f"{x:,.{digits}f}"


def fmt_yes_no(value: Any, lang: Lang = "en") -> str:
    """Format a verdict as yes/no (是/否); blank when missing.

    Examples
    --------
    >>> fmt_yes_no(True), fmt_yes_no(False, "zh"), fmt_yes_no(None)
    ('yes', '否', '')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return text("yes" if bool(value) else "no", lang)


def persons_basis_text(residents: dict[str, Any], lang: Lang = "en") -> str:
    """Say how the estimated residents were obtained, from ``data.residents`` of coverage.json.

    Examples
    --------
    >>> persons_basis_text({"persons_method": "floor_area", "persons_parameter": 37.8}, "zh")
    '居住建筑面积 ÷ 人均 37.8 平方米'
    """
    method = residents.get("persons_method") or "unknown"
    value = residents.get("persons_parameter")
    shown = f"{value:g}" if method == "floor_area" and value else fmt_int(value)
    return text(f"basis_{method}", lang).format(value=shown)


def resident_basis_label(basis: Any, lang: Lang = "en") -> str:
    """Name the residents' basis ("buildings", "population+buildings" ...) in `lang`.

    Examples
    --------
    >>> resident_basis_label("population+buildings", "zh")
    '人口图层+居住建筑'
    >>> resident_basis_label("buildings")
    'buildings'
    """
    parts = [p for p in str(basis or "").split("+") if p]
    return "+".join(
        text(f"basis_{p}", lang) if text(f"basis_{p}", lang) != f"basis_{p}" else p for p in parts
    )


def area_display(key: str, lang: Lang = "en") -> str:
    """Name a registry district in `lang` (浦东新区 / Pudong New Area); other areas by their key.

    Examples
    --------
    >>> area_display("pudong", "zh"), area_display("my_bbox", "zh")
    ('浦东新区', 'my_bbox')
    """
    from lifecircle.districts import load_registry

    d = load_registry().get(str(key))
    if d is None:
        return str(key)
    return str(d.name_zh if lang == "zh" else d.name) or str(key)


def threshold_text(params: dict[str, Any], lang: Lang = "en") -> str:
    """Describe the walking threshold ("a 15-minute walk (1,000 m)").

    Examples
    --------
    >>> threshold_text({"threshold_m": 1000.0, "minutes": 15.0})
    'a 15-minute walk (1,000 m)'
    """
    if params.get("threshold_m") is None:
        return text("threshold_tiers", lang).format(label=params.get("threshold_label", ""))
    return text("threshold_walk", lang).format(
        minutes=f"{params['minutes']:g}", metres=fmt_m(params["threshold_m"])
    )


def services_text(categories: list[str], lang: Lang = "en") -> str:
    """Name what "all categories" means: all four services, or the one service analysed."""
    if len(categories) == 1:
        return text("one_service", lang).format(cat=_cat(categories[0], lang))
    if len(categories) == 4:
        return text("all_four_services", lang)
    return text("all_n_services", lang).format(n=len(categories))


def category_display(category: str, lang: Lang = "en") -> str:
    """Return a category's name inside a sentence (lower case in English).

    Examples
    --------
    >>> category_display("all_categories"), category_display("elderly_care", "zh")
    ('all four services', '养老')
    """
    label = category_label("all" if category == "all_categories" else category, lang)
    return label.lower() if lang == "en" else label


_cat = category_display


def headline(coverage: dict[str, Any], lang: Lang = "en") -> str:
    """Return the report's first sentence: the share reaching every category, and the target.

    Examples
    --------
    >>> cov = {"parameters": {"threshold_m": 1000.0, "minutes": 15.0, "target": 0.99,
    ...     "categories": ["school", "health", "elderly_care", "culture"]},
    ...     "all_categories": {"coverage": 0.4631}, "data": {"residents": {}}}
    >>> headline(cov)
    '46.3% of residents live within a 15-minute walk (1,000 m) of all four services; the target is 99%.'
    """  # noqa: E501
    params = coverage["parameters"]
    share = coverage["all_categories"]["coverage"]
    first = text("headline_all", lang).format(
        share=fmt_pct(share).rstrip("%") or text("na", lang),
        threshold=threshold_text(params, lang),
        what=services_text(list(params["categories"]), lang),
        target=f"{params['target'] * 100:g}",
    )
    res = coverage["data"]["residents"]
    total = res.get("estimated_residents")
    covered = coverage["all_categories"].get("estimated_residents_covered")
    if total is None or covered is None:
        return first
    return (
        first
        + (" " if lang == "en" else "")
        + text("headline_people", lang).format(
            covered=fmt_persons(covered),
            total=fmt_persons(total),
            basis=persons_basis_text(res, lang),
        )
    )


def format_fetch_summary(manifest: dict[str, Any]) -> str:
    """Render the ``fetch`` summary: network, facilities, residents, extent."""
    net = manifest["network"]
    ext = manifest["extent"]
    res = manifest["residents"]
    lines = [
        f"area: {manifest['key']}  (CRS {manifest['crs']}; "
        f"OSM data of {manifest['osm']['osm_base']})",
        f"network: {net['nodes']:,} nodes, {net['edges']:,} edges, {net['length_km']:,.1f} km, "
        f"{net['components']} components (largest holds {net['largest_component_share'] * 100:.1f}%"
        " of street length)",
        "facilities (OSM + imported):",
    ]
    for cat, info in manifest["facilities"].items():
        subs = ", ".join(f"{k} {v}" for k, v in info["subtypes"].items()) or "none"
        lines.append(
            f"  {cat:<13} {info['total']:>5}  ({info['osm']} OSM, "
            f"{info['imported']} imported): {subs}"
        )
    if manifest.get("duplicates_dropped"):
        lines.append(
            f"  imported POIs dropped as duplicates of OSM: {manifest['duplicates_dropped']}"
        )
    lines.append(
        f"residents: {res['count']:,} points, basis {res['basis']}, "
        f"total weight {res['total_weight']:,.0f} {res['weight_unit']}"
    )
    lines.append(
        f"analysed extent: {ext['analysed_area_km2']:,.2f} km² of "
        f"{ext['district_area_km2']:,.1f} km²"
        f" district land ({(ext['analysed_share'] or 0) * 100:.2f}%)"
    )
    return "\n".join(lines)


def _width(s: str) -> int:
    """Terminal width of `s` (CJK characters take two columns)."""
    return sum(2 if ord(c) > 0x2E80 else 1 for c in s)


def _pad(s: str, width: int, *, right: bool = False) -> str:
    fill = " " * max(0, width - _width(s))
    return fill + s if right else s + fill


def format_coverage_table(summary: dict[str, Any], *, lang: Lang = "en") -> str:
    """Render the coverage table: category, facilities, coverage, residents, gap, verdict."""
    params = summary["parameters"]
    data = summary["data"]
    lines = [headline(summary, lang)]
    lines.append(
        text("table_header", lang).format(
            threshold=params["threshold_label"] if lang == "en" else threshold_text(params, lang),
            profile=params["profile"],
            area=area_display(summary["area"], lang),
        )
    )
    if params["threshold_m"] is None:  # tiers differ: say which apply to each category
        lines += [
            f"  {category_label(k, lang)}: {v['threshold_label']}"
            for k, v in summary["categories"].items()
        ]
    if data["partial"]:
        lines.append(text("partial_prefix", lang) + _extent_note(data, lang))
    head = [
        ("col_category", 20, False),
        ("col_facilities", 11, True),
        ("col_coverage_pct", 14, True),
        ("col_covered_people", 30, True),
        ("col_gap_points", 24, True),
        ("col_meets_target", 14, True),
    ]
    lines.append("".join(_pad(text(k, lang), w, right=r) for k, w, r in head))
    for row in _category_rows(summary, lang):
        cells = list(row.values())
        lines.append("".join(_pad(c, w, right=r) for c, (_, w, r) in zip(cells, head, strict=True)))
    res = data["residents"]
    lines.append(
        text("residents_basis_note", lang).format(
            points=fmt_int(res["count"]),
            basis=resident_basis_label(res.get("basis"), lang),
            persons_basis=persons_basis_text(res, lang),
        )
    )
    lines.append("© OpenStreetMap contributors")
    return "\n".join(lines)


def _category_rows(coverage: dict[str, Any], lang: Lang) -> list[dict[str, str]]:
    """One row per category and one for all of them, every cell formatted."""
    rows = []
    items = [*coverage["categories"].items(), ("all", coverage["all_categories"])]
    for key, v in items:
        rows.append(
            {
                text("col_category", lang): category_label(key, lang),
                text("col_facilities", lang): fmt_int(v.get("facilities")),
                text("col_coverage_pct", lang): fmt_pct(v["coverage"]),
                text("col_covered_people", lang): fmt_persons(v.get("estimated_residents_covered")),
                text("col_gap_points", lang): fmt_num(v["gap_points"], 1),
                text("col_meets_target", lang): fmt_yes_no(v["meets_target"], lang),
            }
        )
    return rows


# --------------------------------------------------------------------------- gap report


@dataclass
class Section:
    """One part of a report: a heading, paragraphs, bullet points, tables and figures."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, file name)


def pivot_coverage(table: pd.DataFrame) -> pd.DataFrame:
    """Turn a long zone table into zone x category coverage (percent), plus residents.

    Columns: ``zone``, ``estimated_residents``, ``weight`` and one coverage
    column (percent, one decimal) per category.
    """
    if table.empty:
        return pd.DataFrame()
    wide = table.pivot_table(index="zone", columns="category", values="coverage", sort=False)
    wide = (wide * 100).round(1)
    first = table.groupby("zone", sort=False)[["estimated_residents", "weight"]].first()
    wide.insert(0, "weight", first["weight"].round(0))
    wide.insert(0, "estimated_residents", first["estimated_residents"].round(0))
    wide.columns.name = None
    return wide.reset_index()


def _weight_label(unit: str | None, lang: Lang) -> str:
    return text(f"col_weight_{unit or 'grid_point'}", lang)


def zone_table(
    table: pd.DataFrame, *, lang: Lang, zone_label: str, weight_unit: str | None
) -> pd.DataFrame:
    """Return a zone x category table for people: residents, floor area, coverage (%)."""
    wide = pivot_coverage(table)
    if wide.empty:
        return wide
    cats = [c for c in wide.columns if c not in {"zone", "estimated_residents", "weight"}]
    out = pd.DataFrame({zone_label: wide["zone"].astype(str)})
    out[text("col_estimated_residents", lang)] = wide["estimated_residents"].map(fmt_persons)
    out[_weight_label(weight_unit, lang)] = wide["weight"].map(fmt_int)
    for c in cats:
        name = category_label("all" if c == "all_categories" else str(c), lang)
        out[name] = (wide[c] / 100).map(fmt_pct)
    return out


def _extent_note(data: dict[str, Any], lang: Lang) -> str:
    if not data.get("partial"):
        return text("full_note", lang)
    return text("partial_note", lang).format(
        analysed=fmt_num(data["analysed_area_km2"], 1),
        district=fmt_num(data["district_area_km2"], 1),
    )


def _summary_section(summary: dict[str, Any], flags: list[str], lang: Lang) -> Section:
    cov = summary["coverage"]
    params = cov["parameters"]
    head = Section(
        text("summary", lang),
        paragraphs=[
            headline(cov, lang),
            text("summary_intro", lang).format(
                area=area_display(summary["area"], lang),
                threshold=threshold_text(params, lang),
                target=f"{params['target'] * 100:g}",
                profile=params["profile"],
            ),
            _extent_note(cov["data"], lang),
        ],
        bullets=flags or [text("no_flags", lang)],
    )
    table = pd.DataFrame(_category_rows(cov, lang))
    head.tables.append((text("coverage_by_category", lang), table))
    return head


def _gradient_section(
    summary: dict[str, Any], tables: dict[str, pd.DataFrame], lang: Lang
) -> Section:
    unit = summary["coverage"]["data"]["residents"].get("weight_unit")
    section = Section(
        text("gradient_section", lang),
        paragraphs=[
            text("gradient_intro", lang).format(lag=f"{summary['parameters']['lag_points']:g}")
        ],
    )
    rings = tables.get("rings")
    if rings is not None and not rings.empty:
        ring_table = zone_table(
            rings, lang=lang, zone_label=text("col_ring", lang), weight_unit=unit
        )
        section.tables.append((text("gradient_table", lang), ring_table))
    grad = summary["gradient"]
    measured = {k: v for k, v in grad.items() if "spearman_rho" in v}
    if measured:
        rows = [
            {
                text("col_category", lang): category_label(_key(k), lang),
                text("col_rho", lang): fmt_num(v.get("spearman_rho"), 2, sign=True),
                text("col_points_per_km", lang): fmt_num(v.get("points_per_km"), 1, sign=True),
                text("col_core", lang): fmt_num(v.get("core"), 1),
                text("col_outer", lang): fmt_num(v.get("outer"), 1),
                text("col_lag", lang): fmt_num(v.get("lag_points"), 1),
                text("col_flag", lang): fmt_yes_no(v.get("flag"), lang),
            }
            for k, v in measured.items()
        ]
        section.tables.append((text("gradient_stats", lang), pd.DataFrame(rows)))
    else:
        section.paragraphs.append(text("no_gradient", lang))
    section.paragraphs.append(
        text("inequality_intro", lang).format(cap=fmt_m(summary["parameters"]["cap_m"]))
    )
    section.tables.append((text("inequality_table", lang), _inequality_table(summary, lang)))
    return section


def _key(category: str) -> str:
    return "all" if category == "all_categories" else category


def _inequality_table(summary: dict[str, Any], lang: Lang) -> pd.DataFrame:
    rows = []
    for k, v in summary["inequality"]["categories"].items():
        rows.append(
            {
                text("col_category", lang): category_label(_key(k), lang),
                text("col_gini", lang): fmt_num(v.get("gini"), 3),
                text("col_theil", lang): fmt_num(v.get("theil"), 3),
                text("col_theil_between", lang): fmt_num(v.get("theil_between"), 3),
                text("col_theil_within", lang): fmt_num(v.get("theil_within"), 3),
                text("col_capped", lang): fmt_pct(v.get("capped_share")),
                text("col_note", lang): "" if v.get("measurable", True) else _reason(v, lang),
            }
        )
    return pd.DataFrame(rows)


def _reason(entry: dict[str, Any], lang: Lang) -> str:
    reason = str(entry.get("reason") or "")
    if lang == "zh" and "search limit" in reason:
        return "搜索上限内没有可达设施，距离均取上限"
    return reason


def _zones_section(summary: dict[str, Any], tables: dict[str, pd.DataFrame], lang: Lang) -> Section:
    unit = summary["coverage"]["data"]["residents"].get("weight_unit")
    section = Section(text("units_section", lang))
    admin = tables.get("admin")
    if admin is not None and not admin.empty:
        section.tables.append(
            (
                text("col_unit", lang),
                zone_table(admin, lang=lang, zone_label=text("col_unit", lang), weight_unit=unit),
            )
        )
    if summary.get("admin_units_without_network"):
        sep = "、" if lang == "zh" else ", "
        section.bullets.append(
            text("units_without_network", lang).format(
                units=sep.join(summary["admin_units_without_network"])
            )
        )
    user = tables.get("user_zones")
    if user is not None and not user.empty:
        section.tables.append(
            (
                text("user_zones_section", lang),
                zone_table(user, lang=lang, zone_label=text("col_zone", lang), weight_unit=unit),
            )
        )
    return section


def cluster_table(clusters: pd.DataFrame, categories: list[str], lang: Lang) -> pd.DataFrame:
    """Return the gap clusters for people: points, residents, area, what is missing, distances."""
    sep = "、" if lang == "zh" else ", "
    rows = []
    for _, c in clusters.iterrows():
        row = {
            text("col_rank", lang): fmt_int(c["rank"]),
            text("col_resident_points", lang): fmt_int(c["points"]),
            text("col_estimated_residents", lang): fmt_persons(c.get("estimated_residents")),
            text("col_area_km2", lang): fmt_num(c["area_km2"], 2),
            text("col_missing", lang): sep.join(
                category_label(m, lang) for m in str(c["missing"]).split(",") if m
            ),
            text("col_zone", lang): str(c.get("zone") or ""),
        }
        for cat in categories:
            label = text("col_median_to", lang).format(cat=_cat(cat, lang))
            row[label] = fmt_m(c.get(f"dist_{cat}_m"))
        rows.append(row)
    return pd.DataFrame(rows)


def _clusters_section(summary: dict[str, Any], clusters: pd.DataFrame, lang: Lang) -> Section:
    params = summary["parameters"]
    categories = list(summary["coverage"]["parameters"]["categories"])
    shown = clusters.drop(columns="geometry", errors="ignore").head(20)
    return Section(
        text("clusters_section", lang),
        paragraphs=[
            text("clusters_intro", lang).format(
                eps=fmt_m(params["cluster_eps_m"]), cap=fmt_m(params["cap_m"])
            )
        ]
        if len(shown)
        else [],
        tables=[(text("clusters_table", lang), cluster_table(shown, categories, lang))]
        if len(shown)
        else [],
        bullets=[] if len(shown) else [text("no_clusters", lang)],
    )


def _limits(summary: dict[str, Any], lang: Lang) -> list[str]:
    """Return the caveats that apply to this run, and only those."""
    cov = summary["coverage"]
    data = cov["data"]
    res = data["residents"]
    out = [_extent_note(data, lang)]
    out.append(
        text("residents_basis_note", lang).format(
            points=fmt_int(res["count"]),
            basis=resident_basis_label(res.get("basis"), lang),
            persons_basis=persons_basis_text(res, lang),
        )
    )
    if res.get("persons_method") == "unknown":
        out.append(text("persons_unknown_note", lang))
    if res.get("persons_method") == "floor_area" and (res.get("imputed_levels_share") or 0) > 0:
        out.append(
            text("imputed_levels_note", lang).format(
                share=fmt_pct(res["imputed_levels_share"]).rstrip("%"),
                levels=fmt_num(res.get("imputed_levels"), 0),
            )
        )
    if data.get("amap_pois"):
        out.append(text("amap_note", lang))
    if data.get("facilities", {}).get("elderly_care", {}).get("total", 1) == 0:
        out.append(text("no_elderly_note", lang))
    osm = data["osm"]
    out.append(
        text("osm_note", lang).format(base=osm.get("osm_base"), attribution=osm["attribution"])
    )
    return out


def _parameter_table(summary: dict[str, Any], lang: Lang) -> pd.DataFrame:
    cov = summary["coverage"]
    params = cov["parameters"]
    res = cov["data"]["residents"]
    rows = [
        ("param_threshold", threshold_text(params, lang)),
        ("param_target", f"{params['target'] * 100:g}%"),
        ("param_profile", params["profile"]),
        ("param_persons", persons_basis_text(res, lang)),
        ("param_max_snap", fmt_m(params["max_snap_m"])),
        ("param_search_limit", fmt_m(params["search_limit_m"])),
        ("param_rings", ", ".join(f"{v:g}" for v in params["ring_edges_km"])),
        ("param_lag", f"{summary['parameters']['lag_points']:g}"),
        (
            "param_cluster",
            text("param_cluster_value", lang).format(
                eps=fmt_m(summary["parameters"]["cluster_eps_m"])
            ),
        ),
    ]
    return pd.DataFrame(
        [{text("col_parameter", lang): text(k, lang), text("col_value", lang): v} for k, v in rows]
    )


def gap_report_sections(
    summary: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    clusters: pd.DataFrame,
    figures: list[tuple[str, str]],
    *,
    lang: Lang = "en",
    flags: list[str] | None = None,
) -> list[Section]:
    """Build the content of the gap report once, for both HTML and Markdown.

    Parameters
    ----------
    summary
        ``gaps.json`` content.
    tables
        The zone tables (``rings``, ``admin``, ``user_zones``) of
        :func:`lifecircle.gaps.zone_measures`.
    clusters
        The gap clusters.
    figures
        ``(caption, file name)`` of the maps.
    lang
        "en" or "zh".
    flags
        The findings in `lang` (default: ``summary["flags"]``).
    """
    sections = [
        _summary_section(summary, summary["flags"] if flags is None else flags, lang),
        _gradient_section(summary, tables, lang),
        _zones_section(summary, tables, lang),
        _clusters_section(summary, clusters, lang),
        Section(text("maps_section", lang), figures=figures),
        Section(
            text("limits_section", lang),
            bullets=_limits(summary, lang),
            tables=[("", _parameter_table(summary, lang))],
        ),
    ]
    return [s for s in sections if s.paragraphs or s.bullets or s.tables or s.figures]


def _cell(value: Any) -> str:
    """Return a table cell: blank for None/NaN, the text otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [_cell(v) for v in row]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def render_markdown(title: str, sections: list[Section]) -> str:
    """Render report sections as Markdown (figures referenced by file name)."""
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        out += [p + "\n" for p in s.paragraphs]
        out += [f"- {b}" for b in s.bullets]
        if s.bullets:
            out.append("")
        for name, df in s.tables:
            out += ([f"**{name}**", ""] if name else []) + [_md_table(df), ""]
        for caption, fname in s.figures:
            out += [f"![{caption}]({fname})", ""]
    return "\n".join(out)


def _html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(
    title: str, sections: list[Section], images: dict[str, bytes], *, lang: Lang = "en"
) -> str:
    """Render report sections as one self-contained HTML page (images embedded)."""
    parts = [
        f"<!DOCTYPE html><html lang='{HTML_LANG.get(lang, 'en')}'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:'Noto Sans CJK SC','Noto Sans',sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;"
        "padding:3px 8px;font-size:13px}th{background:#eee}td{text-align:right}"
        "td:first-child{text-align:left}img{max-width:100%}"
        "</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
        if s.bullets:
            parts.append(
                "<ul>" + "".join(f"<li>{html.escape(b)}</li>" for b in s.bullets) + "</ul>"
            )
        for name, df in s.tables:
            if name:
                parts.append(f"<h3>{html.escape(name)}</h3>")
            parts.append(_html_table(df))
        for caption, fname in s.figures:
            data = base64.b64encode(images[fname]).decode("ascii")
            parts.append(
                f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def report_file_name(stem: str, suffix: str, lang: Lang) -> str:
    """Name a report file by language: English ``stem.html``, others ``stem.<lang>.html``.

    Examples
    --------
    >>> report_file_name("gaps_report", "html", "en"), report_file_name("gaps_report", "md", "zh")
    ('gaps_report.html', 'gaps_report.zh.md')
    """
    return f"{stem}.{suffix}" if lang == "en" else f"{stem}.{lang}.{suffix}"


def _plan_intro(params: dict[str, Any], lang: Lang) -> Section:
    candidates = (
        text("plan_candidates_file", lang).format(file=params["candidates_file"])
        if params["candidates_file"]
        else text("plan_candidates_streets", lang).format(
            spacing=fmt_m(params["candidate_spacing_m"])
        )
    )
    return Section(
        text("plan_intro_title", lang),
        paragraphs=[
            text("plan_intro", lang).format(
                target=f"{params['target'] * 100:g}", k=params["max_sites"]
            ),
            candidates,
        ],
    )


def _plan_sites_table(table: pd.DataFrame, factor: float | None, lang: Lang) -> pd.DataFrame:
    """Proposed sites for people: rank, name, unit, estimated residents newly covered."""
    newly = table["residents_newly_covered"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            text("col_rank", lang): table["rank"].map(fmt_int).to_numpy(),
            text("col_name", lang): table["name"].fillna("").astype(str).to_numpy(),
            text("col_unit", lang): table["unit"].fillna("").astype(str).to_numpy()
            if "unit" in table
            else "",
            text("col_newly_covered", lang): [
                fmt_persons(v * factor) if factor is not None else "" for v in newly
            ],
            text("col_cumulative_coverage", lang): table["cumulative_coverage"]
            .map(fmt_pct)
            .to_numpy(),
        }
    )


def plan_report_sections(
    summary: dict[str, Any],
    sites: pd.DataFrame,
    figures: dict[str, list[tuple[str, str]]],
    *,
    lang: Lang = "en",
) -> list[Section]:
    """Return the report sections of a plan: one per category (and tier) planned.

    Parameters
    ----------
    summary
        ``plan.json`` content.
    sites
        The proposed sites (``sites.gpkg`` without geometry).
    figures
        Per plan key, ``(caption, file name)`` of its curve and map.
    lang
        "en" or "zh".
    """
    params = summary["parameters"]
    factor = summary["coverage"]["data"]["residents"].get("persons_per_weight")
    sections = [_plan_intro(params, lang)]
    for key, entry in summary["categories"].items():
        sol = entry["solution"]
        proof = (
            text("plan_optimal", lang)
            if sol["proven_optimal"]
            else text("plan_gap", lang).format(status=sol["status"], gap=fmt_pct(sol["gap"], 2))
        )
        verdict = text("plan_verdict", lang).format(
            n=entry["sites_needed"],
            now=fmt_pct(entry["coverage_now"]),
            reached=fmt_pct(entry["coverage_reached"]),
            proof=proof,
        )
        if not entry["target_reachable"]:
            verdict = text("plan_out_of_reach", lang) + verdict
        table = sites.loc[
            (sites["category"] == entry["category"]) & (sites["tier"] == entry["tier"])
        ]
        curve = pd.DataFrame(
            {
                text("col_new_sites", lang): [c["k"] for c in entry["curve"]],
                text("col_coverage_pct", lang): [fmt_pct(c["coverage"]) for c in entry["curve"]],
                text("col_proof", lang): [
                    text("plan_optimal", lang) if c["proven_optimal"] else c["status"]
                    for c in entry["curve"]
                ],
            }
        )
        tier = "" if entry["tier"] == "any" else f" · {entry['tier']}"
        sections.append(
            Section(
                text("plan_category_title", lang).format(
                    cat=category_label(entry["category"], lang) + tier,
                    metres=fmt_m(entry["threshold_m"]),
                ),
                paragraphs=[verdict] + ([entry["note"]] if entry["note"] else []),
                tables=[
                    (text("plan_sites_table", lang), _plan_sites_table(table, factor, lang)),
                    (text("plan_curve_table", lang), curve),
                ],
                figures=figures.get(key, []),
            )
        )
    return sections


def hierarchy_sections(
    hierarchy: dict[str, Any],
    figures: list[tuple[str, str]],
    *,
    lang: str = "en",
    persons_basis: str | None = None,
) -> list[Section]:
    """Report section of the central city / suburban core / remote tiers and the paper's test.

    Parameters
    ----------
    hierarchy
        The ``hierarchy`` entry of ``gaps.json``.
    figures
        ``(caption, file name)`` of the tier map and chart.
    lang
        ``"en"`` or ``"zh"``: language of the verdict sentences.
    persons_basis
        How persons were estimated, in `lang` (:func:`persons_basis_text`);
        default the English sentence recorded in `hierarchy`.
    """
    from lifecircle.i18n import check_lang, text

    language = check_lang(lang)
    params = hierarchy["parameters"]
    empty = hierarchy["empty_tiers_note"][language]
    paragraphs = [
        text("hierarchy_intro", language),
        hierarchy.get(f"method_{language}") or hierarchy["method"],
        text("hierarchy_params", language).format(
            central=params.get(f"central_{language}") or params["central"],
            centres="; ".join(params["centres"]) or text("none_given", language),
            persons=persons_basis or params.get(f"persons_{language}") or params["persons"],
            bootstrap=fmt_int(params["bootstrap"]),
            seed=params["seed"],
        ),
    ]
    if empty:
        paragraphs.append(
            text("hierarchy_empty", language).format(note=empty[:1].upper() + empty[1:])
        )
    return [
        Section(
            text("hierarchy_title", language),
            paragraphs=paragraphs,
            bullets=[e[f"sentence_{language}"] for e in hierarchy["test"].values()],
            tables=_hierarchy_tables(hierarchy, language),
            figures=figures,
        )
    ]


def _hierarchy_tables(hierarchy: dict[str, Any], lang: Lang) -> list[tuple[str, pd.DataFrame]]:
    from lifecircle.i18n import text

    table = pd.DataFrame(hierarchy["table"])
    shown = pd.DataFrame(
        {
            text("tier", lang): [text("tier_" + t, lang) for t in table["tier"]],
            text("category", lang): [category_display(c, lang) for c in table["category"]],
            text("resident_points_col", lang): [fmt_int(v) for v in table["resident_points"]],
            text("estimated_residents", lang): [fmt_persons(v) for v in table["persons"]],
            text("coverage", lang): [fmt_pct(v) for v in table["coverage"]],
            text("median_m", lang): [fmt_m(v) for v in table["median_m"]],
            text("p90_m", lang): [fmt_m(v) for v in table["p90_m"]],
            text("left_out_persons", lang): [fmt_persons(v) for v in table["left_out_persons"]],
            text("zero_units", lang): [
                "" if n is None or n != n or not n else f"{int(z)}/{int(n)}"
                for z, n in zip(table["zero_coverage_units"], table["units"], strict=True)
            ],
        }
    )
    diffs = pd.DataFrame(
        [
            {
                text("category", lang): category_display(cat, lang),
                text("tier_pair", lang): " − ".join(
                    text("tier_" + t, lang) for t in d["pair"].split("-")
                ),
                text("points_diff", lang): fmt_num(d["points"], 1, sign=True),
                text("ci95", lang): f"[{d['ci_low']:.1f}, {d['ci_high']:.1f}]",
                text("pair_status", lang): text("status_" + d["status"], lang),
                text("verdict", lang): text(
                    "verdict_short_" + entry["verdict"].replace(" ", "_"), lang
                ),
            }
            for cat, entry in hierarchy["test"].items()
            for d in entry["differences"]
        ]
    )
    tables = [(text("tier_measures_caption", lang), shown)]
    if len(diffs):
        tables.append((text("tier_differences_caption", lang), diffs))
    return tables


def format_gaps_lines(result: Any, *, lang: Lang = "en") -> str:
    """Render the ``gaps`` terminal summary in `lang`: flags, inequality, tiers, report path.

    `result` is a :class:`lifecircle.pipeline.GapResult` (``summary``,
    ``tables``, ``clusters``, ``out_dir``); the report named is the one written
    in `lang` (``gaps_report.zh.html`` for Chinese).
    """
    from lifecircle.gaps import flags

    s = result.summary
    lines = [text("gaps_cli_title", lang).format(area=area_display(s["area"], lang))]
    found = flags(
        result.tables["rings"],
        result.tables.get("admin"),
        s["gradient"],
        result.clusters,
        target=float(s["coverage"]["parameters"]["target"]),
        lag_points=float(s["parameters"]["lag_points"]),
        lang=lang,
    )
    lines += [f"  - {line}" for line in found or [text("gaps_cli_no_flag", lang)]]
    ineq = s["inequality"]["categories"]["all_categories"]
    if ineq.get("measurable", True):
        value = text("gaps_cli_gini", lang).format(
            gini=fmt_num(ineq["gini"], 3),
            theil=fmt_num(ineq["theil"], 3),
            between=fmt_num(ineq["theil_between"], 3),
        )
    else:
        value = _reason(ineq, lang)
    lines.append(text("gaps_cli_inequality", lang).format(value=value))
    key = "sentence_zh" if lang == "zh" else "sentence_en"
    lines += [
        f"  {entry.get(key, '')}" for entry in s.get("hierarchy", {}).get("test", {}).values()
    ]
    report = result.out_dir / report_file_name("gaps_report", "html", lang)
    lines.append(text("gaps_cli_report", lang).format(n=len(result.clusters), report=report))
    return "\n".join(lines)
