"""Importing lifecircle.plot leaves matplotlib's backend alone; the CLI picks Agg itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DATA_DIR

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _env_without_display() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env.pop("MPLBACKEND", None)
    return env


def test_importing_plot_keeps_the_chosen_backend() -> None:
    code = (
        "import matplotlib; matplotlib.use('svg');"
        "import lifecircle.plot, lifecircle.charts, lifecircle.pipeline;"
        "print(matplotlib.get_backend())"
    )
    assert _python(code, _env_without_display()) == "svg"


def test_importing_plot_chooses_no_backend() -> None:
    # a notebook's inline backend is chosen after the imports: nothing may be forced before
    code = "import matplotlib, lifecircle.plot;print(matplotlib.rcParams._get_backend_or_none())"
    assert _python(code, _env_without_display()) == "None"


def test_file_backend_keeps_inline_and_replaces_window_toolkits() -> None:
    code = (
        "import matplotlib; from lifecircle import settings;"
        "settings.use_file_backend(); a = matplotlib.get_backend().lower();"
        "matplotlib.use('module://matplotlib_inline.backend_inline');"
        "settings.use_file_backend(); b = matplotlib.rcParams._get_backend_or_none();"
        "print(a, b)"
    )
    assert _python(code, _env_without_display()) == (
        "agg module://matplotlib_inline.backend_inline"
    )


def test_cli_writes_the_maps_with_no_display(tmp_path: Path) -> None:
    env = _env_without_display()
    env["LIFECIRCLE_DATA_DIR"] = str(DATA_DIR)
    env["LIFECIRCLE_CACHE_DIR"] = os.environ["LIFECIRCLE_CACHE_DIR"]
    out = tmp_path / "out"
    code = (
        "import sys; from lifecircle.cli import main; import matplotlib;"
        "sys.argv = ['lifecircle', '-q', 'coverage', '--district', 'pudong', '--offline',"
        f" '--no-isochrones', '--out', {str(out)!r}];"
        "main(standalone_mode=False); print(matplotlib.get_backend().lower())"
    )
    assert _python(code, env).splitlines()[-1] == "agg"
    for name in ("coverage_map.png", "coverage_by_category.png", "accessibility_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_file_backend_before_matplotlib_is_imported_chooses_agg_without_importing() -> None:
    # the CLI's start: matplotlib not imported yet; it must stay so until a map is drawn,
    # and then come up with Agg, as the import-then-switch way gave
    code = (
        "import sys; from lifecircle import settings; settings.use_file_backend();"
        "a = 'matplotlib' in sys.modules; import matplotlib;"
        "print(a, matplotlib.get_backend().lower())"
    )
    assert _python(code, _env_without_display()) == "False agg"
    env = _env_without_display()
    env["MPLBACKEND"] = "TkAgg"  # a window toolkit becomes Agg
    assert _python(code, env) == "False agg"
    env["MPLBACKEND"] = "svg"  # a file backend is kept
    assert _python(code, env) == "False svg"
