"""Op-specific properties of motion blur, the weather and digital corruptions and the
`corrupt` command (the registry-wide contract lives in test_stressors.py)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from failmodes.stressors import get_stressor
from failmodes.stressors._motion import kernel_width, motion_blur_u8, motion_kernel, motion_offsets
from failmodes.stressors._rng import ImageRNG
from failmodes.stressors._spatial import pil_box_resize
from failmodes.stressors.digital import hsv_to_rgb, rgb_to_hsv
from failmodes.stressors.weather import ASSETS, FROST_FILES, frost_textures, plasma_fractal

torch.set_num_threads(1)


def _images(n=6, h=32, w=32, seed=0):
    """Smooth synthetic images on the 8-bit grid: gradients, blobs and some texture."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.rand(n, 3, 1, 1, generator=g) * 0.6 + 0.2
    tilt = (torch.rand(n, 3, 1, 1, generator=g) - 0.5) * (xx + yy)
    tex = 0.1 * torch.rand(n, 3, h, w, generator=g)
    return (torch.floor((base + tilt + tex).clamp(0, 1) * 255) / 255).float()


def _damage(y, x):
    return (y - x).abs().mean().item()


def _rng(n, name="t", sev=1.0):
    return ImageRNG.for_images(name, sev, 0, torch.arange(n), torch.device("cpu"))


# ----------------------------------------------------------------------------- motion
def test_motion_kernel_is_one_sided_gaussian_summing_to_one():
    for radius, sigma in [(6, 1), (9, 2.5), (2.4, 0.7), (20, 15)]:
        k = motion_kernel(radius, sigma)
        assert k.numel() == kernel_width(radius) == 2 * int(np.ceil(radius)) + 1
        assert abs(k.sum().item() - 1) < 1e-12
        assert k[0] == k.max() and bool((k[1:] <= k[:-1]).all())  # peak at the pixel itself
        i = torch.arange(k.numel(), dtype=torch.float64)
        ref = torch.exp(-i * i / (2 * sigma ** 2))
        assert torch.allclose(k, ref / ref.sum())


def test_motion_offsets_follow_the_angle_on_one_side():
    dx, dy = motion_offsets(5, torch.tensor([0.0, 90.0, -90.0, 45.0]))
    assert dx[0].tolist() == [0, 1, 2, 3, 4] and dy[0].tolist() == [0] * 5
    assert dx[1].tolist() == [0] * 5 and dy[1].tolist() == [0, 1, 2, 3, 4]
    assert dy[2].tolist() == [0, -1, -2, -3, -4]
    assert dx[3].tolist() == dy[3].tolist() == [0, 1, 1, 2, 3]  # ceil(i·cos45° − 0.5)


# ImageMagick 6.9.11-60 Q16 (the reference's version): `convert g.png -motion-blur
# 3x1.5{angle} o.png` on the grey card built in _card(); outputs as hex bytes.
_IM_GOLDEN = {
    0: "0c1a28364452606e7c89949a13212f3d4b59677583909ba11a28364452606e7c8a97a2a8212f3d4b5967758391"
       "9ea9af29384f76b2f2e0be98a5b0b62f3f557bb5f2e2c29facb7bd36465c80b8f3e3c6a6b3bec43d4b59677583"
       "919fadbac5cb4452606e7c8a98a6b4c1ccd24b59677583919fadbbc8d3d952606e7c8a98a6b4c2cfdae0596775"
       "83919fadbbc9d6e1e7",
    30: "0e1c2a38465462707e8b959b1523313f4d5b697785929ca21c2a3a485562707e8c99a3a9233149717b7e7785"
        "93a0aab02a385076b4f2e2c09aa7b1b7313f557ab5f3e3c4a1aeb8be384654629ee2e5c8a8b5bfc53f4d5b69"
        "778593a1afbcc6cc465462707e8c9aa8b6c3cdd34d5b69778593a1afbdcad4da5462707e8c9aa8b6c4d1dbe1"
        "59677583919fadbbc9d6e1e7",
    -60: "09172533414f5d6b7987949a0c1a28364452606e7c8a979c111f2d3b49576573818f9ca2172533414f5d6b"
         "798795a2a81e2c3a4856a4acb48e9ca9af2533414f91d7dab995a3b0b62c3a4856aff0f1bd9caab7bd3341"
         "4f68bcc2c195a3b1bec43a48576f939ea19caab8c5cb414f5e75828f95a3b1bfccd248566573818e9caab8"
         "c6d3d94f5d6b798795a3b1bfcddae0",
    -100: "000d1b29374553616f7d8b99020f1d2b39475563717f8d9b081523313f4d5b69778593a10e1b2937455361"
          "6f7d8b99a71522303e4c9aa2aa8492a0ae1c29374553d1d5d88b99a7b523303e4c5aedeeef92a0aebc2a37"
          "455361b7c6cca0a7b5c3313e4c5a688ea4aea8aebcca384553616f7d95a2afb5c3d13f4c5a68768494a2b0"
          "bccad84653616f7d8b99a7b5c3d1df",
}


