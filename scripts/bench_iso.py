"""Benchmark of isochrones and maps at city scale (issue 12).

Data: the real OSM extract of central Porto Alegre (about 38k walking nodes)
and its 7 x 7 tiling (``tile_pbf`` of ``scripts/bench.py``; about 1.9M
walking nodes, 2.24M edges) written once to ``/tmp/bench7.osm.pbf``.
Facilities are random street positions (uniform over edges, at the edge
midpoint plus 5 m sideways, as in ``bench.py``): 2,000 per category on the
tiling, 500 on the untiled city. 1,000 m threshold, 25 m buffer.

Each stage runs in its own process (``--stage``) so its peak resident
memory (polled every 20 ms by ``bench.run_with_peak_rss``) is its own; the
network is built from the .pbf once and pickled in the work folder.

Usage: ``python scripts/bench_iso.py [--out docs/benchmarks_iso.md]``; the
main benchmark imports :func:`markdown_section`.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import BENCH_PBF, run_with_peak_rss, tile_pbf

ROOT = Path(__file__).resolve().parents[1]
TILED_PBF = Path("/tmp/bench7.osm.pbf")
CRS = "EPSG:32722"
THRESHOLD_M = 1000.0
CATEGORIES = ["school", "health", "elderly_care", "culture"]


def load_network(which: str, work: Path):  # type: ignore[no-untyped-def]
    """The walking network of the untiled ('1') or 7 x 7 tiled ('7') extract, pickled once."""
    cache = work / f"net_{which}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    from lifecircle.io import read_osm
    from lifecircle.network import build_walk_network

    src = BENCH_PBF
    if which == "7":
        if not TILED_PBF.exists():
            tmp = TILED_PBF.with_suffix(f".{os.getpid()}.tmp.pbf")
            tile_pbf(BENCH_PBF, tmp, n=7)
            tmp.replace(TILED_PBF)
        src = TILED_PBF
    net = build_walk_network(read_osm(src).ways, crs=CRS)
    cache.write_bytes(pickle.dumps(net))
    return net


def random_facilities(net, per_category: int, categories: list[str], seed: int = 42):  # type: ignore[no-untyped-def]
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    k = per_category * len(categories)
    e = rng.choice(net.n_edges, k, replace=False)
    pts = shapely.points(
        (net.x[net.u[e]] + net.x[net.v[e]]) / 2 + 5, (net.y[net.u[e]] + net.y[net.v[e]]) / 2
    )
    return gpd.GeoDataFrame(
        {"category": np.repeat(categories, per_category), "subtype": "x", "name": ""},
        geometry=pts,
        crs=CRS,
    )


def stage_iso(which: str, per_category: int, categories: list[str], work: Path) -> dict:  # type: ignore[type-arg]
    """Facility isochrones per category and the category layers (as the pipeline builds them).

    Each category's layer is the contour of the minimum of its facilities'
    distance fields, lowered while the polygons are built (one pass).
    """
    import shapely

    from lifecircle.access import Router
    from lifecircle.fields import tiled_field, tiled_polygon
    from lifecircle.isochrones import (
        DEFAULT_BUFFER_M,
        Sink,
        build_node_grid,
        facility_isochrones,
        field_cell_m,
        field_reach_m,
    )
    from lifecircle.prepare import release_freed_memory
    from lifecircle.snapping import snap_points

    net = load_network(which, work)
    fac = random_facilities(net, per_category, categories)
    router = Router.from_network(net)
    snapped = snap_points(fac, net)
    t0, c0 = time.perf_counter(), time.process_time()
    grid = build_node_grid(net)
    t_grid = time.perf_counter() - t0
    parts, layers = [], []
    t_contour = c_contour = 0.0
    for cat in categories:
        sel = (fac["category"] == cat).to_numpy()
        field = tiled_field(
            cell_m=field_cell_m(DEFAULT_BUFFER_M), reach_m=field_reach_m(DEFAULT_BUFFER_M)
        )
        parts.append(
            facility_isochrones(
                router,
                fac.loc[sel],
                snapped.loc[sel],
                threshold_m=THRESHOLD_M,
                grid=grid,
                sinks=[Sink(field, np.ones(int(sel.sum()), dtype=bool))],
            )
        )
        t1, c1 = time.perf_counter(), time.process_time()
        layers.append(tiled_polygon(field, DEFAULT_BUFFER_M))
        t_contour += time.perf_counter() - t1
        c_contour += time.process_time() - c1
        del field
        release_freed_memory()  # as the pipeline does after each category
    t_all = time.perf_counter() - t0
    c_all = time.process_time() - c0
    out = {
        "nodes": net.n_nodes,
        "edges": net.n_edges,
        "facilities": int(sum(len(p) for p in parts)),
        "grid_s": t_grid,
        "iso_s": t_all - t_contour,
        "layers_s": t_contour,
        "total_s": t_all,
        "iso_cpu_s": c_all - c_contour,
        "layers_cpu_s": c_contour,
        "layer_area_km2": [float(shapely.area(g)) / 1e6 for g in layers],
    }
    with (work / f"iso_{which}.pkl").open("wb") as f:
        pickle.dump({"fac": fac, "layers": layers}, f)
    return out


def stage_search(which: str, work: Path, n: int = 200) -> dict:  # type: ignore[type-arg]
    """Per-facility search + scan time: local search vs the former whole-network one."""
    from scipy.sparse.csgraph import dijkstra

    from lifecircle.access import Router
    from lifecircle.isochrones import (
        build_node_grid,
        local_reach,
        reachable_segments,
        search_scratch,
    )
    from lifecircle.snapping import snap_points

    net = load_network(which, work)
    fac = random_facilities(net, n, ["school"], seed=7)
    router = Router.from_network(net)
    snapped = snap_points(fac, net).reset_index(drop=True)
    pts = fac.geometry.to_numpy()
    grid = build_node_grid(net)
    scratch = search_scratch(router)
    local_reach(router, grid, snapped[:1], THRESHOLD_M, pts[:1], scratch=scratch)  # compiled
    t0, c0 = time.perf_counter(), time.process_time()
    new = [
        local_reach(router, grid, snapped[i : i + 1], THRESHOLD_M, pts[[i]], scratch=scratch)
        for i in range(n)
    ]
    t_new = (time.perf_counter() - t0) / n
    c_new = (time.process_time() - c0) / n
    m = min(n, 40)
    t0, c0 = time.perf_counter(), time.process_time()
    graph = router.with_sources(snapped.iloc[:m], separate=True)
    dist = dijkstra(graph, directed=True, indices=net.n_nodes + np.arange(m), limit=THRESHOLD_M)
    old = [
        reachable_segments(net, dist[j, : net.n_nodes], THRESHOLD_M, snapped[j : j + 1], pts[[j]])
        for j in range(m)
    ]
    t_old = (time.perf_counter() - t0) / m
    c_old = (time.process_time() - c0) / m
    same = all(
        np.array_equal(a.edge, b.edge) and np.allclose(a.coords, b.coords, atol=1e-6)
        for a, b in zip(old, new, strict=False)
    )
    return {
        "nodes": net.n_nodes,
        "search_ms": t_new * 1e3,
        "old_search_ms": t_old * 1e3,
        "search_cpu_ms": c_new * 1e3,
        "old_search_cpu_ms": c_old * 1e3,
        "identical": same,
        "pieces": float(np.mean([len(r.edge) for r in new])),
    }


def stage_exact(work: Path) -> dict:  # type: ignore[type-arg]
    """Overlap of the fast polygons with the exact method on the untiled city (100 facilities)."""
    from lifecircle.access import Router
    from lifecircle.isochrones import facility_isochrones, overlap_ratio
    from lifecircle.snapping import snap_points

    net = load_network("1", work)
    fac = random_facilities(net, 500, ["school"]).iloc[::5]
    router = Router.from_network(net)
    snapped = snap_points(fac, net)
    fast = facility_isochrones(router, fac, snapped, threshold_m=THRESHOLD_M)
    exact = facility_isochrones(router, fac, snapped, threshold_m=THRESHOLD_M, method="exact")
    ratios = [overlap_ratio(a, b) for a, b in zip(fast.geometry, exact.geometry, strict=True)]
    return {"iou_min": min(ratios), "iou_mean": float(np.mean(ratios)), "n": len(ratios)}


def stage_maps(work: Path) -> dict:  # type: ignore[type-arg]
    """The coverage map and one gap map on the tiling with 8,000 facilities."""
    from types import SimpleNamespace

    import geopandas as gpd
    import pandas as pd
    import shapely

    from lifecircle.io import save_figure
    from lifecircle.plot import plot_coverage_map, plot_gap_map

    net = load_network("7", work)
    if (work / "iso_7.pkl").exists():
        with (work / "iso_7.pkl").open("rb") as f:
            iso = pickle.load(f)
        fac, layers, stand_in = iso["fac"], iso["layers"], False
    else:  # stand-in layers (1 km discs per facility) when the isochrone stage has not run
        fac = random_facilities(net, 2000, CATEGORIES)
        discs = shapely.buffer(fac.geometry.to_numpy(), THRESHOLD_M, quad_segs=8)
        cats = fac["category"].to_numpy()
        layers = [shapely.union_all(discs[cats == c]) for c in CATEGORIES]
        stand_in = True
    rng = np.random.default_rng(3)
    n_res = 567_000
    e = rng.choice(net.n_edges, n_res)
    pts = shapely.points(
        (net.x[net.u[e]] + net.x[net.v[e]]) / 2 + rng.normal(0, 20, n_res),
        (net.y[net.u[e]] + net.y[net.v[e]]) / 2 + rng.normal(0, 20, n_res),
    )
    residents = gpd.GeoDataFrame(geometry=pts, crs=CRS)
    inside = {
        c: shapely.contains_xy(g, shapely.get_x(pts), shapely.get_y(pts))
        for c, g in zip(CATEGORIES, layers, strict=True)
    }
    for c in CATEGORIES:
        residents[f"covered_{c}"] = inside[c]
    residents["covered_all_categories"] = np.logical_and.reduce(list(inside.values()))
    box = shapely.box(net.x.min(), net.y.min(), net.x.max(), net.y.max())
    prepared = SimpleNamespace(
        key="poa7x7",
        district=None,
        crs=CRS,
        network=net,
        facilities=fac,
        boundary=gpd.GeoDataFrame(geometry=[box], crs=CRS),
        extent=gpd.GeoDataFrame(geometry=[box], crs=CRS),
    )
    summary = {
        "all_categories": {"coverage": float(residents["covered_all_categories"].mean())},
        "parameters": {"threshold_label": "15 min", "target": 0.99},
    }
    cat_iso = gpd.GeoDataFrame({"category": CATEGORIES}, geometry=layers, crs=CRS)
    out = {
        "residents": n_res,
        "uncovered": int((~residents["covered_all_categories"]).sum()),
        "stand_in_layers": stand_in,
    }
    t0, c0 = time.perf_counter(), time.process_time()
    fig, _ = plot_coverage_map(prepared, residents, cat_iso, summary)  # type: ignore[arg-type]
    save_figure(fig, work / "coverage_map.png")
    out["coverage_map_s"] = time.perf_counter() - t0
    out["coverage_map_cpu_s"] = time.process_time() - c0
    center = box.centroid
    rings = gpd.GeoDataFrame(
        {"coverage": [0.9, 0.6, 0.3]},
        geometry=[
            center.buffer(r).difference(center.buffer(r - 15_000)) for r in (15_000, 30_000, 45_000)
        ],
        crs=CRS,
    )
    clusters = gpd.GeoDataFrame({"rank": pd.Series([], dtype=int)}, geometry=[], crs=CRS)
    t0, c0 = time.perf_counter(), time.process_time()
    fig, _ = plot_gap_map(prepared, residents, rings, clusters, "school")  # type: ignore[arg-type]
    save_figure(fig, work / "gap_map_school.png")
    out["gap_map_s"] = time.perf_counter() - t0
    out["gap_map_cpu_s"] = time.process_time() - c0
    out["uncovered_school"] = int((~residents["covered_school"]).sum())
    return out


def run_stage(stage: str, work: Path, *args: str) -> dict:  # type: ignore[type-arg]
    """Run a stage in a child process; return its result with peak RSS and wall time.

    A result already in `work` (``<stage>-<args>.done.json``) is reused.
    """
    out = work / f"{stage}-{'-'.join(args)}.json"
    done = out.with_suffix(".done.json")
    if done.exists():
        return json.loads(done.read_text())  # type: ignore[no-any-return]
    cmd = [
        sys.executable,
        __file__,
        "--stage",
        stage,
        "--work",
        str(work),
        "--json",
        str(out),
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    peak, code, _cpu = run_with_peak_rss(cmd, env)
    if code != 0:
        msg = f"stage {stage} {args} failed with exit code {code}"
        raise SystemExit(msg)
    res: dict = json.loads(out.read_text())  # type: ignore[type-arg]
    res.update(
        peak_mib=peak / 2**20, wall_s=time.perf_counter() - t0, load_after=os.getloadavg()[0]
    )
    done.write_text(json.dumps(res))
    return res


def markdown_section(work: Path | None = None) -> str:
    """Run the isochrone and map benchmarks; return their Markdown section."""
    import datetime as dt
    import platform

    work = Path(tempfile.mkdtemp(prefix="lifecircle-bench-iso-")) if work is None else work
    load0 = os.getloadavg()
    for which in ("1", "7"):  # build the networks here, so no stage's memory includes it
        if not (work / f"net_{which}.pkl").exists():
            load_network(which, work)
    s1 = run_stage("search", work, "1")
    s7 = run_stage("search", work, "7")
    i1 = run_stage("iso", work, "1", "500", "school")
    i7s = run_stage("iso", work, "7", "500", "school")
    i7 = run_stage("iso", work, "7", "2000", *CATEGORIES)
    ex = run_stage("exact", work)
    mp = run_stage("maps", work)

    def ok(v: float, lim: float) -> str:
        return "yes" if v <= lim else "no"

    for res in (
        i1,
        i7s,
        i7,
    ):  # CPU seconds of the stage (a run by hand may only have the process total)
        res.setdefault("iso_cpu_s", float("nan"))
        res.setdefault("layers_cpu_s", float("nan"))
    per1 = i1["iso_cpu_s"] / i1["facilities"] * 1e3
    per7 = i7["iso_cpu_s"] / i7["facilities"] * 1e3
    return "\n".join(
        [
            "## Isochrones and maps at city scale (`scripts/bench_iso.py`)",
            "",
            f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores "
            f"({platform.machine()}), Python {platform.python_version()}. The machine is shared "
            f"(load average {load0[0]:.1f} at the start; the 1-minute load after each stage is in "
            "brackets): wall times include waiting for a core, CPU times do not. Each stage runs "
            "in its own process; peak RSS polled every 20 ms. 1,000 m, 25 m buffer, fast polygons "
            "(distance fields on a 5 m lattice, marching squares), 2 threads. Facilities at random "
            "street positions.",
            "",
            "| measure | result | target | met |",
            "|---|---|---|---|",
            f"| search + scan of one facility (local: nodes within its straight-line radius), "
            f"untiled city, {s1['nodes']:,} nodes (mean of 200) | {s1['search_cpu_ms']:.2f} ms CPU "
            f"({s1['search_ms']:.1f} ms wall); former whole-network search "
            f"{s1['old_search_cpu_ms']:.2f} ms CPU | | |",
            f"| same on the 7 x 7 tiling, {s7['nodes']:,} nodes | {s7['search_cpu_ms']:.2f} ms CPU "
            f"({s7['search_ms']:.1f} ms wall); former {s7['old_search_cpu_ms']:.1f} ms CPU | "
            f"does not grow with the city | {ok(s7['search_cpu_ms'], 1.5 * s1['search_cpu_ms'])} |",
            f"| reached pieces identical to the whole-network search (40 facilities each) | "
            f"{s1['identical'] and s7['identical']} | identical | "
            f"{'yes' if s1['identical'] and s7['identical'] else 'no'} |",
            f"| {i1['facilities']} facility isochrones, untiled city ({i1['nodes']:,} nodes) "
            f"[load {i1.get('load_after', float('nan')):.1f}] | "
            f"{i1['iso_s']:.1f} s wall, {i1['iso_cpu_s']:.1f} s CPU ({per1:.1f} ms CPU per "
            f"facility), peak {i1['peak_mib']:.0f} MiB | <= 10 s | {ok(i1['iso_s'], 10)} |",
            f"| {i7s['facilities']} facility isochrones, 7 x 7 tiling ({i7s['nodes']:,} nodes) "
            f"[load {i7s.get('load_after', float('nan')):.1f}] | {i7s['iso_s']:.1f} s wall, "
            f"{i7s['iso_cpu_s']:.1f} s CPU ({i7s['iso_cpu_s'] / i7s['facilities'] * 1e3:.1f} ms CPU "
            f"per facility), peak {i7s['peak_mib']:.0f} MiB | same per facility as untiled | "
            f"{ok(i7s['iso_cpu_s'] / i7s['facilities'] * 1e3, 1.5 * per1)} |",
            f"| {i7['facilities']:,} facility isochrones (4 x 2,000), 7 x 7 tiling "
            f"({i7['nodes']:,} nodes, {i7['edges']:,} edges) [load "
            f"{i7.get('load_after', float('nan')):.1f}] | {i7['iso_s']:.1f} s wall, "
            f"{i7['iso_cpu_s']:.1f} s CPU ({per7:.1f} ms CPU per facility; node grid "
            f"{i7['grid_s']:.1f} s) | | |",
            "| + the 4 dissolved category layers (each facility's distance field lowered into its "
            "category's tiled field while its polygon is built; the contour of each field, one "
            f"(multi)polygon per category, is timed here) | "
            f"{i7['layers_s']:.1f} s wall, {i7['layers_cpu_s']:.1f} s CPU; total "
            f"{i7['total_s']:.1f} s wall | <= 60 s | {ok(i7['total_s'], 60)} |",
            f"| peak RSS of that process (network, 8,000 polygons) | {i7['peak_mib']:.0f} MiB | "
            f"<= 3 GiB | {ok(i7['peak_mib'], 3072)} |",
            f"| overlap fast vs exact (per-segment buffer + union), {ex['n']} facilities | "
            f"min {ex['iou_min']:.4f}, mean {ex['iou_mean']:.4f} | >= 0.98 | "
            f"{'yes' if ex['iou_min'] >= 0.98 else 'no'} |",
            f"| coverage map, 7 x 7 tiling ({i7['edges']:,} street edges, 4 category layers"
            f"{' (stand-in: 1 km discs)' if mp['stand_in_layers'] else ''}, "
            f"{mp['uncovered']:,} uncovered of {mp['residents']:,} residents), PNG "
            f"[load {mp.get('load_after', float('nan')):.1f}] | "
            f"{mp['coverage_map_s']:.1f} s wall, {mp['coverage_map_cpu_s']:.1f} s CPU | <= 15 s | "
            f"{ok(mp['coverage_map_s'], 15)} |",
            f"| gap map (school; {mp['uncovered_school']:,} uncovered residents), PNG | "
            f"{mp['gap_map_s']:.1f} s wall, {mp['gap_map_cpu_s']:.1f} s CPU | <= 15 s | "
            f"{ok(mp['gap_map_s'], 15)} |",
            f"| peak RSS of the map process | {mp['peak_mib']:.0f} MiB | | |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stage")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks_iso.md")
    parser.add_argument("args", nargs="*")
    a = parser.parse_args()
    if a.stage is None:
        text = markdown_section(a.work)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n", encoding="utf-8")
        print(text)
        return
    if a.stage == "iso":
        res = stage_iso(a.args[0], int(a.args[1]), a.args[2:], a.work)
    elif a.stage == "search":
        res = stage_search(a.args[0], a.work)
    elif a.stage == "exact":
        res = stage_exact(a.work)
    else:
        res = stage_maps(a.work)
    a.json.write_text(json.dumps(res))


if __name__ == "__main__":
    main()
