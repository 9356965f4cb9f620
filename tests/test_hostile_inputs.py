"""Hostile input (issue 14): each case gives one ``error: ...`` line with its documented exit
code, in bounded time and memory, and leaves nothing half-written behind."""
import errno
import subprocess
import sys
import time
import tracemalloc

import pytest
import torch
from typer.testing import CliRunner

from failmodes.cli import app
from failmodes.config import MAX_YAML_NODES, ConfigError, read_yaml
from failmodes.errors import EXIT_ENVIRONMENT, EXIT_INTERRUPTED, EXIT_USAGE
from failmodes.study import load_study

runner = CliRunner()
MINI = "name: mini\ndata: synthetic\nmodels: [{name: a, arch: small_cnn}]\n"


def _one_error_line(res, code):
    assert res.exit_code == code, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


# ----------------------------------------------------------------------------- entry point
def test_python_dash_m_failmodes_and_the_exit_codes_in_help():
    r = subprocess.run([sys.executable, "-m", "failmodes", "--help"], capture_output=True,
                       text=True, env={"COLUMNS": "200", "PATH": ""}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Exit codes" in r.stdout and "130 interrupted" in r.stdout
    assert "study" in __import__("failmodes").__all__
    import failmodes as fm
    assert fm.study.load_preset("demo").name == "demo"


def test_usage_errors_are_one_line_with_exit_2():
    line = _one_error_line(runner.invoke(app, ["train", "--bogus"]), EXIT_USAGE)
    assert "--bogus" in line and "train --help" in line
    _one_error_line(runner.invoke(app, ["nosuch"]), EXIT_USAGE)


@pytest.mark.parametrize("argv", [
    ["train", "--data", "synthetic", "--out", ""],
    ["evaluate", "--model", "small_cnn", "--data", "synthetic", "--out", " "],
    ["corrupt", "x.png", "--stressor", "fog", "--out", ""],
    ["run", "--preset", "demo", "--out", ""],
    ["analyze", ".", "--out", ""],
])
def test_empty_out_is_refused_and_nothing_is_written(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _one_error_line(runner.invoke(app, argv), EXIT_USAGE)
    assert "'--out': is empty" in line
    assert list(tmp_path.iterdir()) == []


def test_threads_is_the_one_name_and_num_threads_a_hidden_alias():
    helps = {c: runner.invoke(app, [c, "--help"], env={"COLUMNS": "200"}).output
             for c in ("train", "run")}
    assert all("--threads" in h for h in helps.values())
    assert "--num-threads" not in helps["train"]


# ----------------------------------------------------------------------------- Ctrl-C, exit codes
def _raising(exc):
    def fn(*args, **kwargs):
        raise exc
    return fn


def test_ctrl_c_says_finished_cells_are_kept_and_exits_130(monkeypatch, capsys):
    import failmodes.study
    monkeypatch.setattr(failmodes.study, "prepare_and_run", _raising(KeyboardInterrupt()))
    res = runner.invoke(app, ["run", "--preset", "demo"])
    assert res.exit_code == EXIT_INTERRUPTED
    assert res.output.strip() == ("interrupted: finished cells are kept; re-run the same "
                                  "command to resume")
    # ... and through the console entry point, where typer would otherwise say nothing
    from failmodes import cli
    monkeypatch.setattr(sys, "argv", ["failmodes", "run", "--preset", "demo"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == EXIT_INTERRUPTED
    assert "interrupted: finished cells are kept" in capsys.readouterr().err


@pytest.mark.parametrize("exc, code, text", [
    (OSError(errno.ENOSPC, "No space left on device", "/runs/x/results.sqlite"),
     EXIT_ENVIRONMENT, "error: No space left on device: /runs/x/results.sqlite"),
    (PermissionError(errno.EACCES, "Permission denied", "/ro/x"), EXIT_ENVIRONMENT,
     "error: Permission denied: /ro/x"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "nope.yaml"), EXIT_USAGE,
     "error: No such file or directory: nope.yaml"),
])
def test_os_errors_follow_the_documented_rule(monkeypatch, exc, code, text):
    import failmodes.study
    monkeypatch.setattr(failmodes.study, "prepare_and_run", _raising(exc))
    assert _one_error_line(runner.invoke(app, ["run", "--preset", "demo"]), code) == text


def test_a_library_bug_keeps_its_traceback(monkeypatch):
    import failmodes.study
    monkeypatch.setattr(failmodes.study, "prepare_and_run", _raising(ValueError("a bug")))
    res = runner.invoke(app, ["run", "--preset", "demo"])
    assert isinstance(res.exception, ValueError) and "error:" not in res.output


# ----------------------------------------------------------------------------- full disk
def test_train_on_a_full_disk_is_one_line_and_leaves_no_temp_file(tmp_path, monkeypatch):
    real_save = torch.save

    def full_disk_save(obj, f, *args, **kwargs):
        # torch's own failure on a full disk: a short write, then RuntimeError (not OSError)
        f.write(b"PK\x03\x04")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", full_disk_save)
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "--model", "small_cnn", "--width", "4", "--data",
                              "synthetic", "--epochs", "1", "--subset", "64", "--test-subset",
                              "32", "--batch-size", "32", "--threads", "1", "--out", str(out)])
    monkeypatch.setattr(torch, "save", real_save)
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error")]
    assert res.exit_code == EXIT_ENVIRONMENT, res.output
    assert lines == [f"error: cannot write {out / 'last.pt'}: the write failed (disk full?)"]
    assert [p.name for p in out.rglob("*") if ".tmp" in p.name] == []


# ----------------------------------------------------------------------------- checkpoints
def test_a_checkpoint_with_only_the_format_key_is_one_line(tmp_path):
    from failmodes.models.checkpoint import CKPT_FORMAT
    ckpt = tmp_path / "bare.pt"
    torch.save({"format": CKPT_FORMAT}, ckpt)
    res = runner.invoke(app, ["evaluate", "--model", str(ckpt), "--data", "synthetic",
                              "--stressors", "fog", "--out", str(tmp_path / "ev")])
    line = _one_error_line(res, EXIT_USAGE)
    assert "incomplete failmodes checkpoint (no arch" in line and "KeyError" not in line


# ----------------------------------------------------------------------------- study files
def _bomb(levels=9, width=9):
    lines = [MINI.strip(), "analysis_options:", "  metrics:",
             "    a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"    a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused_in_bounded_time_and_memory(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text(_bomb())          # 9^10 values once expanded, 700 bytes on disk
    tracemalloc.start()
    t = time.perf_counter()
    with pytest.raises(ConfigError, match=f"more than {MAX_YAML_NODES} values once its "
                                          "aliases are expanded"):
        load_study(p)
    seconds, peak = time.perf_counter() - t, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 5 and peak < 50 * 2 ** 20
    small = tmp_path / "small.yaml"  # aliases as such stay allowed
    small.write_text("a: &x [1, 2]\nb: *x\n")
    assert read_yaml(small) == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"# only a comment\n", "the file is empty"),
    (bytes(range(256)) * 4, "not a text (UTF-8) file"),
    (b"name: x\x00\n", "NUL bytes"),
    (b"a: &a [*a]\n", "an alias refers to itself"),
    (b"a: " + b"[" * 1200 + b"]" * 1200 + b"\n", "nested too deeply"),
    (b"a: [1, 2\n", "not valid YAML at line"),
    (b"- 1\n- 2\n", "expected a mapping of StudyConfig keys, got list"),
])
def test_broken_study_files_are_one_line(tmp_path, content, message):
    p = tmp_path / "study.yaml"
    p.write_bytes(content)
    line = _one_error_line(runner.invoke(app, ["run", str(p), "--out", str(tmp_path / "o")]),
                           EXIT_USAGE)
    assert message in line and str(p) in line
    assert not (tmp_path / "o").exists()