def _card():
    a = ((np.add.outer(np.arange(12), 2 * np.arange(12)) * 7) % 256).astype(np.uint8)
    a[4:7, 5:8] = 250
    return a


def test_motion_blur_matches_imagemagick_byte_for_byte():
    x = torch.from_numpy(_card()).float().view(1, 1, 12, 12).expand(4, 1, 12, 12)
    angles = torch.tensor(list(_IM_GOLDEN), dtype=torch.float64)
    y = motion_blur_u8(x, 3, 1.5, angles)
    for i, ang in enumerate(_IM_GOLDEN):
        want = np.frombuffer(bytes.fromhex(_IM_GOLDEN[ang]), np.uint8).reshape(12, 12)
        assert np.array_equal(y[i, 0].numpy().astype(np.uint8), want), ang


def test_motion_blur_keeps_flat_images_and_blurs_edges():
    st = get_stressor("motion_blur")
    flat = torch.full((2, 3, 16, 16), 100 / 255)
    assert torch.equal(st(flat, 3.0), flat)
    x = _images(4)
    damage = [_damage(st(x, float(s)), x) for s in (1, 3, 5)]
    assert 0 < damage[0] < damage[2]


# ----------------------------------------------------------------------------- weather
def test_frost_ships_and_uses_only_textures_1_to_5():
    assert FROST_FILES == ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
    assert not (ASSETS / "frost6.jpg").exists() and (ASSETS / "NOTICE.md").exists()
    stack, sizes = frost_textures(0.2, 32, 32, "cpu")
    assert stack.shape[0] == 5
    # Severity-table-free check: frost weight 1, image weight 0 gives the crop itself.
    op = get_stressor("frost").op
    crops = (op(torch.zeros(8, 3, 32, 32), (0.0, 1.0, 0.2), _rng(8)) * 255).round().to(torch.uint8)
    for crop in crops:
        found = False
        for t, (th, tw) in zip(stack, sizes.tolist()):
            r, c = torch.nonzero((t[:, :th - 32, :tw - 32] == crop[:, :1, :1]).all(0), as_tuple=True)
            found |= any(torch.equal(t[:, a:a + 32, b:b + 32], crop) for a, b in zip(r.tolist(), c.tolist()))
        assert found


def test_frost_texture_cache_matches_cv2_resize():
    import cv2

    stack, sizes = frost_textures(0.2, 32, 32, "cpu")
    ref = cv2.resize(cv2.imread(str(ASSETS / "frost4.jpg")), (0, 0), fx=0.2, fy=0.2)[..., ::-1]
    th, tw = sizes[3].tolist()
    assert (th, tw) == ref.shape[:2]
    assert np.array_equal(stack[3, :, :th, :tw].permute(1, 2, 0).numpy(), ref)


