"""failmodes/_malloc.py: the glibc setting the failmodes command applies at start."""
from __future__ import annotations

import subprocess
import sys

import pytest

from failmodes import _malloc


def test_user_environment_variables_win(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    assert _malloc._apply() == {"applied": False,
                                "why": "MALLOC_*_ environment variables set by the user"}


def test_non_linux_is_left_alone(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    got = _malloc._apply()
    assert got["applied"] is False and "darwin" in got["why"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_applied_once_per_process_with_the_documented_values():
    # In a fresh interpreter (the setting is process-wide): glibc accepts all three values,
    # and a second call returns the first call's record without calling mallopt again.
    code = ("import json; from failmodes import _malloc as m; a = m.tune_cpu_allocator(); "
            "b = m.tune_cpu_allocator(); print(json.dumps([a, a is b]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    import json
    first, same = json.loads(r.stdout)
    if "glibc" not in first:
        pytest.skip(f"libc is not glibc: {first}")
    assert same is True
    assert first["applied"] is True and all(first["accepted"].values())
    assert first["M_MMAP_THRESHOLD"] == 32 << 20 and first["M_TRIM_THRESHOLD"] == 1 << 30
    assert first["M_TOP_PAD"] == 256 << 20