def test_a_recipe_pointing_at_any_file_names_the_path_not_its_contents(tmp_path):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:SECRET-LINE:/root:/bin/bash\n")
    p = tmp_path / "s.yaml"
    p.write_text(MINI.replace("arch: small_cnn", f"arch: small_cnn, recipe: {secret}"))
    line = _one_error_line(runner.invoke(app, ["run", str(p), "--out", str(tmp_path / "o")]),
                           EXIT_USAGE)
    assert str(secret) in line and "SECRET" not in line and "/bin/bash" not in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("extra, message", [
    ("suites: [cifar10-q]", "suites[0]: unknown suite 'cifar10-q'"),
    ("stressors: [fgo]", "stressors[0]: unknown stressor 'fgo' (did you mean fog?)"),
    ("sweeps: {rotation: [0, .nan]}", "sweeps.rotation [0, nan]: nan is not finite"),
    ("sweeps: {rotation: '0:1e12:1e-3'}", "1,000,000,000,000,001 values"),
    ("sweeps: {rotation: 'nan:1:1'}", "'nan' is not a finite number"),
    ("sweeps: {rotation: '0:400:100'}", "400.0 is outside [-360, 360]"),
    ("sweeps: {nosuch: [1]}", "sweeps.nosuch: unknown stressor"),
    ("analyses: [nosuch]", "unknown analysis 'nosuch'"),
    ("probes: [{image: x.png, stressor: rotaton}]", "probes[0]: unknown stressor 'rotaton'"),
])
def test_the_whole_study_is_checked_before_any_work(tmp_path, extra, message):
    p = tmp_path / "s.yaml"
    p.write_text(MINI + extra + "\n")
    line = _one_error_line(runner.invoke(app, ["run", str(p), "--out", str(tmp_path / "o")]),
                           EXIT_USAGE)
    assert message in line
    assert not (tmp_path / "o").exists()  # nothing trained, nothing written


@pytest.mark.parametrize("model, message", [
    ("{name: a, arch: nosuch_net}", "models[0] (a).arch: unknown model 'nosuch_net'"),
    ("{name: a, arch: small_cnn, recipe: nope}", "models[0] (a).recipe: unknown recipe 'nope'"),
    ("{name: a, arch: small_cnn, checkpoint: missing.pt}", "models[0] (a).checkpoint: missing.pt"),
])
def test_models_are_checked_before_any_training(tmp_path, model, message):
    p = tmp_path / "s.yaml"
    p.write_text(MINI.replace("{name: a, arch: small_cnn}", model))
    line = _one_error_line(runner.invoke(app, ["run", str(p), "--out", str(tmp_path / "o")]),
                           EXIT_USAGE)
    assert message in line and not (tmp_path / "o").exists()
