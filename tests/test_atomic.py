"""The atomic writer: text, bytes and writer functions (torch.save, savefig); nothing
half-written or left behind when a write fails (issue 14: full disk)."""
import errno

import pytest
import torch

from failmodes._atomic import save_atomic, save_figure_atomic, write_bytes_atomic, write_text_atomic
from failmodes.errors import EXIT_ENVIRONMENT, WriteError


def _leftovers(d):
    return sorted(p.name for p in d.iterdir() if ".tmp" in p.name)


def test_writes_text_bytes_and_writer_output(tmp_path):
    assert write_text_atomic(tmp_path / "sub" / "a.txt", "é\n").read_text("utf-8") == "é\n"
    assert write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    save_atomic(tmp_path / "t.pt", lambda f: torch.save({"w": torch.arange(3)}, f), fsync=True)
    assert torch.load(tmp_path / "t.pt", weights_only=True)["w"].tolist() == [0, 1, 2]
    from matplotlib.figure import Figure
    save_figure_atomic(Figure(figsize=(1, 1)), tmp_path / "f.png", dpi=20)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub") == []


def _full_disk(f):
    f.write(b"partial")
    raise OSError(errno.ENOSPC, "No space left on device")


def _torch_full_disk(f):
    # What torch.save raises when its zip writer meets a short write on a full disk.
    f.write(b"PK")
    raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")


@pytest.mark.parametrize("writer", [_full_disk, _torch_full_disk])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, writer):
    target = write_text_atomic(tmp_path / "model.pt", "old")
    with pytest.raises(WriteError, match=f"cannot write {target}") as e:
        save_atomic(target, writer)
    assert e.value.exit_code == EXIT_ENVIRONMENT and "\n" not in str(e.value)
    assert target.read_text() == "old" and _leftovers(tmp_path) == []


def test_other_errors_pass_through_unchanged_and_leave_no_temp(tmp_path):
    def bug(f):
        f.write(b"x")
        raise RuntimeError("a bug in the caller")

    with pytest.raises(RuntimeError, match="a bug in the caller"):
        save_atomic(tmp_path / "x.bin", bug)
    with pytest.raises(KeyboardInterrupt):
        save_atomic(tmp_path / "y.bin", lambda f: (_ for _ in ()).throw(KeyboardInterrupt))
    assert list(tmp_path.iterdir()) == []
