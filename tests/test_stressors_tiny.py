"""The 64 px (Tiny-ImageNet-C) severity table: published values as literal data, chosen by
image size, and deterministic corruptions against an independent library reference."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

# The published 64 px rows (make_tinyimagenet_c.py, severities 1..5, the generator's own
# form) live once, in test_severity_tables.py.
from test_severity_tables import TINYIMAGENET_C as PUBLISHED_64

from failmodes.stressors import get_stressor, list_stressors


def _as_params(name, v):
    """The generator's value in failmodes' parameter tuple."""
    if name == "frost":
        return (*v, 0.3)            # textures resized by 0.3 before the 64 px crop
    if name == "fog":
        return (*v, 64)             # plasma_fractal(mapsize=64)
    if name == "elastic_transform":
        return tuple(p / 64 for p in v)  # fractions of the image side
    return tuple(v) if isinstance(v, tuple) else (v,)


def test_every_corruption_has_the_published_64px_rows():
    corruptions = [n for n in list_stressors() if get_stressor(n).tables is not None]
    assert sorted(corruptions) == sorted(PUBLISHED_64)
    for name, rows in PUBLISHED_64.items():
        st = get_stressor(name)
        assert st.table_family(64) == "tinyimagenet"
        for k, v in enumerate(rows, 1):
            got, want = st.resolve(float(k), 64), _as_params(name, v)
            assert got == pytest.approx(want, rel=1e-12), f"{name} severity {k}"


def test_table_is_chosen_by_image_size():
    st = get_stressor("gaussian_noise")
    assert [st.table_family(h) for h in (32, 63, 64, 96, 127, 128, 224)] == [
        "cifar", "cifar", "tinyimagenet", "tinyimagenet", "tinyimagenet", "imagenet", "imagenet"]
    assert st.resolve(3.0, 64) == (0.12,) and st.resolve(3.0, 32) == (0.08,)
    assert st.resolve(3.0, 224) == (0.18,)
    assert st.resolve(3.0, 32, params="tinyimagenet") == (0.12,)


def _photos(n=3):
    import skimage.data
    from skimage.transform import resize
    pics = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()][:n]
    return np.stack([(resize(p, (64, 64), anti_aliasing=True) * 255).astype(np.uint8)
                     for p in pics])


def _ours(name, clean, k):
    x = torch.from_numpy(clean).permute(0, 3, 1, 2).float() / 255.0
    y = get_stressor(name)(x, float(k), seed=0)
    return (y * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy().astype(np.float64)


def _reference(name, img, k):
    """The generator's operation at 64 px, written with the libraries it used."""
    c = PUBLISHED_64[name][k - 1]
    x = img / 255.0
    if name == "gaussian_blur":
        from skimage.filters import gaussian
        y = gaussian(x, sigma=c, channel_axis=-1)
    elif name == "contrast":
        m = x.mean(axis=(0, 1), keepdims=True)
        y = (x - m) * c + m
    elif name in ("brightness", "saturate"):
        from skimage.color import hsv2rgb, rgb2hsv
        h = rgb2hsv(x)
        if name == "brightness":
            h[..., 2] = np.clip(h[..., 2] + c, 0, 1)
        else:
            h[..., 1] = np.clip(h[..., 1] * c[0] + c[1], 0, 1)
        y = hsv2rgb(h)
    elif name == "pixelate":
        im = Image.fromarray(img).resize((int(64 * c), int(64 * c)), Image.BOX)
        return np.asarray(im.resize((64, 64), Image.BOX), dtype=np.float64)
    elif name == "jpeg_compression":
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=c)
        return np.asarray(Image.open(buf), dtype=np.float64)
    return np.floor(np.clip(y, 0, 1) * 255)


@pytest.mark.parametrize("name", ["gaussian_blur", "contrast", "brightness", "saturate",
                                  "pixelate", "jpeg_compression"])
def test_deterministic_corruptions_match_the_generator_at_64px(name):
    clean = _photos()
    for k in range(1, 6):
        ref = np.stack([_reference(name, im, k) for im in clean])
        mad = np.abs(_ours(name, clean, k) - ref).mean()
        assert mad <= 1.0, f"{name} severity {k}: mean |ours - reference| = {mad:.2f} grey levels"
