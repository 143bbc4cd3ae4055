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

Validation: the whole spec is checked before any job starts
(:mod:`lifecircle.batch_spec`); a mistake is one :class:`InputError` line
naming the file, the entry and the field.

Faults: any exception in a job, or in its area's prepare task (a lifecircle
error such as an area with no data, or an unexpected ``KeyError`` from
pandas), is recorded in that job's row (``status = "error"``, a one-line
``error``; an unexpected one's traceback in its ``job.json``) while the
other jobs complete and the summary is written; an area that cannot be
prepared fails each of its scenarios with its error. A worker process that
dies takes its tasks with it; Dask's scheduler recomputes them, and their
prepare task if needed, on the remaining workers (``retries`` per job); a
task lost beyond that is an ``error`` row too.

Settings: the driver's data and cache folders and servers travel to every
task as one frozen :class:`lifecircle.settings.Settings` and apply inside
the task through :func:`lifecircle.settings.using` (a context variable),
never through ``os.environ``, so tasks of different batches can share a
multi-threaded worker.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lifecircle import __version__, io, settings
from lifecircle.batch_spec import AreaSpec, ScenarioSpec, validate_spec
from lifecircle.districts import get_district
from lifecircle.errors import LifecircleError
from lifecircle.facilities import CATEGORIES
from lifecircle.pipeline import (
    DEFAULT_MAX_SITES,
    CoverageOptions,
    GapOptions,
    PlanOptions,
    run_coverage,
    run_fetch,
    run_gaps,
    run_plan,
    scenario_area,
)
from lifecircle.prepare import AreaRequest, PoiSource, PreparedArea, district_files


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
    plan: bool = False
    plan_max_sites: int = DEFAULT_MAX_SITES


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


def _area(spec: AreaSpec) -> Area:
    return Area(
        spec.label,
        AreaRequest(
            district=spec.district,
            boundary_file=spec.boundary,
            bbox=spec.bbox,
            osm_file=spec.osm_file,
            name=None if spec.district else spec.label,
            pois=tuple(
                PoiSource(
                    path=p.path,
                    datum=p.crs,
                    lat_col=p.lat,
                    lon_col=p.lon,
                    name_col=p.name,
                    category_field=p.field,
                    mapping_file=p.mapping,
                )
                for p in spec.pois
            ),
            population_file=spec.population,
            population_column=spec.population_column,
            tags_file=spec.tags,
            margin_m=spec.margin_m,
            offline=True,
        ),
    )


def _scenario(spec: ScenarioSpec) -> Scenario:
    options = CoverageOptions(
        minutes=spec.minutes,
        speed_kmh=spec.speed_kmh,
        target=spec.target,
        profile=spec.profile,
        categories=tuple(spec.categories),
        max_snap_m=spec.max_snap_m,
        ring_edges_km=tuple(spec.rings),
        isochrones=spec.isochrones,
        floor_area_per_person_m2=spec.floor_area_per_person_m2,
        population_total=spec.population_total,
        langs=tuple(dict.fromkeys(spec.lang)),
    )
    return Scenario(
        spec.name,
        options,
        spec.add_facilities,
        spec.remove_facilities,
        plan=spec.plan,
        plan_max_sites=spec.plan_max_sites,
    )


def parse_spec(
    data: Any, *, base: Path, source: str = "batch spec"
) -> tuple[list[Area], list[Scenario]]:
    """Validate a whole spec and turn its ``areas`` and ``scenarios`` into areas and scenarios.

    Every entry and field is checked before anything runs
    (:func:`lifecircle.batch_spec.validate_spec`); the first problem is an
    :class:`InputError` naming `source`, the entry and the field.

    Parameters
    ----------
    data
        The spec as read by :func:`lifecircle.io.read_spec`.
    base
        The spec's folder: relative paths (which may use ``$LIFECIRCLE_DATA_DIR``)
        are relative to it.
    source
        How error messages name the spec (its path).
    """
    spec = validate_spec(data, base=base, source=source)
    return [_area(a) for a in spec.areas], [_scenario(s) for s in spec.scenarios]


def load_spec(path: Path) -> tuple[list[Area], list[Scenario]]:
    """Read (TOML/YAML) and validate a spec file; errors name the file."""
    path = Path(path)
    return parse_spec(io.read_spec(path), base=path.resolve().parent, source=str(path))


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


@dataclass(frozen=True)
class Failure:
    """Why a task failed: one line for the summary and, if unexpected, the traceback."""

    error: str
    detail: str = ""


