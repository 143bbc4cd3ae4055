"""io.output_set: a folder holds one run of each command, swapped in whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecircle import io
from lifecircle.errors import OutputError
from lifecircle.pipeline import CoverageOptions, GapOptions, run_coverage, run_gaps
from lifecircle.prepare import CACHE_FILES, AreaRequest


def _write_run(target: Path, files: dict[str, str], summary: str = "run.json") -> list[Path]:
    with io.output_set(target, summary, keep={"manifest.json"}) as out:
        for name, text in files.items():
            io.save_text(text, out.path(name))
        io.save_json({"outputs": [*files, summary]}, out.path(summary))
    return out.files


def _failing_run(target: Path, *, summary: bool) -> None:
    with io.output_set(target, "run.json") as out:
        io.save_text("2", out.path("a.txt"))
        if summary:
            io.save_json({"outputs": ["a.txt", "run.json"]}, out.path("run.json"))
            raise RuntimeError("boom")


def _contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def test_a_new_set_replaces_the_previous_one_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "out"
    files = _write_run(target, {"a.txt": "1", "b.txt": "1"})
    assert [p.name for p in files] == ["a.txt", "b.txt", "run.json"]
    # files of other commands and cache layers in the same folder are left alone
    (target / "manifest.json").write_text("cache")
    (target / "other.json").write_text(json.dumps({"outputs": ["c.txt"]}))
    (target / "c.txt").write_text("other command")
    _write_run(target, {"a.txt": "2"})
    assert _contents(target) == {
        "a.txt": "2",
        "c.txt": "other command",
        "manifest.json": "cache",
        "other.json": '{"outputs": ["c.txt"]}',
        "run.json": '{\n  "outputs": [\n    "a.txt",\n    "run.json"\n  ]\n}',
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_run_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _write_run(target, {"a.txt": "1", "b.txt": "1"})
    before = _contents(target)
    with pytest.raises(RuntimeError, match="boom"):
        _failing_run(target, summary=True)
    assert _contents(target) == before
    # a set without its summary is refused at commit, and changes nothing either
    with pytest.raises(OutputError, match=r"run\.json was not written"):
        _failing_run(target, summary=False)
    assert _contents(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    # a failed first run creates no folder at all
    with pytest.raises(RuntimeError):
        _failing_run(tmp_path / "new", summary=True)
    assert not (tmp_path / "new").exists()


def test_outputs_never_take_a_cache_layer_name(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="cache layer"),
        io.output_set(tmp_path / "o", "run.json", keep=CACHE_FILES) as out,
    ):
        out.path("residents.parquet")
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="writable folder"):
        io.check_writable_dir(tmp_path / "f" / "sub")
    assert not (tmp_path / "o").exists()


@pytest.mark.filterwarnings("ignore:no elderly_care facilities:RuntimeWarning")
def test_gaps_rerun_replaces_its_own_files_in_the_cache_folder(private_cache: Path) -> None:
    """Default outputs go to the cache folder: a rerun swaps its set, cache layers stay."""
    req = AreaRequest(district="pudong", offline=True)
    opts = CoverageOptions(isochrones=False, make_map=False)
    cov = run_coverage(req, opts)
    folder = cov.out_dir
    layers = {n: (folder / n).read_bytes() for n in CACHE_FILES if (folder / n).exists()}
    assert {"manifest.json", "facilities.gpkg", "residents.parquet"} <= set(layers)
    run_gaps(req, opts, GapOptions(pdf=False), prepared=cov.prepared)
    assert (folder / "gap_map_school.png").is_file()
    assert (folder / "gap_map_culture.png").is_file()
    fewer = CoverageOptions(isochrones=False, make_map=False, categories=("school",))
    gaps = run_gaps(req, fewer, GapOptions(pdf=False), prepared=cov.prepared)
    assert not (folder / "gap_map_culture.png").exists()  # from the previous gaps run
    assert (folder / "gap_map_school.png").is_file()
    # the coverage run was for four categories, this gaps run for one ("all categories" differ):
    # a folder holds one run's figures, so the coverage run goes too
    assert not (folder / "coverage.json").exists()
    assert {name: (folder / name).read_bytes() for name in layers} == layers
    on_disk = {p.name for p in folder.iterdir()}
    assert on_disk == set(layers) | set(gaps.summary["outputs"])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_folder_never_holds_runs_with_different_parameters(tmp_path: Path) -> None:
    """Review of issue 8: `gaps --minutes 10 --out <coverage folder>` left coverage.json for
    1,000 m beside gaps.json for 666.7 m."""
    from click.testing import CliRunner

    from lifecircle.cli import main

    out = tmp_path / "o"
    area = ["--district", "pudong", "--out", str(out)]
    runner = CliRunner()
    assert runner.invoke(main, ["coverage", *area, "--no-isochrones", "--no-map"]).exit_code == 0
    before = sorted(p.name for p in out.iterdir())
    result = runner.invoke(main, ["gaps", *area, "--minutes", "10", "--no-pdf"])
    assert result.exit_code != 0
    assert "coverage.json from a run with other parameters (minutes 15.0 vs 10.0)" in result.output
    assert sorted(p.name for p in out.iterdir()) == before
    result = runner.invoke(main, ["gaps", *area, "--minutes", "10", "--no-pdf", "--overwrite"])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert "gaps.json" in names
    assert "coverage.json" not in names
    assert "residents_coverage.gpkg" not in names  # the 15-minute run is gone as a whole
    # the same parameters may share a folder (coverage beside gaps)
    result = runner.invoke(main, ["coverage", *area, "--minutes", "10", "--no-map", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert {"gaps.json", "coverage.json"} <= {p.name for p in out.iterdir()}
