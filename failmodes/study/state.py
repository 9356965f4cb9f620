"""``study_state.json`` and the bookkeeping every study step does around it: the
commands that built the run, each step's outcome and timing, progress lines, the tail of a
failure's traceback."""
from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import time
import traceback
from pathlib import Path

from .._atomic import write_text_atomic
from ..store import RunFolder
from .config import StudyConfig


class StudyState:
    """``study_state.json``: the commands that built the run and every step's outcome."""

    def __init__(self, out: Path):
        self.path = RunFolder(out).state
        try:
            self.data = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self.data = {}
        self.data.setdefault("commands", [])
        self.data.setdefault("steps", {})

    def step(self, key: str) -> dict:
        return self.data["steps"].get(key, {})

    def set(self, key: str, **record) -> None:
        record["finished"] = _now()
        self.data["steps"][key] = record
        self.save()

    def command(self, command: str) -> None:
        self.data["commands"].append({"time": _now(), "command": command, "cwd": os.getcwd()})
        self.save()

    def save(self) -> None:
        write_text_atomic(self.path, json.dumps(self.data, indent=1, default=str))


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def timing(t: float, c: float) -> dict:
    """Wall-clock and CPU seconds since ``t`` (perf_counter) and ``c`` (process_time)."""
    return {"seconds": round(time.perf_counter() - t, 1),
            "cpu_s": round(time.process_time() - c, 1)}


def say(cfg: StudyConfig, msg: str) -> None:
    print(f"[{cfg.name}] {msg}", file=sys.stderr, flush=True)


def error_tail(lines: int = 6) -> str:
    return "".join(traceback.format_exc().splitlines(keepends=True)[-lines:])


def one_line(e: BaseException, width: int = 300) -> str:
    """``TypeName: the first line of the message``: what the report and the console show of
    a failed step (the traceback goes to the step's log file)."""
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0][:width]}" if msg else type(e).__name__


def write_log(out: Path, key: str) -> str:
    """The current exception's full traceback in ``RUN/logs/<key>.log``; returns the path
    relative to ``out`` (the report names it), or "" when it cannot be written."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in key) + ".log"
    path = Path(out) / "logs" / name
    try:
        write_text_atomic(path, traceback.format_exc())
    except OSError:
        return ""
    return str(path.relative_to(out))
