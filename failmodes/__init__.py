"""failmodes: stress-test image classifiers and explain how they fail.

>>> import failmodes as fm
>>> ds = fm.data.load_dataset("synthetic", split="test")
>>> model = fm.models.create_model("small_cnn")
>>> x = fm.stressors.get_stressor("fog")(ds.images[:8].permute(0, 3, 1, 2) / 255, 3.0)
"""
from importlib import import_module

__version__ = "0.1.0"
__all__ = ["data", "models", "stressors", "store", "train", "evaluate", "analysis", "report",
           "study", "estimate", "cam"]


def __getattr__(name):
    # Sub-packages load on first use so `import failmodes` stays fast for the CLI.
    if name in __all__:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'failmodes' has no attribute {name!r}")
