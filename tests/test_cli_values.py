"""Issue 35, values: every command that takes a checked kind of value (``failmodes.values``)
refuses a bad one in one ``error:`` line with exit 2, before it does anything: no traceback,
no file written into an existing run folder or the working directory. The table runs over
every registered command, so a command added later is covered by its option names."""
from __future__ import annotations

import inspect
import logging
import os

import pytest
import typer.main
from typer.models import OptionInfo
from typer.testing import CliRunner

from failmodes import values
from failmodes.cli import app
from failmodes.cli._app import VALUE_PARSERS
from failmodes.errors import EXIT_USAGE
from failmodes.study import StudyError, study_from_dict

runner = CliRunner()

# option name -> (bad value, words the one line must hold); decided from the cases.
BAD = {
    "out": [("x" * 4000, "at most 255 per name")],
    "seed": [(str(2 ** 64), "from 0 to 9223372036854775807"), ("-1", "from 0 to")],
    "device": [("meta", "auto, cpu, cuda or cuda:N"), ("mps", "auto, cpu, cuda or cuda:N"),
               ("bogus", "auto, cpu, cuda or cuda:N")],
    "mean": [("nan,0,0", "'nan' is not a finite number")],
    "std": [("inf,1,1", "'inf' is not a finite number"), ("0,1,1", "must be above 0")],
    "num_classes": [("0", "from 1 to 100000"), (str(10 ** 9), "from 1 to 100000")],
    "input_size": [("0", "from 1 to 4096"), (str(10 ** 5), "from 1 to 4096")],
    "image_size": [("0", "from 1 to 4096"), (str(10 ** 5), "from 1 to 4096")],
    "arch_arg": [("width=-1", "width must not be negative"), ("2=x", "KEY=VALUE")],
    "stressors": [("", "is empty"), (" , ", "is empty")],
    "models": [("", "is empty")],
    "threads": [("0", "at least 1 thread")],
    "repeats": [(str(10 ** 9), "from 1 to 1000")],
    "name": [("../up", "no '..' and no path separator"), ("a/b", "no path separator")],
}


def _commands():
    group = typer.main.get_command(app)
    return {name: cmd for name, cmd in group.commands.items()}


def _cases():
    out = []
    for cname, cmd in sorted(_commands().items()):
        for p in cmd.params:
            if p.name in BAD and p.opts and p.opts[0].startswith("--"):
                out += [pytest.param(cname, p.opts[0], v, words, id=f"{cname}{p.opts[0]}={v[:12]}")
                        for v, words in BAD[p.name]]
    return out


CASES = _cases()


def test_the_table_reaches_every_command_and_kind():
    """Each kind in the table is met in some command, and the issue's commands are there."""
    seen = {(c.values[0], c.values[1]) for c in CASES}
    kinds = {flag for _, flag in seen}
    assert {"--out", "--seed", "--device", "--mean", "--std", "--num-classes",
            "--input-size", "--arch-arg", "--stressors", "--threads", "--repeats"} <= kinds
    for command in ("train", "evaluate", "corrupt", "probe", "run", "cam", "analyze"):
        assert (command, "--out") in seen, command
    for command in ("evaluate", "cam", "run", "train", "corrupt", "probe"):
        assert (command, "--device") in seen and (command, "--seed") in seen, command


def test_every_option_of_a_checked_kind_parses_through_the_value_layer():
    """No command can take ``--seed`` (etc.) with its own parsing: registration sets it."""
    checked = 0
    for info in app.registered_commands:
        for p in inspect.signature(info.callback).parameters.values():
            if isinstance(p.default, OptionInfo) and p.name in VALUE_PARSERS:
                assert p.default.parser is VALUE_PARSERS[p.name], (info.callback, p.name)
                checked += 1
    assert checked >= 25

def test_every_command_that_runs_has_threads():
    """README: every command has --threads (evaluate and cam lacked it)."""
    lacking = [n for n, cmd in _commands().items()
               if n not in ("models", "stressors") and "threads" not in {p.name for p in cmd.params}]
    assert lacking == []


