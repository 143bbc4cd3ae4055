"""The ``lifecircle`` command line: a thin click layer over :mod:`lifecircle.pipeline`.

Every command parses its options, calls the pipeline, and turns a
:class:`~lifecircle.errors.LifecircleError` into a one-line message and exit
code 1 (no traceback). Option defaults are the constants of
:mod:`lifecircle.settings` (which the library's modules use too), never
repeated as literals; importing them keeps ``lifecircle --help`` fast.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from lifecircle import __version__, settings
from lifecircle.errors import LifecircleError

F = TypeVar("F", bound=Callable[..., Any])
CATEGORY_CHOICES = list(settings.CATEGORIES)
LANG_CHOICES = ("en", "zh")


def _handle_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            try:
                result = func(*args, **kwargs)
            except LifecircleError as exc:
                raise click.ClickException(str(exc)) from None
            finally:
                for w in caught:
                    if issubclass(w.category, RuntimeWarning):
                        click.echo(f"Warning: {w.message}", err=True)
        return result

    return wrapper  # type: ignore[return-value]


def area_options(func: F) -> F:
    """Options that say which area and which data to use (shared by fetch/coverage)."""
    options = [
        click.option("--district", help="Registry district: name, alias or adcode (e.g. pudong)."),
        click.option(
            "--boundary",
            "boundary_file",
            type=click.Path(path_type=Path),
            help="Boundary polygon file (GeoJSON/GeoPackage).",
        ),
        click.option("--bbox", help="Bounding box W,S,E,N in WGS-84 degrees."),
        click.option("--name", help="Cache name for a --boundary/--bbox area."),
        click.option(
            "--osm-file",
            type=click.Path(path_type=Path),
            help="Local .osm, .osm.bz2 or .osm.pbf extract (first in line).",
        ),
        click.option(
            "--pois",
            multiple=True,
            type=click.Path(path_type=Path),
            help="External POI file (CSV, GeoJSON, GeoPackage); repeatable.",
        ),
        click.option(
            "--pois-crs",
            type=click.Choice(["wgs84", "gcj02", "bd09"]),
            default=settings.DEFAULT_POI_DATUM,
            show_default=True,
            help="Datum of the POI coordinates.",
        ),
        click.option(
            "--pois-lat",
            default=settings.DEFAULT_POI_LAT_COL,
            show_default=True,
            help="CSV latitude column.",
        ),
        click.option(
            "--pois-lon",
            default=settings.DEFAULT_POI_LON_COL,
            show_default=True,
            help="CSV longitude column.",
        ),
        click.option(
            "--pois-name",
            default=settings.DEFAULT_POI_NAME_COL,
            show_default=True,
            help="POI name column.",
        ),
        click.option(
            "--pois-field",
            default=settings.DEFAULT_POI_CATEGORY_FIELD,
            show_default=True,
            help="POI column holding the source's category.",
        ),
        click.option(
            "--pois-mapping",
            type=click.Path(path_type=Path),
            help="CSV pattern,category,subtype mapping (default: Amap types).",
        ),
        click.option(
            "--population",
            "population_file",
            type=click.Path(path_type=Path),
            help="Population layer: GeoTIFF, or points/polygons with a population column.",
        ),
        click.option(
            "--population-column", default=settings.DEFAULT_POPULATION_COLUMN, show_default=True
        ),
        click.option(
            "--tags",
            "tags_file",
            type=click.Path(path_type=Path),
            help="Facility tag table CSV (default: the packaged one).",
        ),
        click.option(
            "--margin-m",
            type=float,
            default=settings.DEFAULT_MARGIN_M,
            show_default=True,
            help="Margin around the boundary for streets and facilities.",
        ),
        click.option(
            "--offline/--online",
            default=False,
            show_default=True,
            help="Never download (Overpass/Nominatim).",
        ),
        click.option(
            "--rebuild/--reuse",
            default=False,
            show_default=True,
            help="Rebuild the processed cache even when it is current.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _area_request(kw: dict[str, Any]) -> Any:
    from lifecircle.checks import check_area_name, check_numeric_options
    from lifecircle.prepare import AreaRequest, PoiSource

    check_numeric_options(kw)  # every numeric option of the command, before any work
    check_area_name(kw["name"])

    pois = tuple(
        PoiSource(
            path=p,
            datum=kw["pois_crs"],
            lon_col=kw["pois_lon"],
            lat_col=kw["pois_lat"],
            name_col=kw["pois_name"],
            category_field=kw["pois_field"],
            mapping_file=kw["pois_mapping"],
        )
        for p in kw["pois"]
    )
    return AreaRequest(
        district=kw["district"],
        boundary_file=kw["boundary_file"],
        bbox=kw["bbox"],
        osm_file=kw["osm_file"],
        name=kw["name"],
        pois=pois,
        population_file=kw["population_file"],
        population_column=kw["population_column"],
        tags_file=kw["tags_file"],
        margin_m=kw["margin_m"],
        offline=kw["offline"],
    )


@click.group()
@click.version_option(__version__)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", count=True, help="Less output.")
def main(verbose: int, quiet: int) -> None:
    """Measure 15-minute community life circle coverage from OpenStreetMap."""
    from lifecircle import progress, settings

    settings.use_file_backend()  # the CLI writes files only; never opens windows
    level = logging.WARNING - 10 * verbose + 10 * quiet
    handlers: list[logging.Handler] | None = None
    if progress.wanted(quiet=bool(quiet)):  # bars on an interactive terminal only
        from rich.console import Console
        from rich.logging import RichHandler

        console = Console(stderr=True)
        progress.enable(console)
        click.get_current_context().call_on_close(progress.disable)
        # log lines (downloads: lifecircle.progress) print above the bars, not through them
        handlers = [RichHandler(console=console, show_time=False, show_path=False)]
    else:
        progress.disable()
    logging.basicConfig(
        level=max(logging.DEBUG, level),
        format="%(levelname)s %(name)s: %(message)s" if handlers is None else "%(message)s",
        handlers=handlers,
    )
    if not quiet:  # long downloads show one line per piece by default
        logging.getLogger("lifecircle.progress").setLevel(min(level, logging.INFO))


@main.command()
def districts() -> None:
    """List the registered districts."""
    from lifecircle.districts import load_registry

    for key, d in sorted(load_registry().items()):
        click.echo(f"{key:<12} {d.adcode:<8} {d.name_zh}  {d.name}")


@main.command()
@area_options
@_handle_errors
def fetch(**kw: Any) -> None:
    """Obtain and cache the walking network, facilities and residents of an area."""
    from lifecircle.pipeline import run_fetch
    from lifecircle.report import format_fetch_summary

    prepared = run_fetch(_area_request(kw), rebuild=kw["rebuild"])
    click.echo(format_fetch_summary(prepared.manifest))
    click.echo(f"cache: {prepared.folder}")


def analysis_options(func: F) -> F:
    """Options of the analysis itself (shared by coverage and gaps)."""
    options = [
        click.option(
            "--minutes",
            type=float,
            default=settings.DEFAULT_MINUTES,
            show_default=True,
            help="Walking time of tiers with no minutes of their own; refused with a profile "
            "whose tiers fix them (shanghai).",
        ),
        click.option(
            "--speed-kmh",
            type=float,
            default=settings.DEFAULT_SPEED_KMH,
            show_default=True,
            help="Walking speed converting every tier's minutes to metres.",
        ),
        click.option(
            "--target",
            type=float,
            default=settings.DEFAULT_TARGET,
            show_default=True,
            help="Coverage target as a share (0.99 = 99%).",
        ),
        click.option(
            "--profile",
            default=settings.DEFAULT_PROFILE,
            show_default=True,
            help=f"Standard profile: {', '.join(settings.PROFILES)}, or a CSV file.",
        ),
        click.option(
            "--category",
            "categories",
            multiple=True,
            type=click.Choice(CATEGORY_CHOICES),
            help="Limit to these categories (repeatable; default all).",
        ),
        click.option(
            "--max-snap-m",
            type=float,
            default=settings.DEFAULT_MAX_SNAP_M,
            show_default=True,
            help="Points farther from any street are unreachable.",
        ),
        click.option(
            "--facility-max-snap-m",
            type=float,
            help="Snap limit of the facilities (default: --max-snap-m).",
        ),
        click.option(
            "--rings",
            default=",".join(f"{v:g}" for v in settings.DEFAULT_RING_EDGES_KM),
            show_default=True,
            help="Distance ring edges from the district core, km.",
        ),
        click.option(
            "--floor-area-per-person-m2",
            type=float,
            default=settings.DEFAULT_FLOOR_AREA_PER_PERSON_M2,
            show_default=True,
            help="Residential floor area per person turning floor area into estimated "
            "residents (Shanghai's per capita housing floor area, 2020).",
        ),
        click.option(
            "--population-total",
            type=float,
            help="Known number of residents of the analysed area: estimated residents are "
            "scaled to it (in proportion to the weights).",
        ),
        click.option(
            "--lang",
            "langs",
            multiple=True,
            type=click.Choice(list(LANG_CHOICES)),
            help="Language of reports, maps and the table (repeatable: each writes its "
            "report; the first also draws the maps). [default: en]",
        ),
        click.option(
            "-o",
            "--out",
            type=click.Path(path_type=Path),
            help="Output folder (default: data/processed/<area>/).",
        ),
        click.option(
            "--overwrite", is_flag=True, help="Replace outputs in an existing --out folder."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _langs(kw: dict[str, Any]) -> tuple[str, ...]:
    """Return the ``--lang`` values in order, without repeats (default English)."""
    return tuple(dict.fromkeys(kw.get("langs") or (settings.DEFAULT_LANG,)))


def hierarchy_options(func: F) -> F:
    """Options of the central city / suburban core / remote tiers (``gaps``)."""
    hi = settings

    def number(name: str, default: float, help_text: str) -> Any:
        return click.option(name, type=float, default=default, show_default=True, help=help_text)

    options = [
        click.option(
            "--central",
            type=click.Path(path_type=Path),
            help="Central-city polygon (e.g. inside the Outer Ring Road); default: the 街道 "
            "sub-districts (unit codes 0xx).",
        ),
        click.option(
            "--centres",
            type=click.Path(path_type=Path),
            help="Town seats (points): residents within --centre-radius-m are suburban core.",
        ),
        number("--centre-radius-m", hi.DEFAULT_CENTRE_RADIUS_M, "Radius of a town seat's core."),
        click.option(
            "--osm-places/--no-osm-places",
            default=False,
            show_default=True,
            help="Also take OSM place=town|suburb|village nodes as town seats (online).",
        ),
        number("--cell-m", hi.DEFAULT_CELL_M, "Degree of Urbanisation grid cell size."),
        number(
            "--centre-density-km2",
            hi.DEFAULT_CENTRE_DENSITY_KM2,
            "Urban centre: minimum persons per km² of a cell.",
        ),
        number(
            "--centre-min-persons",
            hi.DEFAULT_CENTRE_MIN_PERSONS,
            "Urban centre: minimum persons of a 4-connected group of cells.",
        ),
        number(
            "--cluster-density-km2",
            hi.DEFAULT_CLUSTER_DENSITY_KM2,
            "Urban cluster: minimum persons per km² of a cell.",
        ),
        number(
            "--cluster-min-persons",
            hi.DEFAULT_CLUSTER_MIN_PERSONS,
            "Urban cluster: minimum persons of an 8-connected group of cells.",
        ),
        click.option(
            "--fill-gaps/--no-fill-gaps",
            default=True,
            show_default=True,
            help="Fill urban-centre gaps by the method's 5-of-8 majority rule.",
        ),
        click.option(
            "--bootstrap",
            type=int,
            default=hi.DEFAULT_BOOTSTRAP,
            show_default=True,
            help="Bootstrap replicates of the tier ordering test.",
        ),
        click.option(
            "--seed", type=int, default=hi.DEFAULT_SEED, show_default=True, help="Bootstrap seed."
        ),
        click.option(
            "--min-tier-points",
            type=int,
            default=hi.DEFAULT_MIN_TIER_POINTS,
            show_default=True,
            help="A tier with fewer resident points decides no pair of the ordering test.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _hierarchy_options(kw: dict[str, Any]) -> Any:
    from lifecircle.hierarchy import HierarchyOptions, check_hierarchy_options

    opts = HierarchyOptions(
        cell_m=kw["cell_m"],
        centre_density_km2=kw["centre_density_km2"],
        centre_min_persons=kw["centre_min_persons"],
        cluster_density_km2=kw["cluster_density_km2"],
        cluster_min_persons=kw["cluster_min_persons"],
        fill_gaps=kw["fill_gaps"],
        centre_radius_m=kw["centre_radius_m"],
        bootstrap=kw["bootstrap"],
        seed=kw["seed"],
        min_tier_points=kw["min_tier_points"],
    )
    check_hierarchy_options(opts)  # before any work
    return opts


def _coverage_options(kw: dict[str, Any], **extra: Any) -> Any:
    from lifecircle.checks import check_ring_edges
    from lifecircle.errors import InputError
    from lifecircle.pipeline import CoverageOptions

    try:
        rings = tuple(float(v) for v in str(kw["rings"]).split(","))
    except ValueError:
        msg = f"--rings {kw['rings']!r} is not a comma-separated list of km"
        raise InputError(msg) from None
    check_ring_edges(rings)
    return CoverageOptions(
        minutes=kw["minutes"],
        speed_kmh=kw["speed_kmh"],
        target=kw["target"],
        profile=kw["profile"],
        categories=tuple(kw["categories"]) or tuple(CATEGORY_CHOICES),
        max_snap_m=kw["max_snap_m"],
        facility_max_snap_m=kw["facility_max_snap_m"],
        ring_edges_km=rings,
        floor_area_per_person_m2=kw["floor_area_per_person_m2"],
        population_total=kw["population_total"],
        langs=_langs(kw),
        **extra,
    )


@main.command()
@area_options
@analysis_options
@click.option("--isochrones/--no-isochrones", default=True, show_default=True)
@click.option("--map/--no-map", "make_map", default=True, show_default=True)
@click.option(
    "--isochrone-buffer-m",
    type=float,
    default=settings.DEFAULT_ISOCHRONE_BUFFER_M,
    show_default=True,
)
@click.option(
    "--add-facilities",
    type=click.Path(path_type=Path),
    help="Add these facilities first (a layer with a category column, e.g. a plan's sites.gpkg).",
)
@_handle_errors
def coverage(**kw: Any) -> None:
    """Coverage of each facility category against the target (default 99% within 15 min)."""
    from lifecircle.pipeline import run_coverage
    from lifecircle.report import format_coverage_table

    options = _coverage_options(
        kw,
        isochrones=kw["isochrones"],
        make_map=kw["make_map"],
        isochrone_buffer_m=kw["isochrone_buffer_m"],
    )
    result = run_coverage(
        _area_request(kw),
        options,
        out_dir=kw["out"],
        overwrite=kw["overwrite"],
        rebuild=kw["rebuild"],
        add_facilities=kw["add_facilities"],
    )
    click.echo(format_coverage_table(result.summary, lang=options.langs[0]))
    click.echo(f"outputs: {result.out_dir}")


@main.command()
@area_options
@analysis_options
@click.option(
    "--zones",
    "zones_file",
    type=click.Path(path_type=Path),
    help="Zones to compare with a ring around each (e.g. development zones).",
)
@click.option("--zones-name", help="Column naming the --zones polygons (default: name).")
@click.option(
    "--zone-ring-m",
    type=float,
    default=settings.DEFAULT_ZONE_RING_M,
    show_default=True,
    help="Width of the comparison ring around each --zones polygon.",
)
@click.option(
    "--lag-points",
    type=float,
    default=settings.DEFAULT_LAG_POINTS,
    show_default=True,
    help="Flag when the outermost populated ring lags the core by more.",
)
@click.option(
    "--cluster-eps-m",
    type=float,
    default=settings.DEFAULT_CLUSTER_EPS_M,
    show_default=True,
    help="DBSCAN radius for gap clusters.",
)
@click.option("--pdf/--no-pdf", default=True, show_default=True, help="Also write PDF maps.")
@hierarchy_options
@_handle_errors
def gaps(**kw: Any) -> None:
    """Where the gaps are: zones, core-periphery gradient, inequality, gap clusters, maps."""
    from lifecircle.i18n import check_lang
    from lifecircle.pipeline import GapOptions, run_gaps
    from lifecircle.report import format_gaps_lines

    req = _area_request(kw)  # checks every numeric option first
    gap_options = GapOptions(
        lag_points=kw["lag_points"],
        cluster_eps_m=kw["cluster_eps_m"],
        zones_file=kw["zones_file"],
        zones_name_field=kw["zones_name"],
        zone_ring_m=kw["zone_ring_m"],
        pdf=kw["pdf"],
        central_file=kw["central"],
        centres_file=kw["centres"],
        osm_places=kw["osm_places"],
        hierarchy=_hierarchy_options(kw),
    )
    result = run_gaps(
        req,
        _coverage_options(kw),
        gap_options,
        out_dir=kw["out"],
        overwrite=kw["overwrite"],
        rebuild=kw["rebuild"],
    )
    click.echo(format_gaps_lines(result, lang=check_lang(_langs(kw)[0])))
    click.echo("© OpenStreetMap contributors")


@main.command()
@area_options
@analysis_options
@click.option(
    "--max-sites",
    type=int,
    default=settings.DEFAULT_MAX_SITES,
    show_default=True,
    help="K of the coverage curve (best coverage with k = 1..K new sites).",
)
@click.option(
    "--candidates",
    "candidates_file",
    type=click.Path(path_type=Path),
    help="Candidate sites (points or polygons); default: points along the streets.",
)
@click.option(
    "--candidate-spacing-m",
    type=float,
    default=settings.DEFAULT_CANDIDATE_SPACING_M,
    show_default=True,
    help="Spacing of the default street candidates.",
)
@click.option(
    "--time-limit-s",
    type=float,
    default=settings.DEFAULT_TIME_LIMIT_S,
    show_default=True,
    help="Time limit of each exact solve (HiGHS); the gap to the bound is reported.",
)
@click.option(
    "--tier",
    "--subtype",
    "tier",
    help="Plan one tier of a tiered profile (e.g. nursing_home); default every required tier.",
)
@_handle_errors
def plan(**kw: Any) -> None:
    """Where to build: the fewest new sites per category that reach the target."""
    from lifecircle.pipeline import PlanOptions, run_plan

    plan_options = PlanOptions(
        max_sites=kw["max_sites"],
        candidates_file=kw["candidates_file"],
        candidate_spacing_m=kw["candidate_spacing_m"],
        time_limit_s=kw["time_limit_s"],
        tier=kw["tier"],
    )
    result = run_plan(
        _area_request(kw),
        _coverage_options(kw, isochrones=False, make_map=False),
        plan_options,
        out_dir=kw["out"],
        overwrite=kw["overwrite"],
        rebuild=kw["rebuild"],
    )
    for key, entry in result.summary["categories"].items():
        sol = entry["solution"]
        verdict = (
            f"{entry['sites_needed']} new sites reach {entry['coverage_reached'] * 100:.1f}%"
            if entry["target_reachable"]
            else f"target out of reach: {entry['sites_needed']} sites reach "
            f"{entry['coverage_reached'] * 100:.1f}%, the most the candidates can"
        )
        proof = "proven optimal" if sol["proven_optimal"] else f"gap {sol['gap']:.2%} to the bound"
        click.echo(
            f"{key:<28} now {entry['coverage_now'] * 100:5.1f}%  {verdict} ({proof}, "
            f"{sol['seconds']:.1f} s)"
        )
    click.echo(f"outputs: {result.out_dir}")
    click.echo("© OpenStreetMap contributors")


@main.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Output folder: <area>/<scenario>/ per job, summary.csv/.parquet.",
)
@click.option("--scheduler", help="Existing Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--workers", type=int, help="Local worker processes (default: one per core).")
@_handle_errors
def batch(spec: Path, out: Path, scheduler: str | None, workers: int | None) -> None:
    """Run every area x scenario of a TOML/YAML spec on Dask (resumable)."""
    from lifecircle.batch import load_spec, run_batch
    from lifecircle.progress import step

    areas, scenarios = load_spec(spec)
    with step("batch jobs", total=len(areas) * len(scenarios)) as advance:
        result = run_batch(
            spec, out, scheduler=scheduler, workers=workers, progress=lambda row: advance(1)
        )
    s = result.summary
    click.echo(
        f"{len(s)} jobs: {result.ran} run, {result.skipped} skipped (unchanged), "
        f"{int((s['status'] != 'ok').sum())} failed"
    )
    for row in s.loc[s["status"] != "ok"].itertuples():
        click.echo(f"  {row.area}/{row.scenario}: {row.error}")
    click.echo(f"summary: {out / 'summary.csv'}")
    failed = int((s["status"] != "ok").sum())
    if failed:  # the summary is written; a script still learns that jobs failed
        msg = f"{failed} of {len(s)} jobs failed: see {out / 'summary.csv'}"
        raise click.ClickException(msg)


if __name__ == "__main__":
    main()
