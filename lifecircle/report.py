"""Plain-text renderings of results for the terminal."""

from __future__ import annotations

from typing import Any


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
        f"Coverage within {params['threshold_m']:.0f} m ({params['minutes']:g} min at "
        f"{params['speed_kmh']:g} km/h), profile {params['profile']}, area {summary['area']}"
    )
    lines = [header]
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
    lines.append(
        f"residents: {res['count']:,} points ({res['basis']}); unreachable "
        f"{res['unreachable']['count']}, on small islands {res['island']['count']}"
    )
    lines.append("© OpenStreetMap contributors")
    return "\n".join(lines)