@pytest.mark.parametrize("command, flag, value, words", CASES)
def test_a_bad_value_is_one_error_line_and_writes_nothing(command, flag, value, words,
                                                          tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.sqlite").write_bytes(b"")
    (tmp_path / "x.png").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    argv = [command]
    # Positional arguments first (a run folder, an image), then the bad option: click checks
    # options in the order they are given, before any required option is found missing.
    positional = [p for p in _commands()[command].params if p.param_type_name == "argument"]
    for p in positional:
        argv.append({"run_dir": str(run), "run_a": str(run), "run_b": str(run),
                     "study": "none.yaml", "image": "x.png", "path": "x.png",
                     "pattern": "*"}.get(p.name, str(run)))
    argv += [flag, value]
    res = runner.invoke(app, argv)
    assert res.exit_code == EXIT_USAGE, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert words in lines[0] and flag in lines[0], lines[0]
    assert "Traceback" not in res.output
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_threads_above_the_cpu_count_is_lowered_with_a_warning(caplog):
    cpus = os.cpu_count() or 1
    with caplog.at_level(logging.WARNING, logger="failmodes"):
        assert values.threads(999) == min(999, cpus)
    assert cpus >= 999 or f"more than the {cpus} CPUs here; using {cpus}" in caplog.text
    assert values.threads(1) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="failmodes"):   # through the command line
        runner.invoke(app, ["report", "nowhere", "--threads", "999"])
    assert cpus >= 999 or f"--threads 999 is more than the {cpus} CPUs" in caplog.text


@pytest.mark.parametrize("value, ok", [(0, True), (2 ** 63 - 1, True), (2 ** 63, False),
                                       (-1, False), (True, False), ("7", True)])
def test_seed_range_is_what_torch_generators_take(value, ok):
    import torch
    if ok:
        torch.Generator().manual_seed(values.seed(value))   # torch takes every seed we let in
    else:
        with pytest.raises(values.OptionValueError):
            values.seed(value)


def test_arch_args_keep_their_text_and_refuse_negative_and_non_finite_numbers():
    assert values.arch_arg("depth=2") == "depth=2"
    assert values.arch_arg("name=foo") == "name=foo"
    assert values.arch_arg("drop_rate=0.1") == "drop_rate=0.1"
    for bad in ("width=-1", "drop=.nan", "w=.inf"):
        with pytest.raises(values.OptionValueError):
            values.arch_arg(bad)


STUDY = {"name": "mini", "data": "synthetic", "models": [{"name": "a", "arch": "small_cnn"}],
         "suites": [], "stressors": ["fog"], "severities": [1, 3]}


@pytest.mark.parametrize("change, words", [
    ({"seed": -1}, "seed -1"), ({"seed": 2 ** 64}, "seed"), ({"device": "meta"}, "device 'meta'"),
    ({"threads": 0}, "threads 0"), ({"image_size": 0}, "image_size 0"),
    ({"models": [{"name": "a", "arch": "small_cnn", "num_classes": 0}]}, "num_classes 0"),
    ({"models": [{"name": "a", "arch": "small_cnn", "input_size": 100000}]}, "input_size"),
    ({"models": [{"name": "a", "arch": "small_cnn", "arch_args": {"width": -1}}]},
     "width must not be negative"),
    ({"models": [{"name": "a", "arch": "small_cnn", "mean": [0, 0, 0], "std": [0, 1, 1]}]},
     "above 0"),
])
def test_a_study_file_refuses_the_same_values_with_the_same_check(change, words):
    with pytest.raises(StudyError) as e:
        study_from_dict({**STUDY, **change})
    assert words in str(e.value)


def test_threads_given_to_a_command_sets_torch_threads_before_it_runs(monkeypatch, tmp_path):
    import torch
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    for command in ("evaluate", "cam", "analyze", "report"):
        argv = [command] + ([] if command == "evaluate" else [str(tmp_path / "none")])
        res = runner.invoke(app, argv + ["--threads", "1"])
        assert res.exit_code == EXIT_USAGE      # missing options / no run folder: one line
        assert "Traceback" not in res.output
    assert calls == [1, 1, 1]                  # evaluate stops at its missing --model first


def _path_cases():
    from failmodes.cli._app import PATH_ARGUMENTS
    out = []
    for cname, cmd in sorted(_commands().items()):
        args = [p for p in cmd.params if p.param_type_name == "argument"]
        for j, p in enumerate(args):
            if p.name in PATH_ARGUMENTS:
                out += [pytest.param(cname, j, len(args), v, words, id=f"{cname}-{p.name}-{k}")
                        for k, (v, words) in enumerate([("x" * 4000, "at most 255 per name"),
                                                         ("", "is empty")])]
    return out


@pytest.mark.parametrize("command, pos, n_args, value, words", _path_cases())
def test_a_bad_path_argument_is_one_error_line_exit_2(command, pos, n_args, value, words,
                                                       tmp_path, monkeypatch):
    """A 4000-character or empty run folder / study / image: exit 2 naming the argument, not
    exit 3 with the whole path echoed."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    argv = [command] + [value if j == pos else str(run) for j in range(n_args)]
    res = runner.invoke(app, argv)
    assert res.exit_code == EXIT_USAGE, res.output
    line, = res.output.strip().splitlines()
    assert line.startswith("error: Invalid value for") and words in line and len(line) < 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and not any(run.iterdir())
