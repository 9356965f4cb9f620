"""The fast recipe and its parts: every recipe trains a step, cifar_fastnet's whitening layer,
decoupled hyper-parameters, lookahead, reflect translation, alternating flips, determinism."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import failmodes.data as fmdata
from failmodes._device import DeviceError
from failmodes.config import ConfigError, override
from failmodes.errors import FailmodesError
from failmodes.models import create_model, weights_hash
from failmodes.models.fastnet import FastNet
from failmodes.train import TrainError, list_recipes, load_recipe, train_model
from failmodes.train.augment import alternating_flips, random_crop
from failmodes.train.lookahead import Lookahead
from failmodes.train.muon import MuonSGD, orthogonalize
from failmodes.train.optim import build_optimizer, muon_groups, torch_hyper, triangle

pytestmark = pytest.mark.usefixtures("memo_synthetic")


def one_step(recipe: str, **kw):
    """``recipe`` as written, shrunk to one step of 32 synthetic images on a narrow net."""
    cfg = load_recipe(recipe)
    # width 8: a channels-last ResNet-18 of width 4 crashes torch's CPU backward (double free)
    base = dict(data="synthetic", epochs=1, subset=32, batch_size=32, test_subset=32, threads=1,
                width=8, eval_batch_size=1000)
    return override(cfg, **{**base, **kw})


# ----------------------------------------------------------------------------- every recipe
@pytest.mark.parametrize("recipe", list_recipes())
def test_every_recipe_trains_one_step(recipe, tmp_path):
    cfg = one_step(recipe)
    torch.manual_seed(cfg.seed)
    init = create_model(cfg.model, width=cfg.width, class_names=fmdata.synthetic.CLASSES)
    result = train_model(cfg, tmp_path / "run", progress=False)
    row = result.history[0]
    assert row["epoch"] == 1 and row["test_n"] == 2000
    assert torch.isfinite(torch.tensor(row["train_loss"])) and row["train_loss"] > 0
    after = result.model.net.state_dict()
    moved = [k for k, v in init.net.state_dict().items()
             if v.is_floating_point() and not torch.equal(v, after[k])]
    assert moved, "one step changed no weight"
    payload = torch.load(result.checkpoint, weights_only=True)
    assert payload["config"]["recipe"] == recipe and payload["arch"] == cfg.model


def test_fast_sgd_recipe_is_the_airbench94_schedule():
    fast = load_recipe("fast-sgd")
    assert (fast.model, fast.width, fast.batch_size, fast.nesterov, fast.schedule) == \
        ("cifar_fastnet", 64, 1024, True, "triangle")
    assert (fast.label_smoothing, fast.flip, fast.pad_mode, fast.crop_padding) == \
        (0.2, "alternating", "reflect", 2)
    assert fast.lookahead and fast.whiten_bias_epochs == 3 and fast.val_fraction == 0.1
    # airbench94's torch SGD values: lr 11.5 / (1024 (1 + 1/0.15)) per summed example = 1.5
    # per batch mean; its weight decay 0.0153·1024/kilostep/lr = 1.3625 per summed-loss lr.
    lr, wd = torch_hyper(fast)
    assert lr == pytest.approx(1.5) and wd == pytest.approx(0.00133)
    assert lr * wd / (1 - fast.momentum) == pytest.approx(0.0133)  # decay per 1024-batch step
    assert fast.optimizer == "sgd"


def test_fast_recipes_are_airbench94_muon_in_failmodes_terms():
    fast, cut = load_recipe("fast"), load_recipe("fast-cutout")
    assert (fast.model, fast.width, fast.epochs, fast.batch_size, fast.optimizer) == \
        ("cifar_fastnet", 44, 8, 2000, "muon")
    assert (fast.muon_lr, fast.muon_momentum, fast.momentum, fast.nesterov) == (0.24, 0.6, 0.85, True)
    assert not fast.lookahead and not fast.decoupled and fast.whiten_bias_epochs == 3
    # airbench94_muon: head lr 0.67 per summed example on logits W·x/c (c = 4w features); in
    # a batch-mean loss over 2000 images on cifar_fastnet's logits W·x/9 that is
    # 0.67·2000·(9/c)²; BN-shift lr 0.053·2000; decay per step 2e-6·2000 in every SGD group
    c = 4 * fast.width
    assert fast.lr == pytest.approx(0.67 * 2000 * (9 / c) ** 2, rel=1e-3)
    assert fast.lr * fast.bias_lr_scale == pytest.approx(0.053 * 2000, rel=1e-3)
    assert fast.lr * fast.weight_decay == pytest.approx(2e-6 * 2000, rel=1e-3)
    # head_features: at another width the head's lr follows the same conversion
    for width in (32, 64):
        head = build_optimizer(FastNet(width=width), fast, steps=1)[0].param_groups[0]
        assert head["lr"] == pytest.approx(0.67 * 2000 * (9 / (4 * width)) ** 2, rel=1e-3)
        assert head["lr"] * head["weight_decay"] == pytest.approx(2e-6 * 2000, rel=1e-3)
    # the schedule falls linearly from 1 to 0 with no warm-up
    assert [triangle(s, 10, fast.warmup, fast.lr_start, fast.lr_end) for s in (0, 5, 10)] == \
        [1.0, 0.5, 0.0]
    diff = {k for k, v in vars(fast).items() if vars(cut)[k] != v}
    assert diff == {"recipe", "augment", "cutout_size"} and cut.augment == "cutout"


# ----------------------------------------------------------------------------- model
def test_whitening_init_on_a_known_input():
    # Flat grey images (one random level c per image): every 2×2×3 patch is c·1, so the
    # patch second-moment matrix is E[c²]·11ᵀ: one eigenvector 1/√12 with eigenvalue
    # 12·E[c²], the others with eigenvalue 0.
    eps = 5e-4
    c = torch.linspace(-2, 2, 41)
    x = c[:, None, None, None].expand(41, 3, 6, 6).contiguous()
    net = FastNet(width=4)
    net.init_whitening(x, eps=eps)
    w = net.whiten.weight.detach().double().flatten(1)  # 24×12
    assert torch.allclose(w[12:], -w[:12])              # the negated copies
    m2 = float((c.double() ** 2).mean())
    top = torch.full((12,), 1 / 12 ** 0.5, dtype=torch.double) / (12 * m2 + eps) ** 0.5
    assert torch.allclose(w[0].abs(), top, rtol=1e-5)
    assert bool((torch.sign(w[0]) == torch.sign(w[0][0])).all())  # one sign: a flat filter
    rest = w[1:12]  # orthogonal to the flat direction, scaled by 1/√eps
    flat = torch.ones(12, dtype=torch.double)
    assert torch.allclose(rest @ flat, torch.zeros(11, dtype=torch.double), atol=1e-3)  # vs 45
    assert torch.allclose(rest.norm(dim=1), torch.full((11,), eps ** -0.5, dtype=torch.double),
                          rtol=1e-4)


def test_whitening_decorrelates_correlated_patches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 10, 10, generator=g)
    x = x + 0.8 * x.roll(1, 3) + 0.5 * x[:, [1, 2, 0]]  # neighbours and channels correlated
    net = FastNet(width=4)
    net.init_whitening(x, eps=0.0)
    out = F.conv2d(x, net.whiten.weight[:12])           # the 12 positive filters, no bias
    o = out.permute(0, 2, 3, 1).reshape(-1, 12).double()
    assert torch.allclose(o.T @ o / len(o), torch.eye(12, dtype=torch.double), atol=1e-5)


def test_fastnet_shapes_frozen_parts_and_cam_layer():
    model = create_model("cifar_fastnet", width=8)
    assert model(torch.rand(3, 3, 32, 32)).shape == (3, 10)
    frozen = {k for k, p in model.net.named_parameters() if not p.requires_grad}
    assert "whiten.weight" in frozen and "blocks.0.norm1.weight" in frozen
    assert "whiten.bias" not in frozen and "fc.weight" not in frozen
    assert model.cam_layer is model.net.blocks[2]


# ----------------------------------------------------------------------------- optimiser
def test_decoupled_groups_keep_the_decay_and_scale_the_bn_lr():
    cfg = override(load_recipe("fast-sgd"), batch_size=512)
    net = FastNet(width=4)
    opt, sched = build_optimizer(net, cfg, steps=10)
    base, norm = opt.param_groups
    lr, wd = torch_hyper(cfg)
    assert lr == pytest.approx(10.0 * 0.5 * 0.15)       # half the batch, half the step
    assert norm["lr"] == pytest.approx(base["lr"] * 64)
    assert norm["lr"] * norm["weight_decay"] == pytest.approx(base["lr"] * base["weight_decay"])
    n_bn = sum(p.numel() for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)
               for p in [m.bias])
    assert sum(p.numel() for p in norm["params"]) == n_bn  # BN scales are frozen: shifts only
    assert not any(p is net.whiten.weight for g in opt.param_groups for p in g["params"])
    assert base["lr"] == pytest.approx(lr * 0.2)           # the triangle starts at lr_start
    assert triangle(80, 80, 0.23, 0.2, 0.07) == pytest.approx(0.07)
    assert triangle(18, 80, 0.23, 0.2, 0.07) == pytest.approx(1.0)


def test_lookahead_pulls_toward_the_average_and_finishes_on_it():
    net = torch.nn.Linear(3, 1, bias=False)
    torch.nn.init.zeros_(net.weight)
    la = Lookahead(net, every=2, decay=0.5, total_steps=2)
    with torch.no_grad():
        net.weight.fill_(4.0)
    la.step(1)                                      # not a pull step
    assert torch.equal(net.weight, torch.full((1, 3), 4.0))
    la.step(2)                                      # decay 0.5: halfway from EMA 0 to 4
    assert torch.allclose(net.weight, torch.full((1, 3), 2.0))
    with torch.no_grad():
        net.weight.fill_(10.0)
    la.finish()                                     # decay 1: back to the EMA
    assert torch.allclose(net.weight, torch.full((1, 3), 2.0))


def test_newton_schulz_keeps_the_singular_vectors_and_evens_the_values():
    # truth from the SVD: orthogonalize(G) = U f(S) Vᵀ with every f(s) of order 1, whatever
    # the spread of S (here 100:1, five iterations), for wide and tall matrices alike
    g = torch.Generator().manual_seed(0)
    for shape in ((8, 36), (36, 8)):
        u, _ = torch.linalg.qr(torch.randn(shape[0], min(shape), generator=g))
        v, _ = torch.linalg.qr(torch.randn(shape[1], min(shape), generator=g))
        s = torch.logspace(0, -2, min(shape))
        q = orthogonalize(u @ torch.diag(s) @ v.T, steps=5)
        core = u.T @ q @ v                        # diagonal iff the singular vectors are kept
        off = core - torch.diag(core.diagonal())
        assert float(off.abs().max()) < 1e-4
        assert bool(((core.diagonal() > 0.5) & (core.diagonal() < 1.5)).all()), core.diagonal()


def test_muon_sgd_matches_its_definition_and_torch_sgd():
    torch.manual_seed(0)
    w0, b0 = torch.randn(6, 3, 3, 3), torch.randn(6)
    grads = [(torch.randn(6, 3, 3, 3), torch.randn(6)) for _ in range(3)]
    w, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(b0.clone())
    opt = MuonSGD([{"params": [w], "muon": True, "lr": 0.2, "momentum": 0.6},
                   {"params": [b], "lr": 0.5, "weight_decay": 0.01}], momentum=0.85)
    b_ref = torch.nn.Parameter(b0.clone())
    ref_sgd = torch.optim.SGD([b_ref], lr=0.5, momentum=0.85, nesterov=True, weight_decay=0.01)
    w_ref, buf = w0.clone(), torch.zeros_like(w0)
    for gw, gb in grads:
        w.grad, b.grad, b_ref.grad = gw.clone(), gb.clone(), gb.clone()
        opt.step()
        ref_sgd.step()
        buf = 0.6 * buf + gw                                  # Nesterov momentum, then
        d = gw + 0.6 * buf                                    # the filter bank at norm √6,
        w_ref = w_ref * 6 ** 0.5 / w_ref.norm()               # then the orthogonalised step
        w_ref = w_ref - 0.2 * orthogonalize(d.reshape(6, -1)).view(6, 3, 3, 3)
    assert torch.allclose(w.detach(), w_ref, atol=1e-6)
    assert torch.allclose(b.detach(), b_ref.detach(), atol=1e-7)


def test_muon_groups_split_filters_biases_and_head():
    cfg = load_recipe("fast")
    net = FastNet(width=4)
    opt, _ = build_optimizer(net, cfg, steps=10)
    assert isinstance(opt, MuonSGD)
    head, ones, filters = opt.param_groups
    assert [p is net.fc.weight for p in head["params"]] == [True]
    assert any(p is net.whiten.bias for p in ones["params"]) and len(ones["params"]) == 7
    assert all(p.dim() == 4 for p in filters["params"]) and len(filters["params"]) == 6
    assert filters["muon"] and filters["weight_decay"] == 0 and filters["momentum"] == 0.6
    assert head["lr"] * head["weight_decay"] == pytest.approx(ones["lr"] * ones["weight_decay"])
    n_groups = sum(len(g["params"]) for g in muon_groups(net, cfg))
    assert n_groups == sum(p.requires_grad for p in net.parameters())


def test_muon_recipe_same_seed_same_weights_and_exact_resume(tmp_path):
    cfg = one_step("fast", epochs=2, subset=64)
    a = train_model(cfg, tmp_path / "a", progress=False)
    b = train_model(cfg, tmp_path / "b", progress=False)
    assert weights_hash(a.model) == weights_hash(b.model)
    train_model(cfg, tmp_path / "k", stop_after=1, progress=False)
    resumed = train_model(cfg, tmp_path / "k", resume=True, progress=False)
    assert weights_hash(resumed.model) == weights_hash(a.model)


def test_resume_counts_a_field_an_older_run_lacks_as_its_default(tmp_path):
    cfg = one_step("fast-sgd", epochs=2, subset=64, lookahead_every=1)
    train_model(cfg, tmp_path / "k", stop_after=1, progress=False)
    last = tmp_path / "k" / "last.pt"
    payload = torch.load(last, weights_only=True)
    for key in ("optimizer", "muon_lr", "muon_momentum", "head_features"):
        del payload["config"][key]          # as a run saved before these fields existed
    torch.save(payload, last)
    with pytest.raises(TrainError, match=r"optimizer=None \(now 'muon'\)"):
        train_model(override(cfg, optimizer="muon"), tmp_path / "k", resume=True,
                    progress=False)
    resumed = train_model(cfg, tmp_path / "k", resume=True, progress=False)
    whole = train_model(cfg, tmp_path / "a", progress=False)
    assert weights_hash(resumed.model) == weights_hash(whole.model)


def test_optimizer_and_muon_values_are_checked():
    with pytest.raises(ConfigError, match="optimizer='adam'"):
        override(load_recipe("fast"), optimizer="adam")
    with pytest.raises(ConfigError, match="muon_momentum=1.0"):
        override(load_recipe("fast"), muon_momentum=1.0)
    with pytest.raises(ConfigError, match="muon_lr=0"):
        override(load_recipe("fast"), muon_lr=0)


# ----------------------------------------------------------------------------- augmentation
def test_reflect_translation_matches_a_per_image_reference():
    x = torch.randint(0, 256, (12, 3, 8, 8), dtype=torch.uint8)
    out = random_crop(x, 2, torch.Generator().manual_seed(5), mode="reflect")
    g = torch.Generator().manual_seed(5)
    oy, ox = torch.randint(0, 5, (12,), generator=g), torch.randint(0, 5, (12,), generator=g)
    padded = F.pad(x.float(), (2, 2, 2, 2), mode="reflect").to(torch.uint8)
    ref = torch.stack([padded[i, :, oy[i]:oy[i] + 8, ox[i]:ox[i] + 8] for i in range(12)])
    assert out.dtype == torch.uint8 and torch.equal(out, ref)


def test_alternating_flips_show_each_image_both_ways():
    first = torch.rand(1000, generator=torch.Generator().manual_seed(0)) < 0.5
    e0, e1, e2 = (alternating_flips(first, e) for e in range(3))
    assert torch.equal(e0, first) and torch.equal(e1, ~first) and torch.equal(e2, first)
    assert 400 < int(first.sum()) < 600


# ----------------------------------------------------------------------------- runs
def test_fastnet_same_seed_same_weights_and_exact_resume(tmp_path):
    cfg = one_step("fast-sgd", epochs=2, subset=64, lookahead_every=1)
    a = train_model(cfg, tmp_path / "a", progress=False)
    b = train_model(cfg, tmp_path / "b", progress=False)
    c = train_model(override(cfg, seed=7), tmp_path / "c", progress=False)
    assert weights_hash(a.model) == weights_hash(b.model) != weights_hash(c.model)
    part = train_model(cfg, tmp_path / "k", stop_after=1, progress=False)
    assert "lookahead" in torch.load(part.checkpoint, weights_only=True)["extra"]
    resumed = train_model(cfg, tmp_path / "k", resume=True, progress=False)
    assert weights_hash(resumed.model) == weights_hash(a.model)
    # the whitening layer was set from data, not left at its random init
    w = a.model.net.whiten.weight
    assert torch.allclose(w[12:], -w[:12]) and float(w.abs().max()) > 1


def test_device_and_config_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="device='gpu0'"):
        override(load_recipe("fast"), device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="cuda:1"):
            train_model(one_step("fast", device="cuda:1"), tmp_path / "x", progress=False)
    with pytest.raises(FailmodesError, match="whiten_bias_epochs"):
        train_model(one_step("fast", model="small_cnn"), tmp_path / "y", progress=False)
