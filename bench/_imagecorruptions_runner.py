"""Time the `imagecorruptions` package (PyPI 1.1.2) one image at a time; run in its own venv.

    BENCH_VENV/bin/python bench/_imagecorruptions_runner.py IMAGES.npy N_IMAGES NAMES

Prints JSON {"per_corruption": {name: seconds for N_IMAGES x severities 1..5}, "shims": [...]}.
Called by bench/stressors.py through subprocess; not part of the library.
"""
import json
import os
import sys
import time
import types

SHIMS = []


def _shim() -> None:
    # imagecorruptions 1.1.2 (2019) predates numpy 2, scikit-image 0.19+ and scipy 1.14+.
    import numpy as np
    if not hasattr(np, "float_"):
        np.float_ = np.float64
        SHIMS.append("numpy.float_ = numpy.float64 (removed in numpy 2)")
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        mod = types.ModuleType("pkg_resources")

        def resource_filename(package, path):
            base = os.path.dirname(sys.modules[package].__file__)
            return os.path.join(base, path)

        mod.resource_filename = resource_filename
        sys.modules["pkg_resources"] = mod
        SHIMS.append("pkg_resources.resource_filename = path beside the module (setuptools absent)")
    try:
        import scipy.ndimage.interpolation  # noqa: F401
    except ImportError:
        import scipy.ndimage
        sys.modules["scipy.ndimage.interpolation"] = scipy.ndimage
        SHIMS.append("scipy.ndimage.interpolation -> scipy.ndimage (module removed)")


def _patch_gaussian(corruptions) -> None:
    import inspect

    from skimage.filters import gaussian
    if "multichannel" in inspect.signature(gaussian).parameters:
        return

    def gaussian_compat(image, sigma=1, multichannel=None, **kw):
        if multichannel:
            kw["channel_axis"] = -1
        return gaussian(image, sigma=sigma, **kw)

    corruptions.gaussian = gaussian_compat
    SHIMS.append("skimage.filters.gaussian(multichannel=True) -> channel_axis=-1 (removed in 0.19)")


def main() -> None:
    path, n_images, names = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
    _shim()
    import imagecorruptions
    import numpy as np
    from imagecorruptions import corrupt, corruptions
    _patch_gaussian(corruptions)
    images = np.load(path)[:n_images]
    np.random.seed(0)
    corrupt(images[0], 1, "gaussian_noise")  # warm-up (imports, caches)
    out = {}
    for name in names:
        for severity in range(1, 6):  # warm-up: this corruption's files and caches
            corrupt(images[0], severity, name)
        t0 = time.perf_counter()
        c0 = time.process_time()
        for severity in range(1, 6):
            for img in images:
                corrupt(img, severity, name)
        out[name] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    print(json.dumps({"per_corruption": out, "shims": SHIMS, "n_images": len(images),
                      "python": sys.executable, "versions": _versions(),
                      "numpy": np.__version__,
                      "imagecorruptions": getattr(imagecorruptions, "__version__", "1.1.2")}))


def _versions() -> dict:
    # The libraries imagecorruptions computes with: the same as ours, or the ratio is
    # partly a comparison of two numpy/SciPy/OpenCV builds.
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for pkg in ("imagecorruptions", "numpy", "scipy", "scikit-image", "opencv-python-headless",
                "opencv-python", "Pillow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


if __name__ == "__main__":
    main()
