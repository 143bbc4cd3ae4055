"""Benchmarks for lifecircle, written to docs/benchmarks.md.

Data: the real OSM extract of central Porto Alegre in ../shared/data/bench/
(about 38k walking nodes), enlarged by tiling 3 x 3 translated copies of it
(ids offset per copy, coordinates shifted by the extract's width/height) into
one .osm.pbf of about 340k walking nodes. Neighbouring copies are joined by
nothing: the tiled network is 9 disconnected cities, which matters little for
nearest-facility searches bounded at 1,000 m.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH_PBF = (
    Path(os.environ.get("LIFECIRCLE_DATA_DIR", ROOT.parent / "shared" / "data"))
    / "bench"
    / "porto_alegre_r5r_sample.osm.pbf"
)


def tile_pbf(src: Path, dst: Path, n: int = 3) -> tuple[float, float]:
    """Write n x n translated copies of an OSM extract into one PBF; return the (lon, lat) step."""
    import osmium

    nodes, ways = [], []
    for obj in osmium.FileProcessor(str(src)):
        if obj.is_node():
            nodes.append((obj.id, obj.location.lon, obj.location.lat, dict(obj.tags)))
        elif obj.is_way():
            ways.append((obj.id, [nd.ref for nd in obj.nodes], dict(obj.tags)))
    lon = np.array([x[1] for x in nodes])
    lat = np.array([x[2] for x in nodes])
    width, height = lon.max() - lon.min() + 0.001, lat.max() - lat.min() + 0.001
    id_step = 10 ** (len(str(max(x[0] for x in nodes))) + 1)
    way_step = 10 ** (len(str(max(x[0] for x in ways))) + 1)
    writer = osmium.SimpleWriter(str(dst))
    try:
        for k in range(n * n):
            i, j = divmod(k, n)
            for nid, x, y, tags in nodes:
                writer.add_node(
                    osmium.osm.mutable.Node(
                        id=nid + k * id_step, location=(x + j * width, y + i * height), tags=tags
                    )
                )
        for k in range(n * n):
            for wid, refs, tags in ways:
                writer.add_way(
                    osmium.osm.mutable.Way(
                        id=wid + k * way_step, nodes=[r + k * id_step for r in refs], tags=tags
                    )
                )
    finally:
        writer.close()
    return float(width), float(height)


AMAP_TYPES = {  # one Amap type (and name) per category, classified by the packaged amap mapping
    "school": ("科教文化服务;学校;小学", "小学"),
    "health": ("医疗保健服务;综合医院;卫生院", "卫生院"),
    "elderly_care": ("生活服务;养老院;养老院", "养老院"),
    "culture": ("科教文化服务;图书馆;图书馆", "图书馆"),
}


def random_pois_csv(
    src: Path, dst: Path, steps: tuple[float, float], n: int, per_category: int, seed: int = 7
) -> int:
    """Write an Amap-style POI CSV (name,type,lon,lat) of random facilities on the n x n tiling.

    Each facility lies on a random highway segment of a random copy, a few metres off the line.
    """
    import pandas as pd

    from lifecircle.io import read_osm

    ways = read_osm(src).ways
    rng = np.random.default_rng(seed)
    same_way = np.ones(len(ways.node_ids), dtype=bool)
    same_way[ways.offsets[1:] - 1] = False  # the last node of a way starts no segment
    seg = np.flatnonzero(same_way)
    rows = []
    for amap_type, name in AMAP_TYPES.values():
        s = rng.choice(seg, per_category)
        f = rng.uniform(0, 1, per_category)
        tile = rng.integers(0, n * n, per_category)
        lon = ways.lon[s] + f * (ways.lon[s + 1] - ways.lon[s]) + rng.normal(0, 5e-5, per_category)
        lat = ways.lat[s] + f * (ways.lat[s + 1] - ways.lat[s]) + rng.normal(0, 5e-5, per_category)
        lon += (tile % n) * steps[0]
        lat += (tile // n) * steps[1]
        rows.append(
            pd.DataFrame(
                {
                    "name": [f"{name}{i}" for i in range(per_category)],
                    "type": amap_type,
                    "lon": lon,
                    "lat": lat,
                }
            )
        )
    table = pd.concat(rows, ignore_index=True)
    table.to_csv(dst, index=False, float_format="%.7f")
    return len(table)


def tiled_bbox(src: Path, steps: tuple[float, float], n: int, crs: str) -> str:
    """W,S,E,N (WGS-84) of the walking nodes of the n x n tiling, from the untiled extract."""
    import geopandas as gpd
    import shapely

    from lifecircle.io import read_osm
    from lifecircle.network import build_walk_network

    net = build_walk_network(read_osm(src).ways, crs=crs)
    b = gpd.GeoSeries(shapely.points(net.x, net.y), crs=crs).to_crs(4326).total_bounds
    b[2] += (n - 1) * steps[0]
    b[3] += (n - 1) * steps[1]
    return ",".join(f"{v:.5f}" for v in b)


def command_runs(
    work: Path, n: int, per_category: int, repeat: int, crs: str, *, full: bool = False
) -> dict[str, float | int]:
    """Time `coverage` (first run, then from the cache) and `gaps` on the n x n tiling.

    Each command runs in its own process (peak RSS polled every 20 ms) with an
    Amap-style POI CSV of 4 x `per_category` random facilities. Returns seconds,
    MiB and the counts read from the processed cache's manifest.
    """
    import json

    work = work / f"commands_{n}x{n}"
    work.mkdir(parents=True, exist_ok=True)
    tiled = work / f"porto_alegre_{n}x{n}.osm.pbf"
    steps = tile_pbf(BENCH_PBF, tiled, n)
    pois = work / f"pois_{n}x{n}.csv"
    random_pois_csv(BENCH_PBF, pois, steps, n, per_category)
    cache = work / f"cache{n}x{n}"
    env = {**os.environ, "LIFECIRCLE_CACHE_DIR": str(cache)}
    base = [sys.executable, "-m", "lifecircle.cli", "-q"]
    area = ["--bbox", tiled_bbox(BENCH_PBF, steps, n, crs), "--name", f"poa{n}x{n}"]
    area += ["--osm-file", str(tiled), "--pois", str(pois), "--margin-m", "0", "--overwrite"]
    cov = [*base, "coverage", *area, "--no-map", "--no-isochrones", "--out", str(work / "c")]

    def run(cmd: list[str]) -> tuple[float, float, float]:
        t0 = time.perf_counter()
        peak, code, cpu = run_with_peak_rss(cmd, env)
        if code != 0:
            msg = f"{' '.join(cmd[3:5])} failed with exit code {code}"
            raise SystemExit(msg)
        seconds = time.perf_counter() - t0
        print(f"{n}x{n} {cmd[4]}: {seconds:.1f} s, {cpu:.1f} CPU s, {peak / 2**20:,.0f} MiB")
        sys.stdout.flush()
        return seconds, peak / 2**20, cpu

    out: dict[str, float | int] = {}
    out["first_s"], out["first_mib"], out["first_cpu_s"] = run(cov)  # builds the cache
    cached = [run(cov) for _ in range(repeat)]
    out["cached_s"] = statistics.median(t for t, _, _ in cached)
    out["cached_mib"] = max(m for _, m, _ in cached)
    out["cached_cpu_s"] = statistics.median(c for _, _, c in cached)
    gaps = [*base, "gaps", *area, "--no-pdf", "--out", str(work / "g")]
    out["gaps_s"], out["gaps_mib"], out["gaps_cpu_s"] = run(gaps)
    if full:  # the whole command a planner runs: isochrones of every facility, layers, maps
        whole = [*base, "coverage", *area, "--out", str(work / "f")]
        out["full_s"], out["full_mib"], out["full_cpu_s"] = run(whole)
    manifest = json.loads(next(cache.glob("processed/*/manifest.json")).read_text())
    out["nodes"] = manifest["network"]["nodes"]
    out["edges"] = manifest["network"]["edges"]
    out["facilities"] = sum(
        int(v["total"]) for v in manifest["facilities"].values() if isinstance(v, dict)
    )
    out["residents"] = manifest["residents"]["count"]
    return out


def command_rows(r: dict[str, float | int], label: str) -> list[str]:
    """Markdown table rows for :func:`command_runs` output."""
    counts = (
        f"{r['nodes']:,} nodes, {r['edges']:,} edges, {r['facilities']:,} facilities, "
        f"{r['residents']:,} residents"
    )

    def ok(value: float, limit: float) -> str:
        return "yes" if value <= limit else "no"

    gib = 2048.0
    rows = [
        f"| {label}: `coverage` first run (.osm.pbf -> processed cache -> coverage, "
        f"`--no-isochrones --no-map`; {counts}) | {r['first_s']:.1f} s "
        f"({r['first_cpu_s']:.1f} CPU s), {r['first_mib']:,.0f} MiB peak | <= 25 s, <= 2 GiB | "
        f"{ok(r['first_s'], 25)}, {ok(r['first_mib'], gib)} |",
        f"| {label}: `coverage` from the processed cache (same counts) | "
        f"{r['cached_s']:.1f} s ({r['cached_cpu_s']:.1f} CPU s), {r['cached_mib']:,.0f} MiB peak "
        "| <= 8 s, <= 2 GiB | "
        f"{ok(r['cached_s'], 8)}, {ok(r['cached_mib'], gib)} |",
        f"| {label}: `gaps --no-pdf` from the cache (coverage, rings, clusters, gap map) | "
        f"{r['gaps_s']:.1f} s ({r['gaps_cpu_s']:.1f} CPU s), {r['gaps_mib']:,.0f} MiB peak "
        "| <= 30 s | "
        f"{ok(r['gaps_s'], 30)} |",
    ]
    if "full_s" in r:
        rows.append(
            f"| {label}: `coverage` from the cache with every facility's isochrone, the category "
            "layers, maps, charts, web map and report (no flags) | "
            f"{r['full_s']:.1f} s ({r['full_cpu_s']:.1f} CPU s), {r['full_mib']:,.0f} MiB peak "
            "| (issue 12 measured 488 s, 5.2 GB) | |"
        )
    return rows


def run_with_peak_rss(cmd: list[str], env: dict[str, str]) -> tuple[int, int, float]:
    """Run a command, polling it every 20 ms; return (peak RSS bytes, exit code, CPU seconds).

    (``ru_maxrss`` of a child forked from this large process would include the
    parent's pages, so it is not used.) CPU seconds (user + system, as of the last
    poll) tell the work done when the shared machine is loaded and wall time is not.
    """
    import psutil

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    peak = 0
    cpu = 0.0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
            t = ps.cpu_times()
            cpu = t.user + t.system
        except psutil.Error:
            break
        time.sleep(0.02)
    return peak, proc.wait(), cpu


def timed(fn, repeat: int):  # type: ignore[no-untyped-def]
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import geopandas as gpd
    import networkx as nx
    import shapely

    from lifecircle.access import Router, nearest_distances
    from lifecircle.io import read_osm
    from lifecircle.isochrones import facility_isochrones, overlap_ratio
    from lifecircle.network import build_walk_network, network_to_graph
    from lifecircle.snapping import snap_points

    lines: list[str] = []
    load_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="lifecircle-bench-"))
    tiled = work / "porto_alegre_3x3.osm.pbf"
    tile_pbf(BENCH_PBF, tiled)

    crs = "EPSG:32722"
    t_read, _, osm = timed(lambda: read_osm(tiled), args.repeat)
    t_build, _, net = timed(lambda: build_walk_network(osm.ways, crs=crs), args.repeat)
    results = {
        "pbf_read_s": t_read,
        "network_build_s": t_build,
        "nodes": net.n_nodes,
        "edges": net.n_edges,
    }

    rng = np.random.default_rng(42)
    router = Router.from_network(net)

    def random_points(k: int) -> gpd.GeoDataFrame:
        e = rng.choice(net.n_edges, k, replace=False)
        f = rng.uniform(0, 1, k)
        x = net.x[net.u[e]] + f * (net.x[net.v[e]] - net.x[net.u[e]]) + rng.normal(0, 10, k)
        y = net.y[net.u[e]] + f * (net.y[net.v[e]] - net.y[net.u[e]]) + rng.normal(0, 10, k)
        return gpd.GeoDataFrame(geometry=shapely.points(x, y), crs=crs)

    fac = random_points(2000)
    fac["category"] = np.repeat(["school", "health", "elderly_care", "culture"], 500)
    fac_snap = snap_points(fac, net)
    origins = gpd.GeoDataFrame(
        geometry=shapely.points(net.x, net.y), crs=crs
    )  # every node as an origin
    org_snap = snap_points(origins, net)
    groups = {
        c: (fac["category"] == c).to_numpy()
        for c in ["school", "health", "elderly_care", "culture"]
    }
    t_ours, _all_ours, _dist = timed(
        lambda: nearest_distances(router, org_snap, fac_snap, groups, limit_m=1000.0), args.repeat
    )
    results["distances_s"] = t_ours

    # networkx: the same searches (from each facility's edge end node, cutoff 1,000 m), on the
    # osmnx-style MultiDiGraph users get from network_to_graph, and on a plain undirected Graph
    # (a lower bound for networkx: it ignores snapping and parallel edges)
    G = nx.Graph()
    G.add_weighted_edges_from(
        zip(net.u.tolist(), net.v.tolist(), net.length_m.tolist(), strict=True)
    )
    M = network_to_graph(net)

    def nx_run(graph: nx.Graph, ids: np.ndarray, weight: str) -> None:
        for mask in groups.values():
            e = fac_snap["edge"].to_numpy()[mask]
            nx.multi_source_dijkstra_path_length(
                graph, set(ids[net.u[e]].tolist()), cutoff=1000.0, weight=weight
            )

    results["networkx_multidigraph_s"] = timed(lambda: nx_run(M, net.node_osmid, "length"), 1)[0]
    results["networkx_graph_s"] = timed(lambda: nx_run(G, np.arange(net.n_nodes), "weight"), 1)[0]
    try:
        import pandana
        import pandas as pd

        t0 = time.perf_counter()
        pnet = pandana.Network(
            pd.Series(net.x),
            pd.Series(net.y),
            pd.Series(net.u),
            pd.Series(net.v),
            pd.DataFrame({"length_m": net.length_m}),
            twoway=True,
        )
        t_ch = time.perf_counter() - t0
        t0 = time.perf_counter()
        pnet.precompute(1000)
        t_pre = time.perf_counter() - t0
        fx, fy = fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy()

        def pandana_run() -> None:
            for name, mask in groups.items():
                pnet.set_pois(name, 1000, 1, pd.Series(fx[mask]), pd.Series(fy[mask]))
                pnet.nearest_pois(1000, name, num_pois=1)

        t_q = timed(pandana_run, 1)[0]
        results["pandana"] = (
            f"{t_q:.2f} s for the 4 queries (nodes only, no snapping to edges), after "
            f"{t_ch:.1f} s building the contraction hierarchy and {t_pre:.1f} s precompute(1000)"
        )
    except ImportError:
        results["pandana"] = "not installed (`pip install pandana` failed)"

    # isochrones on the real (untiled) city: 500 facilities, fast vs exact
    osm1 = read_osm(BENCH_PBF)
    net1 = build_walk_network(osm1.ways, crs=crs)
    router1 = Router.from_network(net1)
    e1 = rng.choice(net1.n_edges, 500, replace=False)
    pts1 = shapely.points(
        (net1.x[net1.u[e1]] + net1.x[net1.v[e1]]) / 2 + 5,
        (net1.y[net1.u[e1]] + net1.y[net1.v[e1]]) / 2,
    )
    fac1 = gpd.GeoDataFrame(
        {"category": ["school"] * 500, "subtype": "x", "name": ""}, geometry=pts1, crs=crs
    )
    snap1 = snap_points(fac1, net1)
    t_iso, _, iso = timed(
        lambda: facility_isochrones(router1, fac1, snap1, threshold_m=1000, buffer_m=25),
        args.repeat,
    )
    sample = np.arange(0, 500, 25)
    t_exact, _, iso_exact = timed(
        lambda: facility_isochrones(
            router1,
            fac1.iloc[sample],
            snap1.iloc[sample],
            threshold_m=1000,
            buffer_m=25,
            method="exact",
        ),
        1,
    )
    ratios = [
        overlap_ratio(a, b)
        for a, b in zip(iso.geometry.iloc[sample], iso_exact.geometry, strict=True)
    ]
    results.update(
        iso_s=t_iso, iso_exact_20_s=t_exact, iou_min=min(ratios), iou_mean=float(np.mean(ratios))
    )

    # the commands themselves, in subprocesses, on the 3 x 3 and 7 x 7 tilings with random
    # Amap-style POIs at the same density (2,000 per category at 7 x 7, issue 12)
    runs = {
        n: command_runs(work, n, round(2000 * n * n / 49), args.repeat, crs, full=n == 7)
        for n in (3, 7)
    }

    # batch: N scenarios on one area (Lujiazui, real data folder) with 1 and 2 local workers
    from lifecircle.batch import run_batch

    n_scen = 6
    spec = work / "batch.toml"
    spec.write_text(
        '[[areas]]\nname = "lujiazui"\ndistrict = "pudong"\n\n'
        + "\n".join(
            f'[[scenarios]]\nname = "m{m}"\nminutes = {m}\n'
            for m in (5, 8, 10, 12, 15, 20)[:n_scen]
        )
    )
    os.environ.setdefault("LIFECIRCLE_CACHE_DIR", str(work / "cache"))
    run_batch(spec, work / "batch-warm", workers=1)  # builds the area's processed cache once
    batch_s = {}
    for n_workers in (1, 2):
        t0 = time.perf_counter()
        res = run_batch(spec, work / f"batch-{n_workers}", workers=n_workers)
        batch_s[n_workers] = time.perf_counter() - t0
        per_job = float(res.summary["seconds"].median())
    results.update(
        batch_1_s=batch_s[1], batch_2_s=batch_s[2], batch_jobs=n_scen, batch_job_s=per_job
    )

    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            l.split(":", 1)[1].strip()
            for l in Path("/proc/cpuinfo").read_text().splitlines()
            if l.startswith("model name")
        )
    except (OSError, StopIteration):
        model = cpu
    r = results
    speedup = r["networkx_multidigraph_s"] / r["distances_s"]
    speedup_graph = r["networkx_graph_s"] / r["distances_s"]
    lines += [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`scripts/bench.py`) on {dt.date.today().isoformat()}.",
        f"Machine: {os.cpu_count()} cores ({model}), "
        f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()}; load average "
        f"{load_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end (shared machine).",
        "",
        "Data: the real OSM extract of central Porto Alegre (`../shared/data/bench/porto_alegre_r5r_sample.osm.pbf`, "
        "r5r sample data, ODbL), **tiled 3 x 3** (translated copies with offset ids) into one .osm.pbf "
        f"to reach district size: **{r['nodes']:,} walking nodes, {r['edges']:,} edges**. "
        f"Medians of {args.repeat} runs unless noted.",
        "",
        "| measure | result | target | met |",
        "|---|---|---|---|",
        f"| read the 3x3 .osm.pbf with pyosmium | {r['pbf_read_s']:.2f} s | | |",
        f"| build the walking network from it | {r['network_build_s']:.2f} s | | |",
        f"| network from .osm.pbf (read + build) | {r['pbf_read_s'] + r['network_build_s']:.2f} s | <= 20 s | "
        f"{'yes' if r['pbf_read_s'] + r['network_build_s'] <= 20 else 'no'} |",
        f"| nearest-facility distances, 4 categories x 500 facilities, every node as origin, 1,000 m | "
        f"{r['distances_s']:.3f} s | <= 1 s | {'yes' if r['distances_s'] <= 1 else 'no'} |",
        f"| networkx `multi_source_dijkstra_path_length`, same searches, on the osmnx-style "
        f"MultiDiGraph from `network_to_graph` (1 run) | {r['networkx_multidigraph_s']:.2f} s | | |",
        f"| speed-up over networkx on that graph | {speedup:.1f}x | >= 15x | "
        f"{'yes' if speedup >= 15 else 'no'} |",
        f"| networkx on a plain undirected `nx.Graph` of the same edges (1 run; lower bound) | "
        f"{r['networkx_graph_s']:.2f} s ({speedup_graph:.1f}x) | | |",
        f"| pandana | {r['pandana']} | | |",
        *command_rows(runs[3], "3 x 3"),
        *command_rows(runs[7], "7 x 7"),
        f"| 500 facility isochrones, untiled city ({net1.n_nodes:,} nodes), 1,000 m, 25 m buffer, fast | "
        f"{r['iso_s']:.1f} s | <= 10 s | {'yes' if r['iso_s'] <= 10 else 'no'} |",
        f"| exact method (per-segment buffer + union), 20 of them (1 run) | {r['iso_exact_20_s']:.1f} s "
        f"(about {r['iso_exact_20_s'] * 25:.0f} s for 500) | | |",
        f"| overlap fast vs exact (intersection over union), 20 facilities | min {r['iou_min']:.4f}, "
        f"mean {r['iou_mean']:.4f} | >= 0.98 | {'yes' if r['iou_min'] >= 0.98 else 'no'} |",
        f"| batch: {r['batch_jobs']} scenarios (coverage + gaps, no isochrones) on Lujiazui, "
        f"1 worker | {r['batch_1_s']:.1f} s | | |",
        f"| same batch, 2 workers | {r['batch_2_s']:.1f} s (speed-up "
        f"{r['batch_1_s'] / r['batch_2_s']:.2f}x) | | |",
        f"| median time of one batch job inside a worker | {r['batch_job_s']:.1f} s | | |",
        "",
        "Batch times include starting the LocalCluster (about 2-3 s) and are single runs; the "
        "area's processed cache was built before timing.",
        "",
        "The coverage command runs without isochrones and map here (`--no-isochrones --no-map`): those are "
        "measured separately above. Origins for the distance benchmark are all network nodes "
        "(every node snapped as a point on its edge).",
        "",
        "Command rows: each command runs in its own process, peak RSS polled every 20 ms; "
        "facilities are random street positions given as an Amap-style POI CSV (`--pois`, "
        "2,000 per category at 7 x 7, the same density at 3 x 3); residents are the grid points "
        "the command builds without a population layer. The first run builds the processed "
        "cache from the .osm.pbf; 'from the cache' rows are medians of the repeats. `gaps` "
        "includes its gap map (PNG). CPU s = user + system time of the command's process: on "
        "a shared machine (load average noted above) wall time exceeds it by the waiting.",
    ]
    try:  # the isochrone and map benchmarks (issue 12), written by another change
        from bench_iso import markdown_section as iso_section
    except ImportError:
        iso_section = None
    if iso_section is not None:
        lines += ["", iso_section()]
    from bench_plan import markdown_section  # the siting benchmarks (issue 10), same folder

    lines += ["", markdown_section()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
