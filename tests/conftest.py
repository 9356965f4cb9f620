import functools

import pytest
import torch

import failmodes.data as fmdata

# Tests run on a 2-core CI machine: one thread each keeps them predictable.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test decodes into its own cache directory, never the user's."""
    monkeypatch.setenv("FAILMODES_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    yield


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """A command run in-process with --threads sets torch's thread count for the process;
    a later test that trains would then compute with other numerics (the planted-slice
    model of test_slices trained differently after test_cli_values and broke its page)."""
    n = torch.get_num_threads()
    yield
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


@functools.cache
def _synthetic(split="test", n=None, size=32):
    return fmdata.synthetic.load_synthetic(split, n, size)


@pytest.fixture
def memo_synthetic(monkeypatch):
    """Generating the synthetic set costs seconds; training tests share one copy per split
    (callers never write into a Dataset's images). Use with ``pytest.mark.usefixtures``."""
    monkeypatch.setattr(fmdata, "load_synthetic", _synthetic)
