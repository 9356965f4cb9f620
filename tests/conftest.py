import pytest
import torch

# Tests run on a 2-core CI machine: one thread each keeps them predictable.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test decodes into its own cache directory, never the user's."""
    monkeypatch.setenv("FAILMODES_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    yield
