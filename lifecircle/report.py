"""Plain-text renderings of results for the terminal."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


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


def format_coverage_table(summary: dict[str, Any]) -> str:
    """Render the coverage table: category, facilities, coverage, target, gap, verdict."""
    params = summary["parameters"]
    data = summary["data"]
    header = (
        f"Coverage within {params['threshold_label']}, profile {params['profile']}, "
        f"area {summary['area']}"
    )
    lines = [header]
    if params["threshold_m"] is None:  # tiers differ: say which apply to each category
        lines += [f"  {k}: {v['threshold_label']}" for k, v in summary["categories"].items()]
    if data["partial"]:
        lines.append(f"PARTIAL: {data['note']}")
    lines.append(
        f"{'category':<15}{'facilities':>11}{'coverage':>10}{'target':>8}{'gap':>9}  verdict"
    )
    target = params["target"]
    rows = [(k, v) for k, v in summary["categories"].items()]
    rows.append(("all categories", {**summary["all_categories"], "facilities": None}))
    for name, info in rows:
        fac = "" if info.get("facilities") is None else str(info["facilities"])
        gap = "n/a" if info["gap_points"] is None else f"{info['gap_points']:.1f} pt"
        verdict = (
            "n/a" if info["meets_target"] is None else "meets" if info["meets_target"] else "BELOW"
        )
        lines.append(
            f"{name:<15}{fac:>11}{_pct(info['coverage']):>10}{target * 100:>7g}%{gap:>9}  {verdict}"
        )
    res = data["residents"]
    snap = data["snapping"]["residents"]
    lines.append(
        f"residents: {res['count']:,} points ({res['basis']}); unreachable (no street within "
        f"the snap limit) {res['unreachable']['count']}; snapped past a network fragment "
        f"{snap['moved_off_fragment']}"
    )
    lines.append("© OpenStreetMap contributors")
    return "\n".join(lines)


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
    """Turn a long zone table into zone x category coverage (percent), plus residents."""
    if table.empty:
        return pd.DataFrame()
    wide = table.pivot_table(index="zone", columns="category", values="coverage", sort=False)
    wide = (wide * 100).round(1)
    residents = table.groupby("zone", sort=False)["residents"].first().round(0)
    wide.insert(0, "residents", residents)
    return wide.reset_index()


def gap_report_sections(
    summary: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    clusters: pd.DataFrame,
    figures: list[tuple[str, str]],
) -> list[Section]:
    """Build the content of the gap report once, for both HTML and Markdown."""
    cov = summary["coverage"]
    params = cov["parameters"]
    data = cov["data"]
    head = Section(
        "Summary",
        paragraphs=[
            f"Area {summary['area']}: share of residents within {params['threshold_label']} "
            f"of each facility category, against a target of {params['target'] * 100:g}% "
            f"(profile {params['profile']}).",
            data["note"],
        ],
        bullets=summary["flags"] or ["No gap exceeds the flag thresholds."],
    )
    rows = [
        {
            "category": k,
            "facilities": v.get("facilities", ""),
            "coverage %": None if v["coverage"] is None else round(v["coverage"] * 100, 1),
            "gap (points)": v["gap_points"],
            "meets target": v["meets_target"],
        }
        for k, v in [*cov["categories"].items(), ("all categories", cov["all_categories"])]
    ]
    head.tables.append(("Coverage by category", pd.DataFrame(rows)))
    sections = [head]
    grad = summary["gradient"]
    grad_rows = [
        {
            "category": k,
            **{
                x: v.get(x)
                for x in ("spearman_rho", "points_per_km", "core", "outer", "lag_points", "flag")
            },
            "note": v.get("note", ""),
        }
        for k, v in grad.items()
    ]
    ineq = summary["inequality"]
    sections.append(
        Section(
            "Core-periphery gradient and inequality",
            paragraphs=[
                "Rings are distances from the district core. Spearman's rho below zero means "
                "coverage falls with distance; a flag means the outermost populated ring lags "
                f"the core ring by more than {summary['parameters']['lag_points']:g} points.",
                f"Gini and Theil indices of walking distance (capped at "
                f"{summary['parameters']['cap_m']:.0f} m), Theil split by {ineq['zones']}.",
            ],
            tables=[
                ("Gradient", pd.DataFrame(grad_rows)),
                (
                    "Inequality of distances",
                    pd.DataFrame(ineq["categories"]).T.reset_index(names="category"),
                ),
            ],
        )
    )
    zone_section = Section("Coverage by zone (percent of residents)")
    for kind, table in tables.items():
        if not table.empty:
            zone_section.tables.append((kind, pivot_coverage(table)))
    sections.append(zone_section)
    shown = clusters.drop(columns="geometry", errors="ignore").head(20)
    sections.append(
        Section(
            "Gap clusters (residents not covered for every category)",
            paragraphs=[
                "Clusters of uncovered residents (DBSCAN, 250 m), ranked by residents affected; "
                "distances are weighted medians in metres (blank: beyond the search limit)."
            ],
            tables=[("Clusters", shown.round(3))] if len(shown) else [],
            bullets=[] if len(shown) else ["Every resident is covered: no gap cluster."],
        )
    )
    sections.append(Section("Maps", figures=figures))
    limits = [
        data["note"],
        f"Residents: {data['residents']['count']:,} points, basis "
        f"{data['residents']['basis']} (weights in {data['residents']['weight_unit']}).",
        "Amap POI lists hit a 900-results-per-query cap: imported schools and hospitals are "
        "incomplete. Elderly care comes only from OSM tags.",
        f"OSM data {data['osm'].get('osm_base')}; {data['osm']['attribution']}.",
    ]
    sections.append(
        Section(
            "Parameters and data limits",
            bullets=limits,
            tables=[
                (
                    "Parameters",
                    pd.DataFrame([{**params, **summary["parameters"]}])
                    .T.reset_index()
                    .set_axis(["parameter", "value"], axis=1),
                )
            ],
        )
    )
    return sections


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = ["" if (isinstance(v, float) and v != v) else str(v) for v in row]
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
            out += [f"**{name}**", "", _md_table(df), ""]
        for caption, fname in s.figures:
            out += [f"![{caption}]({fname})", ""]
    return "\n".join(out)


def render_html(title: str, sections: list[Section], images: dict[str, bytes]) -> str:
    """Render report sections as one self-contained HTML page (images embedded)."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:'Noto Sans CJK SC','Noto Sans',sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;"
        "padding:3px 8px;font-size:13px}th{background:#eee}img{max-width:100%}"
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
            parts.append(f"<h3>{html.escape(name)}</h3>")
            parts.append(df.to_html(index=False, na_rep="", border=0))
        for caption, fname in s.figures:
            data = base64.b64encode(images[fname]).decode("ascii")
            parts.append(
                f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def plan_report_sections(
    summary: dict[str, Any], sites: pd.DataFrame, figures: dict[str, list[tuple[str, str]]]
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
    """
    params = summary["parameters"]
    intro = Section(
        "Where to build",
        paragraphs=[
            f"For each category the plan finds the fewest new sites that bring the share of "
            f"residents within walking reach to the target ({params['target'] * 100:g}%), with the "
            "existing facilities kept, and the best coverage reachable with k = 1.."
            f"{params['max_sites']} new sites. Distances are the same edge-snapped walking "
            "distances as the coverage figures; `lifecircle coverage --add-facilities sites.gpkg` "
            "reproduces them.",
            "Candidates: "
            + (
                f"the sites in {params['candidates_file']}."
                if params["candidates_file"]
                else f"points every {params['candidate_spacing_m']:g} m along the routable streets "
                "of the analysed extent."
            ),
        ],
    )
    sections = [intro]
    for key, entry in summary["categories"].items():
        sol = entry["solution"]
        proof = (
            "proven optimal"
            if sol["proven_optimal"]
            else f"{sol['status']}, within {sol['gap'] * 100:.2f}% of the proven bound"
        )
        verdict = (
            f"{entry['sites_needed']} new sites bring coverage from "
            f"{_pct(entry['coverage_now'])} to {_pct(entry['coverage_reached'])} ({proof})."
        )
        if not entry["target_reachable"]:
            verdict = f"The target cannot be reached from these candidates: {verdict}"
        table = sites.loc[
            (sites["category"] == entry["category"]) & (sites["tier"] == entry["tier"])
        ]
        shown = table[
            ["rank", "name", "unit", "residents_newly_covered", "cumulative_coverage"]
        ].copy()
        shown["cumulative_coverage"] = (shown["cumulative_coverage"] * 100).round(1)
        curve = pd.DataFrame(
            {
                "new sites": [c["k"] for c in entry["curve"]],
                "coverage %": [round(c["coverage"] * 100, 1) for c in entry["curve"]],
                "proof": [
                    "optimal" if c["proven_optimal"] else c["status"] for c in entry["curve"]
                ],
            }
        )
        sections.append(
            Section(
                f"{key.replace('_', ' ')} (within {entry['threshold_m']:.0f} m)",
                paragraphs=[verdict] + ([entry["note"]] if entry["note"] else []),
                tables=[("Proposed sites", shown), ("Best coverage by number of new sites", curve)],
                figures=figures.get(key, []),
            )
        )
    return sections


def hierarchy_sections(
    hierarchy: dict[str, Any], figures: list[tuple[str, str]], *, lang: str = "en"
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
    """
    from lifecircle.i18n import check_lang, text

    language = check_lang(lang)
    params = hierarchy["parameters"]
    empty = hierarchy["empty_tiers_note"][language]
    paragraphs = [
        "The study behind this tool claims that facility access is higher in the central city "
        "than in the suburbs, and higher in the suburban cores than in the remote areas. Each "
        "resident gets one tier; the test asks, per category, whether central >= suburban core "
        ">= remote, with 95% bootstrap intervals on the differences.",
        hierarchy["method"],
        f"Central city: {params['central']}. Town seats: "
        f"{'; '.join(params['centres']) or 'none given'}. Persons: {params['persons']}. "
        f"Bootstrap: {params['bootstrap']} replicates, seed {params['seed']}.",
    ]
    if empty:
        paragraphs.append(
            f"{empty[0].upper()}{empty[1:]}: they are not invented, and the "
            "ordering cannot be tested here."
        )
    table = pd.DataFrame(hierarchy["table"])
    shown = pd.DataFrame(
        {
            text("tier", language): [text("tier_" + t, language) for t in table["tier"]],
            "category": table["category"],
            "points": table["resident_points"],
            "persons": table["persons"].round(0),
            "coverage %": (table["coverage"] * 100).round(1),
            "median m": table["median_m"].round(0),
            "p90 m": table["p90_m"].round(0),
            "left out (persons)": table["left_out_persons"].round(0),
            "units with 0 coverage": [
                "" if n is None or n != n else f"{int(z)}/{int(n)}"
                for z, n in zip(table["zero_coverage_units"], table["units"], strict=True)
            ],
        }
    )
    diffs = [
        {
            "category": cat,
            "pair": d["pair"],
            "points": round(d["points"], 1),
            "95% CI": f"[{d['ci_low']:.1f}, {d['ci_high']:.1f}]",
            "status": d["status"],
            "verdict": entry["verdict"],
        }
        for cat, entry in hierarchy["test"].items()
        for d in entry["differences"]
    ]
    return [
        Section(
            text("hierarchy_title", language),
            paragraphs=paragraphs,
            bullets=[e[f"sentence_{language}"] for e in hierarchy["test"].values()],
            tables=[
                ("Measures by tier (median/p90 blank: beyond the search limit)", shown),
                *([("Differences in coverage points", pd.DataFrame(diffs))] if diffs else []),
            ],
            figures=figures,
        )
    ]
