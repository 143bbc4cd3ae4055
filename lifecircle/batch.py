"""Batch runs: many areas x scenarios on Dask (``dask.distributed``).

Each area's processed cache is its own folder: areas naming the same district
with different POIs, population, tag table, OSM file or margin get
``<cache>/processed/<district>-<options hash>/`` (see
:func:`lifecircle.prepare.cache_folder_name`), so they never share one.

Layout of a run in ``--out DIR``::

    DIR/<area>/<scenario>/      coverage.json, gaps.json, layers, maps, reports, job.json
    DIR/summary.csv, summary.parquet

Tasks: one *prepare* task per area builds or loads the area's processed cache
(network, facilities, residents) once; one task per (area, scenario) job
depends on it, so an area's data is held in one worker's memory and shared by
its scenarios (Dask moves it to another worker only when that worker steals a
job). A worker's memory is bounded by one area.

Resuming: each job's ``job.json`` (written last, atomically) holds a hash of
the bytes of the area's input files (including the data-folder boundary,
zone and unit files of a district, POI mappings and a profile file), the
area and scenario parameters, the lifecircle version and the package
fingerprint (code and packaged tables). A job whose ``job.json`` says ``ok``
with the same hash is skipped; everything else (never run, interrupted, failed) runs again.

Faults: a job that raises a :class:`~lifecircle.errors.LifecircleError`
(e.g. an area with no data) is recorded with its error in the summary while
the others complete. A worker process that dies takes its tasks with it;
Dask's scheduler recomputes them, and their prepare task if needed, on the
remaining workers (``retries`` per job).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lifecircle import __version__, io, settings
from lifecircle.districts import get_district
from lifecircle.errors import InputError, LifecircleError
from lifecircle.facilities import CATEGORIES
from lifecircle.pipeline import (
    CoverageOptions,
    GapOptions,
    run_coverage,
    run_fetch,
    run_gaps,
    scenario_area,
)
from lifecircle.prepare import AreaRequest, PoiSource, PreparedArea, district_files

AREA_KEYS = {
    "name",
    "district",
    "boundary",
    "bbox",
    "osm_file",
    "pois",
    "population",
    "population_column",
    "tags",
    "margin_m",
}
SCENARIO_KEYS = {
    "name",
    "minutes",
    "speed_kmh",
    "target",
    "profile",
    "categories",
    "rings",
    "isochrones",
    "add_facilities",
    "remove_facilities",
}
ENV_KEYS = (
    "LIFECIRCLE_DATA_DIR",
    "LIFECIRCLE_CACHE_DIR",
    "LIFECIRCLE_OVERPASS_URL",
    "LIFECIRCLE_NOMINATIM_URL",
)


@dataclass(frozen=True)
class Area:
    """One area of a batch."""

    name: str
    request: AreaRequest


@dataclass(frozen=True)
class Scenario:
    """One scenario of a batch."""

    name: str
    options: CoverageOptions
    add_facilities: Path | None = None
    remove_facilities: Path | None = None


@dataclass(frozen=True)
class Job:
    """One (area, scenario) pair, its hash and its output folder."""

    area: Area
    scenario: Scenario
    key: str
    folder: Path


@dataclass
class BatchResult:
    """The summary of a batch run."""

    summary: pd.DataFrame
    ran: int
    skipped: int
    files: list[Path] = field(default_factory=list)


def _path(value: Any, base: Path) -> Path:
    path = Path(os.path.expandvars(str(value))).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _check_keys(entry: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        msg = f"batch spec: unknown {what} key {unknown[0]!r}: use {', '.join(sorted(allowed))}"
        raise InputError(msg)


def _poi(value: Any, base: Path) -> PoiSource:
    if isinstance(value, str):
        return PoiSource(_path(value, base))
    if not isinstance(value, dict) or "path" not in value:
        msg = "batch spec: a poi entry is a path or a table with path (and crs, lat, lon, field)"
        raise InputError(msg)
    return PoiSource(
        path=_path(value["path"], base),
        datum=value.get("crs", "wgs84"),
        lat_col=value.get("lat", "lat"),
        lon_col=value.get("lon", "lon"),
        name_col=value.get("name", "name"),
        category_field=value.get("field", "type"),
    )


def parse_spec(data: dict[str, Any], *, base: Path) -> tuple[list[Area], list[Scenario]]:
    """Turn a spec's ``areas`` and ``scenarios`` into areas and scenarios.

    Paths may use ``$LIFECIRCLE_DATA_DIR`` and are relative to the spec's folder.
    """
    raw_areas, raw_scenarios = data.get("areas"), data.get("scenarios")
    if not raw_areas or not raw_scenarios:
        msg = "batch spec needs at least one [[areas]] and one [[scenarios]] entry"
        raise InputError(msg)
    areas = []
    for entry in raw_areas:
        _check_keys(entry, AREA_KEYS, "area")
        name = entry.get("name") or entry.get("district")
        if not name:
            msg = "batch spec: every area needs a name (or a district)"
            raise InputError(msg)
        req = AreaRequest(
            district=entry.get("district"),
            boundary_file=_path(entry["boundary"], base) if "boundary" in entry else None,
            bbox=entry.get("bbox"),
            osm_file=_path(entry["osm_file"], base) if "osm_file" in entry else None,
            name=None if entry.get("district") else str(name),
            pois=tuple(_poi(p, base) for p in entry.get("pois", [])),
            population_file=_path(entry["population"], base) if "population" in entry else None,
            population_column=entry.get("population_column", "population"),
            tags_file=_path(entry["tags"], base) if "tags" in entry else None,
            margin_m=float(entry.get("margin_m", 1000.0)),
            offline=True,
        )
        areas.append(Area(str(name), req))
    scenarios = []
    for entry in raw_scenarios:
        _check_keys(entry, SCENARIO_KEYS, "scenario")
        if "name" not in entry:
            msg = "batch spec: every scenario needs a name"
            raise InputError(msg)
        defaults = CoverageOptions()
        options = CoverageOptions(
            minutes=float(entry.get("minutes", defaults.minutes)),
            speed_kmh=float(entry.get("speed_kmh", defaults.speed_kmh)),
            target=float(entry.get("target", defaults.target)),
            profile=str(entry.get("profile", defaults.profile)),
            categories=tuple(entry.get("categories", defaults.categories)),
            ring_edges_km=tuple(float(v) for v in entry.get("rings", defaults.ring_edges_km)),
            isochrones=bool(entry.get("isochrones", False)),
        )
        scenarios.append(
            Scenario(
                name=str(entry["name"]),
                options=options,
                add_facilities=_path(entry["add_facilities"], base)
                if "add_facilities" in entry
                else None,
                remove_facilities=(
                    _path(entry["remove_facilities"], base)
                    if "remove_facilities" in entry
                    else None
                ),
            )
        )
    for kind, names in (
        ("area", [a.name for a in areas]),
        ("scenario", [s.name for s in scenarios]),
    ):
        if len(set(names)) != len(names):
            msg = f"batch spec: {kind} names must be unique, got {names}"
            raise InputError(msg)
    return areas, scenarios


def _files_of(area: Area) -> list[Path]:
    """Input files whose bytes decide an area's result (for the job hash).

    The request's own files (OSM, boundary, population, tag table, POI files
    and their mappings) and, for a district, its data-folder OSM files and
    every data-folder file its registry entry names (boundary, zones, units).
    """
    req = area.request
    files = [p for p in (req.osm_file, req.boundary_file, req.population_file, req.tags_file) if p]
    files += [p.path for p in req.pois]
    files += [p.mapping_file for p in req.pois if p.mapping_file]
    root = settings.data_dir()
    if req.district and root is not None:
        district = get_district(req.district)
        files += io.find_osm_files(root / district.key / "osm") if not req.osm_file else []
        files += district_files(district)
    return [Path(p) for p in files if Path(p).is_file()]


def job_key(area: Area, scenario: Scenario) -> str:
    """Hash of everything a job's result depends on.

    The area and scenario as given, the bytes of every input file (see
    :func:`_files_of`, the scenario's facility changes and a profile given
    as a file), the lifecircle version and the package fingerprint (code
    and packaged tables: tag table, POI mappings, standards profiles,
    district registry; :func:`lifecircle.io.package_fingerprint`).
    """
    extra = [p for p in (scenario.add_facilities, scenario.remove_facilities) if p]
    profile = Path(scenario.options.profile)
    if profile.is_file():
        extra.append(profile)
    text = json.dumps(
        {
            "version": __version__,
            "package": io.package_fingerprint(),
            "area": asdict(area),
            "scenario": asdict(scenario),
            "files": {
                str(p): io.file_sha256(p) for p in [*_files_of(area), *extra] if Path(p).is_file()
            },
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plan_jobs(areas: list[Area], scenarios: list[Scenario], out_dir: Path) -> list[Job]:
    """Cross areas with scenarios into jobs with their hashes and folders."""
    return [Job(a, s, job_key(a, s), out_dir / a.name / s.name) for a in areas for s in scenarios]


def finished_row(job: Job) -> dict[str, Any] | None:
    """Return the stored summary row of a job that already succeeded with the same hash."""
    done = io.load_json(job.folder / "job.json")
    if done.get("status") == "ok" and done.get("key") == job.key:
        row = done.get("row")
        return row if isinstance(row, dict) else None
    return None


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """Apply the driver's lifecircle settings inside a worker task."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def prepare_task(area: Area, env: dict[str, str]) -> PreparedArea | str:
    """Build or load an area's processed cache; a data error comes back as its message."""
    with _environment(env):
        try:
            return run_fetch(area.request)
        except LifecircleError as exc:
            return str(exc)


