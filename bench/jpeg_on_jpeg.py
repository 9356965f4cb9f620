"""Issue 31: does failmodes' jpeg_compression lose more at severity 5 (q40) than at severity 4
(q50) on images that are already JPEG q75 (the CIFAR-10 JPEG copy the seed-cpu run used)?
Pristine photos (scikit-image's bundled colour photos), box-downsampled, cut into 32x32
patches; q75 through PIL (4:2:0, the JPEG copy's encoding); then the project's
jpeg_compression at severities 1-5 (q80, 65, 58, 50, 40). PSNR against the q75 input (what
the stressor changes) and against the pristine patch; the same on pristine input.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/jpeg_on_jpeg.py
"""
import io

import numpy as np
import skimage.data as d
import torch
from PIL import Image

from failmodes.stressors.digital import JPEG, jpeg_compression

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
          "retina"]


def patches():
    out = []
    for n in PHOTOS:
        a = getattr(d, n)()[..., :3]
        im = Image.fromarray(a)
        w = 128
        h = max(32, int(round(im.height * w / im.width)) // 32 * 32)
        small = np.asarray(im.resize((w, h), Image.Resampling.BOX))
        for y in range(0, h - 31, 32):
            for x in range(0, w - 31, 32):
                out.append(small[y:y + 32, x:x + 32])
    return np.stack(out)


def pil_jpeg(a, q):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=q)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, axis=(1, 2, 3))
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-12))


def stress(a, q):
    x = torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0
    y = jpeg_compression(x, (q,), None)
    return (y * 255.0).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def main():
    p = patches()
    q75 = np.stack([pil_jpeg(a, 75) for a in p])
    print(f"{len(p)} patches 32x32 from {len(PHOTOS)} photos; q75 input PSNR vs pristine "
          f"{psnr(q75, p).mean():.2f} dB")
    print("sev quality | q75 input: PSNR vs input, vs pristine, changed pixels | pristine input: "
          "PSNR vs pristine")
    for sev, (q,) in enumerate(JPEG["cifar"][1:], 1):
        r = stress(q75, q)
        rp = stress(p, q)
        changed = np.mean(r != q75)
        print(f"{sev} q{q:3d}     | {psnr(r, q75).mean():6.2f} dB {psnr(r, p).mean():6.2f} dB "
              f"{changed:6.3f}        | {psnr(rp, p).mean():6.2f} dB")
    r4, r5 = stress(q75, 50), stress(q75, 40)
    d45 = psnr(r5, q75) - psnr(r4, q75)
    print(f"per patch, PSNR(q40) - PSNR(q50) vs the q75 input: mean {d45.mean():+.2f} dB, "
          f"q40 closer in {np.mean(d45 > 0):.0%} of patches")


def against_pristine():
    p = patches()
    q75 = np.stack([pil_jpeg(a, 75) for a in p])
    r4, r5 = stress(q75, 50), stress(q75, 40)
    d = psnr(r5, p) - psnr(r4, p)
    print(f"per patch, PSNR(q40) - PSNR(q50) vs the pristine patch: mean {d.mean():+.2f} dB, "
          f"q40 closer to the pristine patch in {np.mean(d > 0):.0%} of patches")
    # The tables: libjpeg scales the base table by 50 % at q75, 100 % at q50, 125 % at q40.
    def lum(q):
        buf = io.BytesIO()
        Image.fromarray(p[0]).save(buf, format="JPEG", quality=q)
        return np.array(Image.open(io.BytesIO(buf.getvalue())).quantization[0], dtype=float)
    t75, t50, t40 = lum(75), lum(50), lum(40)
    print(f"luminance steps / q75 steps: q50 median {np.median(t50 / t75):.2f} "
          f"(exactly 2 for {np.mean(t50 == 2 * t75):.0%} of the 64), q40 median "
          f"{np.median(t40 / t75):.2f}")


if __name__ == "__main__":
    main()
    against_pristine()