def test_plasma_fractal_spans_unit_range_and_differs_per_image():
    m = plasma_fractal(_rng(3), 32, 2.0).float()
    assert m.shape == (3, 32, 32)
    assert torch.allclose(m.amin((1, 2)), torch.zeros(3)) and torch.allclose(m.amax((1, 2)), torch.ones(3))
    assert not torch.equal(m[0], m[1])


def test_fog_and_snow_damage_grow_with_severity():
    x = _images(6)
    for name in ("fog", "snow"):
        st = get_stressor(name)
        d = [_damage(st(x, float(s)), x) for s in range(1, 6)]
        assert all(a < b for a, b in zip(d, d[1:])), (name, d)


def test_spatter_water_only_brightens_and_mud_only_pulls_towards_brown():
    st = get_stressor("spatter")
    x = _images(8)
    for s in (1.0, 2.0, 3.0):
        assert bool((st(x, s) >= x - 1.5 / 255).all())
    brown = torch.tensor([63, 42, 20]).view(1, 3, 1, 1) / 255
    for s in (4.0, 5.0):
        y = st(x, s)
        moved = (y - x).abs().amax(1, keepdim=True) > 1.5 / 255
        assert moved.any()
        # A moved pixel lies on the segment from the clean pixel to mud brown.
        t = ((y - x) * (brown - x)).sum(1, keepdim=True) / ((brown - x) ** 2).sum(1, keepdim=True)
        resid = (x + t * (brown - x) - y).abs().amax(1, keepdim=True)
        assert bool((resid[moved] < 3 / 255).all())
    y = st(x, 3.5)  # halfway between the water and the mud branch
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1


def test_imagenet_tables_run_on_other_sizes():
    x = _images(2, 40, 48)
    for name in ("frost", "fog", "snow", "elastic_transform", "pixelate"):
        y = get_stressor(name)(x, 2.0, params="imagenet")
        assert y.shape == x.shape and _damage(y, x) > 0, name


# ----------------------------------------------------------------------------- digital
def test_hsv_round_trip_is_identity_and_matches_skimage():
    from skimage.color import hsv2rgb, rgb2hsv

    x = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    x[0, :, 0, :4] = torch.tensor([[0.5, 0.5, 0.2, 1.0], [0.5, 0.5, 0.7, 1.0], [0.5, 0.3, 0.7, 0.0]])
    hsv = rgb_to_hsv(x)
    assert torch.allclose(hsv_to_rgb(hsv), x, atol=1e-12)
    for i in range(3):
        ref = rgb2hsv(x[i].permute(1, 2, 0).numpy())
        assert np.allclose(hsv[i].permute(1, 2, 0).numpy(), ref, atol=1e-12)
        back = hsv2rgb(ref)
        assert np.allclose(hsv_to_rgb(hsv[i:i + 1])[0].permute(1, 2, 0).numpy(), back, atol=1e-12)


def test_neutral_hsv_edits_and_contrast_are_identity_up_to_the_reference_truncation():
    # The reference truncates float64 results, so a value that is k/255 in exact
    # arithmetic but k/255 - 1e-16 in floating point drops to k-1: at most one level.
    x = _images(4)
    for name, p in (("saturate", (1.0, 0.0)), ("brightness", (0.0,)), ("contrast", (1.0,))):
        y = get_stressor(name).op(x, p, None)
        assert (y - x).abs().max() <= 1 / 255 + 1e-6, name
        assert (y == x).float().mean() > 0.5, name


def test_contrast_keeps_channel_means():
    x = _images(4)
    y = get_stressor("contrast")(x, 4.0)
    assert torch.allclose(y.mean((2, 3)), x.mean((2, 3)), atol=1.5 / 255)


