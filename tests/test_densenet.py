"""The fast CIFAR DenseNet-121 against the plain one it replaced (kept here as the slow,
obvious reference): same state-dict keys, same outputs, same gradients, same BN updates."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from failmodes.models.cifar import CifarDenseNet121


class _RefLayer(nn.Module):
    def __init__(self, c_in, growth):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class _RefTransition(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class RefDenseNet(nn.Module):
    """The original implementation: one torch.cat per layer, nn.Sequential blocks."""

    def __init__(self, num_classes=10, growth=32, blocks=(6, 12, 24, 16)):
        super().__init__()
        c = 2 * growth
        self.conv1 = nn.Conv2d(3, c, 3, padding=1, bias=False)
        stages = []
        for i, n in enumerate(blocks):
            layers = []
            for _ in range(n):
                layers.append(_RefLayer(c, growth))
                c += growth
            stages.append(nn.Sequential(*layers))
            if i < len(blocks) - 1:
                stages.append(_RefTransition(c, c // 2))
                c //= 2
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = F.relu(self.bn(self.features(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _pair(growth=4, blocks=(3, 4, 5, 3)):
    torch.manual_seed(0)
    ref = RefDenseNet(growth=growth, blocks=blocks)
    for m in ref.modules():          # non-trivial BN state, so a wrong channel order shows
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    fast = CifarDenseNet121(growth=growth, blocks=blocks)
    fast.load_state_dict(ref.state_dict())   # strict: the keys are the same
    return ref, fast


@pytest.mark.parametrize("channels_last", [False, True])
def test_eval_forward_matches_the_reference(channels_last):
    ref, fast = _pair()
    x = torch.randn(5, 3, 32, 32)
    if channels_last:
        ref, fast = (m.to(memory_format=torch.channels_last) for m in (ref, fast))
        x = x.contiguous(memory_format=torch.channels_last)
    ref.eval(), fast.eval()
    with torch.no_grad():
        a, b = ref(x), fast(x)
        # the block output (the CAM layer features.6) is the same tensor, channel order too
        assert torch.allclose(ref.features(ref.conv1(x)), fast.features(fast.conv1(x)),
                              atol=1e-5)
    assert torch.allclose(a, b, atol=1e-5)
    with torch.inference_mode():
        assert torch.allclose(fast(x), a, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_training_step_matches_the_reference(channels_last):
    ref, fast = _pair()
    x = torch.randn(6, 3, 32, 32, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    if channels_last:
        ref, fast = (m.to(memory_format=torch.channels_last) for m in (ref, fast))
    xr = x.detach().clone().requires_grad_(True)
    ref.train(), fast.train()
    F.cross_entropy(ref(xr), y).backward()
    F.cross_entropy(fast(x), y).backward()
    assert torch.allclose(xr.grad, x.grad, atol=1e-5)
    for (name, p), q in zip(ref.named_parameters(), fast.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name
    for (name, b), c in zip(ref.named_buffers(), fast.buffers(), strict=True):
        assert torch.allclose(b.float(), c.float(), atol=1e-5), name


def test_frozen_network_features_still_reach_the_input():
    # no parameter needs a gradient but the input does (an attack, an input-gradient map)
    ref, fast = _pair()
    fast.eval(), ref.eval()
    for m in (ref, fast):
        m.requires_grad_(False)
    x = torch.randn(3, 3, 32, 32, requires_grad=True)
    xr = x.detach().clone().requires_grad_(True)
    ref(xr).sum().backward()
    fast(x).sum().backward()
    assert torch.allclose(xr.grad, x.grad, atol=1e-5)
    assert copy.deepcopy(fast)  # still an ordinary module


def test_seed_cpu_preset_loads_with_hashable_claims():
    # `on: all` is YAML's boolean key True; the study keeps it as "on" so the analyses'
    # fingerprint (json.dumps with sort_keys) works on the claims.
    import json

    from failmodes.study import load_preset
    cfg = load_preset("seed-cpu")
    assert {m.name: (m.arch, m.width) for m in cfg.models} == {
        "resnet18": ("cifar_resnet18", 16), "densenet121": ("cifar_densenet121", 8)}
    robust = [c for c in cfg.claims if "more_robust" in c]
    assert robust and robust[0]["on"] == "all" and True not in robust[0]
    json.dumps(cfg.claims, sort_keys=True)