def failure(exc: BaseException, *, context: str = "") -> Failure:
    """Describe an exception in one line (a non-lifecircle one with its type and traceback).

    Examples
    --------
    >>> failure(KeyError("population"), context="preparing the area").error
    "preparing the area: unexpected KeyError: 'population' (traceback in job.json)"
    """
    text = " ".join(str(exc).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    if not isinstance(exc, LifecircleError):
        text = f"unexpected {type(exc).__name__}: {text} (traceback in job.json)"
    detail = "" if isinstance(exc, LifecircleError) else "".join(traceback.format_exception(exc))
    return Failure(f"{context}: {text}" if context else text, detail)


def prepare_task(area: Area, run_settings: settings.Settings) -> PreparedArea | Failure:
    """Build or load an area's processed cache; any error comes back as a :class:`Failure`.

    `run_settings` (data and cache folders, servers) apply to this task alone
    (:func:`lifecircle.settings.using`), whatever else runs in the worker.
    """
    with settings.using(run_settings):
        try:
            return run_fetch(area.request)
        except Exception as exc:  # recorded in every job of the area; the batch goes on
            return failure(exc, context="preparing the area")


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
    people = (summary or {}).get("data", {}).get("residents", {})
    row["estimated_residents"] = people.get("estimated_residents")
    grad = (gap or {}).get("gradient", {})
    row["gradient_flag"] = any(bool(g.get("flag")) for g in grad.values()) if gap else None
    tiers = (gap or {}).get("hierarchy", {})
    for cat in [*CATEGORIES, "all_categories"]:
        entry = tiers.get("test", {}).get(cat, {})
        row[f"tier_order_{cat}"] = entry.get("verdict")
        for tier, value in entry.get("coverage", {}).items():
            row[f"coverage_{cat}_{tier}"] = value
    row["empty_tiers"] = ",".join(tiers["empty_tiers"]) if "empty_tiers" in tiers else None
    row["partial_area"] = (summary or {}).get("data", {}).get("partial")
    row["job_key"] = job.key
    row["folder"] = str(job.folder)
    return row


def _run_job(prepared: PreparedArea, job: Job, start: float) -> dict[str, Any]:
    """Apply the scenario's facility changes, run coverage and gaps, return the ok row."""
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
    if sc.plan:
        plan = run_plan(
            job.area.request,
            sc.options,
            PlanOptions(max_sites=sc.plan_max_sites),
            out_dir=job.folder,
            overwrite=True,
            prepared=area,
        )
        for key, entry in plan.summary["categories"].items():
            row[f"sites_needed_{key.replace(':', '_')}"] = entry["sites_needed"]
        row["seconds"] = round(time.perf_counter() - start, 2)
    return row


_BACKEND_LOCK = threading.Lock()


def job_task(
    prepared: PreparedArea | Failure, job: Job, run_settings: settings.Settings
) -> dict[str, Any]:
    """Run one scenario on a prepared area, write its outputs and ``job.json``; return its row.

    Any exception (a lifecircle error or not) becomes the row's ``error``
    with status ``error``; an area whose preparation failed fails each of
    its jobs with that error. `run_settings` apply to this task alone.
    """
    start = time.perf_counter()
    with _BACKEND_LOCK:  # threads of one worker never switch matplotlib's backend at once
        settings.use_file_backend()  # a worker writes maps to files; it never opens windows
    with settings.using(run_settings):
        if isinstance(prepared, Failure):
            fault: Failure | None = prepared
        else:
            try:
                row = _run_job(prepared, job, start)
                fault = None
            except Exception as exc:  # one job's failure never stops the batch
                fault = failure(exc)
        if fault is not None:
            row = _row(job, "error", fault.error, time.perf_counter() - start, None, None)
        record = {
            "key": job.key,
            "status": row["status"],
            "row": row,
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        if fault is not None and fault.detail:
            record["traceback"] = fault.detail
        io.save_json(record, job.folder / "job.json")
    return row


def _token(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def _run_jobs(
    jobs: list[Job],
    run_settings: settings.Settings,
    scheduler: str | None,
    workers: int | None,
    retries: int,
) -> Iterator[dict[str, Any]]:
    """Submit a prepare task per area and a task per job; yield each job's row as it ends.

    A task that raises in spite of :func:`job_task`'s own handling (its
    worker died more than `retries` times, its ``job.json`` cannot be
    written) gives an ``error`` row too, so the batch always completes.
    Task keys hash the job, its folder and the settings, so batches sharing
    a scheduler never share a task.
    """
    from distributed import Client, LocalCluster, as_completed

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
        areas = {j.area.name: j.area for j in jobs}
        prepared = {
            name: client.submit(
                prepare_task,
                area,
                run_settings,
                key=f"prepare-{name}-{_token(asdict(area), run_settings)}",
                retries=retries,
            )
            for name, area in areas.items()
        }
        by_key = {}
        for j in jobs:
            future = client.submit(
                job_task,
                prepared[j.area.name],
                j,
                run_settings,
                key=f"job-{j.area.name}-{j.scenario.name}-{_token(j.key, j.folder, run_settings)}",
                retries=retries,
            )
            by_key[future.key] = (future, j)
        for future in as_completed([f for f, _ in by_key.values()]):
            job = by_key[future.key][1]
            try:
                yield future.result()
            except Exception as exc:  # the task itself was lost: record it, go on
                yield _row(job, "error", failure(exc, context="task lost").error, 0.0, None, None)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


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
    spec_path = Path(spec_path)
    areas, scenarios = load_spec(spec_path)
    settings.use_file_backend()  # in-process workers then find Agg chosen and switch nothing
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
    if pending:
        run_settings = settings.current().resolved()  # sent to every task, never via os.environ
        for row in _run_jobs(pending, run_settings, scheduler, workers, retries):
            rows[(row["area"], row["scenario"])] = row
            if progress is not None:
                progress(row)
    order = [(j.area.name, j.scenario.name) for j in jobs]
    summary = pd.DataFrame([rows[k] for k in order])
    files = [
        io.save_table(summary, Path(out_dir) / "summary.csv"),
        io.save_table(summary, Path(out_dir) / "summary.parquet"),
    ]
    return BatchResult(
        summary=summary, ran=len(pending), skipped=len(jobs) - len(pending), files=files
    )
