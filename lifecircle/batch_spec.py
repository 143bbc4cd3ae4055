"""Typed models of a batch spec, validated whole before any job starts.

A spec is a TOML or YAML table with ``[[areas]]`` and ``[[scenarios]]``
entries (see ``examples/batch_pudong.toml``). :func:`validate_spec` checks
every entry and field with pydantic models and turns the first problem into
one :class:`~lifecircle.errors.InputError` line naming the file, the entry
and the field, e.g.::

    batch.toml: scenarios #2 '10min', minutes: must be a number, got 'fifteen'
    (write it without quotes, e.g. minutes = 15)

Natural forms are accepted: a bbox as a list ``[W, S, E, N]`` or the CLI's
``"W,S,E,N"`` text, a single category or POI file instead of a list, rings
as a list or ``"0,3,6"``. Numbers must be numbers (``"fifteen"`` and ``"15"``
are refused), finite, and in range; booleans must be ``true``/``false``;
unknown keys are refused. Paths may use ``$LIFECIRCLE_DATA_DIR`` and ``~``,
are relative to the spec's folder, and must exist.

To add a spec key (e.g. a scenario's ``plan = true``): add a field to
:class:`ScenarioSpec` (or :class:`AreaSpec`), carry it into the
:class:`lifecircle.batch.Scenario` built by ``lifecircle.batch.parse_spec``
and read it in ``lifecircle.batch.job_task``.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lifecircle import settings
from lifecircle.areas import parse_bbox
from lifecircle.coords import Datum
from lifecircle.coverage import check_categories, parse_profile, read_profile_text
from lifecircle.districts import get_district
from lifecircle.errors import InputError

Positive = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Flag = Annotated[bool, Strict()]
Text = Annotated[str, Strict(), Field(min_length=1)]
_BAD_NAME = re.compile(r'[/\\:*?"<>|\x00-\x1f]')
_HINTS = {
    "areas": '[[areas]] entry, a table such as: [[areas]] district = "pudong"',
    "scenarios": '[[scenarios]] entry, a table such as: [[scenarios]] name = "15min"',
}


def _resolve(value: Any, info: ValidationInfo) -> Path | None:
    """Resolve a path relative to the spec folder (``info.context['base']``); it must exist."""
    if value is None:
        return None
    if not isinstance(value, str | Path) or not str(value).strip():
        msg = f"must be a file path in quotes, got {value!r}"
        raise ValueError(msg)
    base = Path((info.context or {}).get("base", "."))
    path = Path(os.path.expandvars(str(value))).expanduser()
    path = path if path.is_absolute() else (base / path).resolve()
    if not path.is_file():
        unset = [v for v in re.findall(r"\$\{?(\w+)", str(path)) if v not in os.environ]
        fix = f"set {unset[0]} or " if unset else ""
        msg = f"file {path} does not exist: {fix}check the path (relative to the spec's folder)"
        raise ValueError(msg)
    return path


def _folder_name(value: str) -> str:
    if value != value.strip() or value in {".", ".."} or _BAD_NAME.search(value):
        msg = f"{value!r} cannot be a folder name: use letters, digits, '-' and '_'"
        raise ValueError(msg)
    return value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str | dict) else value


def _numbers(value: Any, what: str, example: str) -> list[float]:
    """Read a list of numbers or a comma-separated text of numbers."""
    if isinstance(value, str):
        try:
            return [float(v) for v in value.split(",")]
        except ValueError:
            pass
    elif isinstance(value, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return [float(v) for v in value]
    msg = f"must be {what}, e.g. {example}, got {value!r}"
    raise ValueError(msg)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PoiSpec(_Model):
    """An external POI file (a path alone, or a table with how to read it)."""

    path: Path
    crs: Datum = settings.DEFAULT_POI_DATUM  # type: ignore[assignment]
    lat: Text = settings.DEFAULT_POI_LAT_COL
    lon: Text = settings.DEFAULT_POI_LON_COL
    name: Text = settings.DEFAULT_POI_NAME_COL
    field: Text = settings.DEFAULT_POI_CATEGORY_FIELD
    mapping: Path | None = None

    _paths = field_validator("path", "mapping", mode="before")(_resolve)


class AreaSpec(_Model):
    """One ``[[areas]]`` entry: exactly one of district, boundary or bbox."""

    name: Text | None = None
    district: Text | None = None
    boundary: Path | None = None
    bbox: str | None = None
    osm_file: Path | None = None
    pois: list[PoiSpec] = []
    population: Path | None = None
    population_column: Text = settings.DEFAULT_POPULATION_COLUMN
    tags: Path | None = None
    margin_m: NonNegative = settings.DEFAULT_MARGIN_M

    _paths = field_validator("boundary", "osm_file", "population", "tags", mode="before")(_resolve)

    @field_validator("pois", mode="before")
    @classmethod
    def _pois(cls, value: Any) -> Any:
        return [{"path": v} if isinstance(v, str) else v for v in _as_list(value)]

    @field_validator("bbox", mode="before")
    @classmethod
    def _bbox(cls, value: Any) -> str:
        example = "[121.49, 31.22, 121.52, 31.245]"
        box = _numbers(value, "[W, S, E, N] in degrees", example)
        try:
            parse_bbox(",".join(repr(v) for v in box))
        except InputError:
            swapped = box[1::-1] + box[:1:-1] if len(box) == 4 else box
            hint = ""
            if len(box) == 4 and all(math.isfinite(v) for v in box):
                try:
                    parse_bbox(",".join(repr(v) for v in swapped))
                    hint = " (it reads as latitude first: give longitude first)"
                except InputError:
                    pass
            msg = f"{value!r} is not [W, S, E, N] in degrees with W < E, S < N{hint}"
            raise ValueError(msg) from None
        return value.strip() if isinstance(value, str) else ",".join(repr(v) for v in box)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _folder_name(value)

    @field_validator("district")
    @classmethod
    def _district(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                get_district(value)
            except InputError as exc:
                cli = "--boundary FILE or --bbox W,S,E,N"
                raise ValueError(str(exc).replace(cli, "boundary or bbox instead")) from None
        return value

    @model_validator(mode="after")
    def _one_area(self) -> AreaSpec:
        given = [k for k in ("district", "boundary", "bbox") if getattr(self, k) is not None]
        if len(given) != 1:
            got = f"got {' and '.join(given)}" if given else "got none"
            msg = f"give exactly one of district, boundary or bbox ({got})"
            raise ValueError(msg)
        if self.name is None and self.district is None:
            msg = "an area without a district needs a name (its output folder)"
            raise ValueError(msg)
        return self

    @property
    def label(self) -> str:
        """The area's name: its ``name``, else its ``district``."""
        return str(self.name or self.district)