def test_pixelate_is_deterministic_and_equals_pil_box():
    g = torch.Generator().manual_seed(1)
    u8 = torch.randint(0, 256, (3, 32, 32, 3), generator=g, dtype=torch.uint8)
    x = u8.permute(0, 3, 1, 2).float() / 255
    st = get_stressor("pixelate")
    y = st(x, 4.0, seed=0)
    assert torch.equal(y, st(x, 4.0, seed=7))
    for i, a in enumerate(u8.numpy()):
        ref = Image.fromarray(a).resize((24, 24), Image.BOX).resize((32, 32), Image.BOX)
        assert np.array_equal((y[i] * 255).round().byte().permute(1, 2, 0).numpy(), np.asarray(ref))
    small = pil_box_resize(x[:1] * 255, 7, 5)
    ref = np.asarray(Image.fromarray(u8[0].numpy()).resize((5, 7), Image.BOX))
    assert np.array_equal(small[0].permute(1, 2, 0).numpy().astype(np.uint8), ref)


def test_jpeg_is_deterministic_and_equals_pil():
    x = _images(3)
    st = get_stressor("jpeg_compression")
    y = st(x, 5.0, seed=0)
    assert torch.equal(y, st(x, 5.0, seed=3))
    a = (x[1] * 255).round().byte().permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=40)
    ref = np.asarray(Image.open(buf))
    assert np.array_equal((y[1] * 255).round().byte().permute(1, 2, 0).numpy(), ref)


def _curvature(y):
    # Largest second difference in the centre: ~0 where y is an affine function of (row, col).
    c = y[..., 10:-10, 10:-10]
    d2 = [c[..., 2:, :] - 2 * c[..., 1:-1, :] + c[..., :-2, :],
          c[..., :, 2:] - 2 * c[..., :, 1:-1] + c[..., :, :-2]]
    return max(d.abs().max().item() for d in d2)


def test_elastic_severity_1_is_a_pure_affine_and_later_ones_are_not():
    st = get_stressor("elastic_transform")
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    ramp = (0.2 + 0.01 * rows + 0.008 * cols).expand(4, 3, 32, 32).contiguous()
    # The affine maps pixel coordinates to 1/32-px positions, so a ramp stays a ramp
    # up to that rounding; the elastic field of severity 5 (3.2 px, sigma 1 px) bends it.
    y1 = st.op(ramp, st.resolve(1.0), _rng(4, "elastic_transform", 1.0))
    y5 = st.op(ramp, st.resolve(5.0), _rng(4, "elastic_transform", 5.0))
    # 1/32-px rounding moves a value by <= 0.018/64, a second difference by 4x that.
    assert _curvature(y1) < 4 * 0.018 / 64 + 1e-6
    assert _curvature(y5) > 10 * 4 * 0.018 / 64


# ----------------------------------------------------------------------------- corrupt CLI
@pytest.fixture()
def image_dir(tmp_path):
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    rgb = (np.indices((20, 24)).sum(0) * 5 % 256).astype(np.uint8)
    Image.fromarray(np.stack([rgb, rgb[::-1], 255 - rgb], -1)).save(d / "a_rgb.png")
    rgba = np.zeros((20, 24, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 12:, 3] = 255  # left half fully transparent
    Image.fromarray(rgba, "RGBA").save(d / "b_rgba.png")
    Image.fromarray(rgb, "L").save(d / "sub" / "c_gray.jpg")
    (d / "d_broken.png").write_bytes(b"not a png at all")
    (d / "labels.txt").write_text("ignored")
    return d


def test_load_image_converts_modes_to_rgb(image_dir):
    from failmodes.stressors.io import ImageInputError, load_image

    rgba = load_image(image_dir / "b_rgba.png")
    assert rgba.shape == (3, 20, 24)
    assert torch.allclose(rgba[:, :, :12], torch.ones(3, 20, 12))  # transparent -> white
    assert torch.allclose(rgba[:, :, 12:], torch.tensor([200 / 255, 0, 0]).view(3, 1, 1).expand(3, 20, 12))
    gray = load_image(image_dir / "sub" / "c_gray.jpg")
    assert gray.shape == (3, 20, 24) and torch.equal(gray[0], gray[1])
    with pytest.raises(ImageInputError, match="d_broken.png"):
        load_image(image_dir / "d_broken.png")


def test_corrupt_command_writes_pngs_sheet_and_skips_broken(image_dir, tmp_path):
    from typer.testing import CliRunner

    from failmodes.cli import app

    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["corrupt", str(image_dir), "--stressor", "fog",
                                   "--severity", "3", "--out", str(out),
                                   "--stressors", "fog,contrast"])
    assert res.exit_code == 0, res.output
    assert "d_broken.png" in res.output and "wrote 3 image(s)" in res.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*_fog-3.png"))
    assert written == ["a_rgb_fog-3.png", "b_rgba_fog-3.png", "sub/c_gray_fog-3.png"]
    for p in out.rglob("*_fog-3.png"):
        with Image.open(p) as im:
            assert im.mode == "RGB" and im.size == (24, 20)
    with Image.open(out / "a_rgb_fog-3.png") as im:
        fogged = np.asarray(im)
    assert np.abs(fogged.astype(int) - np.asarray(Image.open(image_dir / "a_rgb.png"))).mean() > 2
    with Image.open(out / "contact_sheet.png") as sheet:
        # 2 rows x 6 severities of 24x20 tiles enlarged 5x (to <= 128 px).
        assert sheet.width > 6 * 120 and 2 * 100 < sheet.height < 3 * 100 + 60