def _row(
    job: Job,
    status: str,
    error: str,
    seconds: float,
    summary: dict[str, Any] | None,
    gap: dict[str, Any] | None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "area": job.area.name,
        "scenario": job.scenario.name,
        "status": status,
        "error": error,
        "seconds": round(seconds, 2),
    }
    cats = (summary or {}).get("categories", {})
    for cat in CATEGORIES:
        info = cats.get(cat, {})
        row[f"coverage_{cat}"] = info.get("coverage")
        row[f"meets_{cat}"] = info.get("meets_target")
    all_cat = (summary or {}).get("all_categories", {})
    row["coverage_all"] = all_cat.get("coverage")
    row["meets_all"] = all_cat.get("meets_target")
    grad = (gap or {}).get("gradient", {})
    row["gradient_flag"] = any(bool(g.get("flag")) for g in grad.values()) if gap else None
    row["partial_area"] = (summary or {}).get("data", {}).get("partial")
    row["job_key"] = job.key
    row["folder"] = str(job.folder)
    return row


def job_task(prepared: PreparedArea | str, job: Job, env: dict[str, str]) -> dict[str, Any]:
    """Run one scenario on a prepared area and write its outputs; return its summary row."""
    start = time.perf_counter()
    with _environment(env):
        if isinstance(prepared, str):
            row = _row(job, "error", prepared, time.perf_counter() - start, None, None)
        else:
            try:
                sc = job.scenario
                area = prepared
                if sc.add_facilities or sc.remove_facilities:
                    add = io.read_vector(sc.add_facilities) if sc.add_facilities else None
                    remove = io.read_table(sc.remove_facilities) if sc.remove_facilities else None
                    area = scenario_area(prepared, add=add, remove=remove)
                cov = run_coverage(
                    job.area.request, sc.options, out_dir=job.folder, overwrite=True, prepared=area
                )
                gap = run_gaps(
                    job.area.request,
                    sc.options,
                    GapOptions(pdf=False),
                    out_dir=job.folder,
                    overwrite=True,
                    prepared=area,
                    coverage=(cov.summary, cov.residents),
                )
                row = _row(job, "ok", "", time.perf_counter() - start, cov.summary, gap.summary)
            except LifecircleError as exc:
                row = _row(job, "error", str(exc), time.perf_counter() - start, None, None)
        io.save_json(
            {
                "key": job.key,
                "status": row["status"],
                "row": row,
                "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
            job.folder / "job.json",
        )
    return row


def run_batch(
    spec_path: Path,
    out_dir: Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    retries: int = 2,
) -> BatchResult:
    """Run every (area, scenario) job of a spec on Dask and write the summary.

    Parameters
    ----------
    spec_path
        TOML or YAML spec with ``[[areas]]`` and ``[[scenarios]]``.
    out_dir
        Output folder (one sub-folder per area and scenario).
    scheduler
        Address of an existing Dask scheduler (``tcp://host:port``); default
        a ``LocalCluster`` of `workers` single-threaded processes.
    workers
        Local worker processes (default: the machine's cores).
    progress
        Called with each finished job's summary row.
    retries
        Times a job is retried after its worker died.

    Returns
    -------
    BatchResult
    """
    from distributed import Client, LocalCluster, as_completed

    spec_path = Path(spec_path)
    areas, scenarios = parse_spec(io.read_spec(spec_path), base=spec_path.resolve().parent)
    io.ensure_writable_dir(out_dir)
    jobs = plan_jobs(areas, scenarios, Path(out_dir).resolve())
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    pending = []
    for job in jobs:
        done = finished_row(job)
        if done is not None:
            rows[(job.area.name, job.scenario.name)] = done
        else:
            pending.append(job)
    env = {k: os.environ[k] for k in ENV_KEYS if k in os.environ}
    env.setdefault("LIFECIRCLE_CACHE_DIR", str(settings.cache_dir().resolve()))
    if pending:
        cluster = None
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(
                n_workers=workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # a free port: its HTTP server starts even with None
            )
            client = Client(cluster)
        try:
            prepared = {
                a.name: client.submit(
                    prepare_task, a, env, key=f"prepare-{a.name}", retries=retries
                )
                for a in areas
                if any(j.area.name == a.name for j in pending)
            }
            futures = [
                client.submit(
                    job_task,
                    prepared[j.area.name],
                    j,
                    env,
                    key=f"job-{j.area.name}-{j.scenario.name}-{j.key[:8]}",
                    retries=retries,
                )
                for j in pending
            ]
            for future in as_completed(futures):
                row = future.result()
                rows[(row["area"], row["scenario"])] = row
                if progress is not None:
                    progress(row)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    order = [(j.area.name, j.scenario.name) for j in jobs]
    summary = pd.DataFrame([rows[k] for k in order])
    files = [
        io.save_table(summary, Path(out_dir) / "summary.csv"),
        io.save_table(summary, Path(out_dir) / "summary.parquet"),
    ]
    return BatchResult(
        summary=summary, ran=len(pending), skipped=len(jobs) - len(pending), files=files
    )