class ScenarioSpec(_Model):
    """One ``[[scenarios]]`` entry: analysis options and facility changes."""

    name: Text
    minutes: Positive = settings.DEFAULT_MINUTES
    speed_kmh: Positive = settings.DEFAULT_SPEED_KMH
    target: Annotated[float, Strict(), Field(gt=0, le=1, allow_inf_nan=False)] = (
        settings.DEFAULT_TARGET
    )
    profile: Text = settings.DEFAULT_PROFILE
    categories: Annotated[list[Text], Field(min_length=1)] = list(settings.CATEGORIES)
    max_snap_m: Positive = settings.DEFAULT_MAX_SNAP_M
    rings: list[float] = list(settings.DEFAULT_RING_EDGES_KM)
    isochrones: Flag = False
    add_facilities: Path | None = None
    remove_facilities: Path | None = None
    plan: Flag = False  # also plan new sites (lifecircle plan) for the scenario
    plan_max_sites: Annotated[int, Strict(), Field(ge=0)] = settings.DEFAULT_MAX_SITES
    floor_area_per_person_m2: Positive = settings.DEFAULT_FLOOR_AREA_PER_PERSON_M2
    population_total: Positive | None = None  # known residents of each area analysed
    lang: Annotated[list[Literal["en", "zh"]], Field(min_length=1)] = ["en"]

    _paths = field_validator("add_facilities", "remove_facilities", mode="before")(_resolve)
    _one_category = field_validator("categories", mode="before")(_as_list)
    _one_lang = field_validator("lang", mode="before")(_as_list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _folder_name(value)

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str, info: ValidationInfo) -> str:
        if value in settings.PROFILES:
            return value
        if not Path(os.path.expandvars(value)).suffix:
            msg = f"unknown profile {value!r}: use {', '.join(settings.PROFILES)} or a CSV file"
            raise ValueError(msg)
        return str(_resolve(value, info))

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: list[str]) -> list[str]:
        check_categories(value)
        return value

    @field_validator("rings", mode="before")
    @classmethod
    def _rings(cls, value: Any) -> list[float]:
        edges = _numbers(value, "a list of distances in km", "[0, 3, 6, 10, 15, 25]")
        if (
            len(edges) < 2
            or not all(math.isfinite(v) and v >= 0 for v in edges)
            or any(b <= a for a, b in itertools.pairwise(edges))
        ):
            msg = f"must be two or more increasing distances >= 0 in km, got {value!r}"
            raise ValueError(msg)
        return edges

    @model_validator(mode="after")
    def _profile_reads(self) -> ScenarioSpec:
        """Read the profile with this scenario's minutes, speed and categories."""
        parse_profile(
            read_profile_text(self.profile),
            minutes=self.minutes,
            speed_kmh=self.speed_kmh,
            categories=check_categories(self.categories),
            name=self.profile,
        )
        return self