def test_corrupt_command_reports_bad_input_in_one_line(image_dir, tmp_path):
    from typer.testing import CliRunner

    from failmodes.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["corrupt", str(image_dir), "--stressor", "fgo", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "error:" in res.output and "fog" in res.output
    res = runner.invoke(app, ["corrupt", str(tmp_path / "nope"), "--stressor", "fog", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "no such file" in res.output
    res = runner.invoke(app, ["corrupt", str(image_dir / "d_broken.png"), "--stressor", "fog",
                              "--no-sheet", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "cannot read image" in res.output
    res = runner.invoke(app, ["corrupt", str(image_dir), "--stressor", "fog", "--severity", "7",
                              "--out", str(tmp_path)])
    assert res.exit_code != 0 and "outside" in res.output


def test_fused_hsv_edit_equals_the_reference_steps_bit_for_bit():
    """brightness and saturate run rgb2hsv -> edit -> hsv2rgb -> uint8 truncation fused
    (digital._hsv_edit_u8); against the step-by-step reference on a grid of colours (every
    7th level plus the extremes and mid-grey neighbours: ties, greys, black, white) and
    random ones, for every table row and some in-between parameters: no byte differs.
    (All 2^24 colours were checked once the same way: 0 of 25 x 50 331 648 values differ.)"""
    from failmodes.stressors.digital import (
        BRIGHTNESS,
        SATURATE,
        _hsv_edit_reference,
        _hsv_edit_u8,
    )
    levels = torch.tensor(sorted({*range(0, 256, 7), 1, 2, 127, 128, 129, 253, 254, 255}))
    grid = torch.cartesian_prod(levels, levels, levels)  # (L^3, 3)
    rand = torch.randint(0, 256, (1 << 16, 3), generator=torch.Generator().manual_seed(0))
    cols = torch.cat([grid, rand]).float().div(255.0)
    x = cols.T.contiguous().view(1, 3, 1, -1)  # one image, a row of colours
    params = [(2, 1.0, r[0]) for t in BRIGHTNESS.values() for r in t[1:]]
    params += [(1, r[0], r[1]) for t in SATURATE.values() for r in t[1:]]
    params += [(2, 1.0, 0.0), (2, 1.0, 0.137), (1, 1.0, 0.0), (1, 0.55, 0.07), (1, 2.5, 0.0)]
    for ch, scale, shift in params:
        want = _hsv_edit_reference(x, ch, scale, shift)
        assert torch.equal(_hsv_edit_u8(x, ch, scale, shift), want), (ch, scale, shift)
