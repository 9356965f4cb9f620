"""One device resolver for every command."""
import pytest
import torch

from failmodes._device import DeviceError, resolve_device
from failmodes.errors import FailmodesError


def test_auto_and_named_devices():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_bad_devices_fail_with_one_line():
    with pytest.raises(DeviceError, match="not a torch device"):
        resolve_device("gpu-please")
    assert issubclass(DeviceError, FailmodesError)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")
