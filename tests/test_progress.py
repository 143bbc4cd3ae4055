"""Progress bars: shown on an interactive terminal, silent with -q, in CliRunner and by default."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from lifecircle import progress
from lifecircle.cli import main

STEPS = ("preparing the area", "snapping", "routing", "coverage maps and charts")


@pytest.fixture(autouse=True)
def _progress_off() -> Iterator[None]:
    yield
    progress.disable()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_steps_show_on_a_forced_terminal(data_dir: Path) -> None:
    buffer = io.StringIO()
    progress.enable(Console(file=buffer, force_terminal=True, width=120))
    with progress.step("routing", total=3) as advance:
        for _ in range(3):
            advance(1)
    assert list(progress.track(["a", "b"], "maps")) == ["a", "b"]
    raw = buffer.getvalue()
    assert "\x1b[" in raw  # drawn with terminal control codes (a live bar)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    assert "✓ routing" in text
    assert "✓ maps" in text
    assert "0/3" in text  # the bar counts its items


def test_library_calls_print_nothing_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert not progress.is_enabled()
    with progress.step("routing", total=2) as advance:
        advance(2)
    assert list(progress.track([1], "maps")) == [1]
    out = capsys.readouterr()
    assert out.out == out.err == ""


def test_wanted_only_on_a_terminal_and_without_quiet() -> None:
    assert progress.wanted(quiet=False, stream=_Tty())
    assert not progress.wanted(quiet=True, stream=_Tty())
    assert not progress.wanted(quiet=False, stream=io.StringIO())  # CI log, pipe, file


def _coverage(runner: CliRunner, out: Path, *quiet: str) -> str:
    result = runner.invoke(
        main,
        [*quiet, "coverage", "--district", "pudong", "--offline", "--no-isochrones", "--out",
         str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_cli_shows_the_steps_on_a_terminal_and_not_with_q(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "_isatty", lambda stream: True)  # as on an interactive terminal
    shown = _coverage(runner, tmp_path / "a")
    for name in STEPS:
        assert f"✓ {name}" in shown, name
    assert not progress.is_enabled()  # turned off again when the command ends
    quiet = _coverage(runner, tmp_path / "b", "-q")
    assert "✓" not in quiet
    for name in STEPS:
        assert name not in quiet


def test_cli_in_a_log_shows_no_progress(runner: CliRunner, tmp_path: Path) -> None:
    output = _coverage(runner, tmp_path / "c")  # CliRunner's streams are not terminals
    assert "✓" not in output
    assert "routing" not in output
    assert "coverage" in output.lower()  # the table itself is still printed