class BatchSpec(_Model):
    """A whole spec: areas x scenarios, names unique (they are output folders)."""

    areas: Annotated[list[AreaSpec], Field(min_length=1)]
    scenarios: Annotated[list[ScenarioSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> BatchSpec:
        for kind, names in (
            ("area", [a.label for a in self.areas]),
            ("scenario", [s.name for s in self.scenarios]),
        ):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                msg = f"{kind} names must be unique (they are output folders): {twice[0]!r} repeats"
                raise ValueError(msg)
        return self


def _where(loc: tuple[int | str, ...], data: Any) -> tuple[str, tuple[int | str, ...]]:
    """Name the entry of an error location (``areas #2 'nowhere'``) and the rest of it."""
    if len(loc) < 2 or loc[0] not in _HINTS or not isinstance(loc[1], int):
        return "", loc
    entries = data.get(loc[0]) if isinstance(data, dict) else None
    entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else None
    label = ""
    if isinstance(entry, dict):
        name = entry.get("name") or entry.get("district")
        label = f" {name!r}" if isinstance(name, str) else ""
    return f"{loc[0]} #{loc[1] + 1}{label}", loc[2:]


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel]:
    """Return the model validating the value at `loc`."""
    if "pois" in loc[2:] and isinstance(loc[-1], int):
        return PoiSpec
    if len(loc) >= 2 and loc[0] in _HINTS and "pois" not in loc:
        return AreaSpec if loc[0] == "areas" else ScenarioSpec
    return BatchSpec


def _message(error: dict[str, Any], rest: tuple[int | str, ...]) -> str:
    kind, value, loc = error["type"], error.get("input"), tuple(error["loc"])
    key = rest[-1] if rest else ""
    if kind == "extra_forbidden":
        return f"unknown key {key!r}: use {', '.join(sorted(_model_at(loc[:-1]).model_fields))}"
    if kind == "missing":
        return "is required"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "float_type" and isinstance(value, str):
        return f"must be a number, got {value!r} (write it without quotes, e.g. {key} = 15)"
    if kind in {"model_type", "dict_type"}:
        keys = ", ".join(sorted(_model_at(loc).model_fields))
        return f"must be a table with keys among {keys}, got {value!r}"
    if kind == "bool_type":
        return f"must be true or false (no quotes), got {value!r}"
    text = str(error["msg"]).replace("Input should be", "must be")
    hint = " (0.99 means 99%)" if key == "target" else ""
    return f"{text}, got {value!r}{hint}"


def spec_error(exc: ValidationError, data: Any, source: str) -> InputError:
    """Turn the first problem of a validation error into one line naming file, entry, field."""
    errors = exc.errors(include_url=False)
    # a misspelt key explains the missing one: name it first
    first = min(errors, key=lambda e: e["type"] != "extra_forbidden")
    loc = tuple(first["loc"])
    if (
        loc
        and loc[0] in _HINTS
        and (first["type"] in {"missing", "too_short", "list_type"} and len(loc) == 1)
    ):
        msg = f"{source}: the spec needs at least one {_HINTS[str(loc[0])]}"
        return InputError(msg)
    entry, rest = _where(loc, data)
    field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in rest).replace(".[", "[")
    where = ", ".join(p for p in (source, entry, field) if p)
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return InputError(f"{where}: {_message(dict(first), rest)}{more}")


def validate_spec(data: Any, *, base: Path, source: str = "batch spec") -> BatchSpec:
    """Validate a whole spec read from TOML/YAML.

    Parameters
    ----------
    data
        The spec as read by :func:`lifecircle.io.read_spec`.
    base
        Folder that relative paths are relative to (the spec's folder).
    source
        How errors name the spec (its file name).

    Returns
    -------
    BatchSpec

    Raises
    ------
    InputError
        One line naming the file, the entry and the field of the first problem.
    """
    if not isinstance(data, dict):
        msg = f"{source}: must be a table with [[areas]] and [[scenarios]]"
        raise InputError(msg)
    try:
        return BatchSpec.model_validate(data, context={"base": Path(base)})
    except ValidationError as exc:
        raise spec_error(exc, data, source) from None
