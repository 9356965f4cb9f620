"""Class → superclass maps: built in for CIFAR-10, CIFAR-100 (its 20 coarse labels) and
ImageNet, or loaded from YAML.

They answer whether errors stay "within dog": an error whose true class belongs to a
superclass *stays within* it when the predicted class belongs to the same one.
Classes outside every superclass count as their own singleton superclass for
superclass-level accuracy, and their errors are left out of the "stays within" rate.

Built-in ImageNet ranges (0-based class indices, inclusive):

- ``dogs``: 151–268 (Chihuahua … Mexican hairless)
- ``cats``: 281–285 (tabby, tiger cat, Persian, Siamese, Egyptian cat: domestic cats)
- ``big_cats``: 286–293 (cougar … cheetah)
- ``birds``: 7–24, 80–100, 127–146
- ``vehicles``: the land, rail, water and air vehicles listed in ``IMAGENET_VEHICLES``

YAML format, one superclass per key; entries are class names, indices, or ``"a-b"``
inclusive index ranges::

    animals: [bird, cat, deer, dog, frog, horse]
    dogs: ["151-268"]

>>> m = builtin_map("cifar10", ["airplane", "automobile", "bird", "cat", "deer", "dog",
...                             "frog", "horse", "ship", "truck"])
>>> m.group_of[[3, 5, 0]].tolist(), m.names
([0, 0, 1], ['animals', 'vehicles'])
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FailmodesError

CIFAR10_SUPERCLASSES = {
    "animals": ["bird", "cat", "deer", "dog", "frog", "horse"],
    "vehicles": ["airplane", "automobile", "ship", "truck"],
}

# A finer CIFAR-10 map (``cifar10-fine``): siblings differ in detail, not in kind, so
# ship -> airplane (the water/sky context error) and cat -> frog are not "within".
CIFAR10_FINE_SUPERCLASSES = {
    "mammal": ["cat", "deer", "dog", "horse"], "bird": ["bird"], "amphibian": ["frog"],
    "road_vehicle": ["automobile", "truck"], "aircraft": ["airplane"],
    "watercraft": ["ship"],
}

# CIFAR-100's 20 coarse labels (``coarse_label_names`` of the dataset's meta file, in
# coarse-index order) and the 5 fine classes of each, as the dataset's own
# ``coarse_labels`` assign them.
CIFAR100_SUPERCLASSES = {
    "aquatic_mammals": ["beaver", "dolphin", "otter", "seal", "whale"],
    "fish": ["aquarium_fish", "flatfish", "ray", "shark", "trout"],
    "flowers": ["orchid", "poppy", "rose", "sunflower", "tulip"],
    "food_containers": ["bottle", "bowl", "can", "cup", "plate"],
    "fruit_and_vegetables": ["apple", "mushroom", "orange", "pear", "sweet_pepper"],
    "household_electrical_devices": ["clock", "keyboard", "lamp", "telephone", "television"],
    "household_furniture": ["bed", "chair", "couch", "table", "wardrobe"],
    "insects": ["bee", "beetle", "butterfly", "caterpillar", "cockroach"],
    "large_carnivores": ["bear", "leopard", "lion", "tiger", "wolf"],
    "large_man-made_outdoor_things": ["bridge", "castle", "house", "road", "skyscraper"],
    "large_natural_outdoor_scenes": ["cloud", "forest", "mountain", "plain", "sea"],
    "large_omnivores_and_herbivores": ["camel", "cattle", "chimpanzee", "elephant", "kangaroo"],
    "medium_mammals": ["fox", "porcupine", "possum", "raccoon", "skunk"],
    "non-insect_invertebrates": ["crab", "lobster", "snail", "spider", "worm"],
    "people": ["baby", "boy", "girl", "man", "woman"],
    "reptiles": ["crocodile", "dinosaur", "lizard", "snake", "turtle"],
    "small_mammals": ["hamster", "mouse", "rabbit", "shrew", "squirrel"],
    "trees": ["maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"],
    "vehicles_1": ["bicycle", "bus", "motorcycle", "pickup_truck", "train"],
    "vehicles_2": ["lawn_mower", "rocket", "streetcar", "tank", "tractor"],
}

IMAGENET_VEHICLES = [
    # road and other land vehicles
    407, 436, 444, 450, 468, 511, 537, 555, 561, 569, 573, 575, 586, 595, 603, 609, 612, 627,
    654, 656, 665, 670, 671, 675, 690, 717, 734, 751, 757, 779, 802, 817, 847, 856, 864, 866,
    867, 870, 874, 880,
    # rail: bullet train, electric locomotive, freight car, passenger car, steam locomotive,
    # streetcar
    466, 547, 565, 705, 820, 829,
    # watercraft (amphibian included)
    403, 408, 472, 484, 510, 554, 576, 625, 628, 694, 724, 780, 814, 833, 871, 914,
    # aircraft: airliner, airship, balloon, space shuttle, warplane
    404, 405, 417, 812, 895,
]
IMAGENET_SUPERCLASSES: dict[str, list] = {  # "a-b" index ranges and plain indices
    "dogs": ["151-268"],
    "cats": ["281-285"],
    "big_cats": ["286-293"],
    "birds": ["7-24", "80-100", "127-146"],
    "vehicles": IMAGENET_VEHICLES,
}
BUILTIN = {"cifar10": CIFAR10_SUPERCLASSES, "cifar10-fine": CIFAR10_FINE_SUPERCLASSES,
           "cifar100": CIFAR100_SUPERCLASSES, "imagenet": IMAGENET_SUPERCLASSES}


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]


class SuperclassError(ValueError, FailmodesError):
    """A superclass map is unusable; one line naming the file, the superclass and entry."""


@dataclass(frozen=True)
class SuperclassMap:
    """``group_of[c]``: the superclass index of class c, or −1 when c is in none."""

    source: str
    names: list[str]
    group_of: np.ndarray

    def singleton_groups(self) -> np.ndarray:
        """Group ids where every unmapped class is its own group (for superclass accuracy)."""
        g = self.group_of.copy()
        free = np.flatnonzero(g < 0)
        g[free] = len(self.names) + np.arange(len(free))
        return g

    def within_chance(self, labels: np.ndarray) -> float | None:
        """Chance that an error stays within the superclass if the wrong class were drawn
        uniformly from the other C − 1: the mean of (|group(t)| − 1) / (C − 1) over the
        true labels ``t`` of the errors that have a superclass (None when none has).

        >>> m = builtin_map("cifar10", CIFAR10_CLASSES)
        >>> round(m.within_chance(np.array([3])), 4)   # cat: 5 other animals of 9 classes
        0.5556
        """
        labels = np.asarray(labels, dtype=np.int64)
        g = self.group_of[labels]
        g = g[g >= 0]
        if g.size == 0 or len(self.group_of) < 2:
            return None
        size = np.bincount(self.group_of[self.group_of >= 0], minlength=len(self.names))
        return float(np.mean((size[g] - 1) / (len(self.group_of) - 1)))


def _resolve(entries: dict, class_names: list[str], source: str) -> SuperclassMap:
    if not isinstance(entries, dict) or not entries:
        raise SuperclassError(f"{source}: expected a mapping superclass -> list of classes")
    index = {n: i for i, n in enumerate(class_names)}
    c = len(class_names)
    group_of = np.full(c, -1, dtype=np.int64)
    names: list[str] = []
    for g, (name, items) in enumerate(entries.items()):
        if not isinstance(items, (list, tuple)):
            raise SuperclassError(f"{source}: superclass {name!r} must list classes, got {items!r}")
        for item in items:
            for k in _expand(item, index, c, f"{source}: superclass {name!r}"):
                if group_of[k] >= 0 and group_of[k] != g:
                    raise SuperclassError(f"{source}: class {class_names[k]!r} is in both "
                                          f"{names[group_of[k]]!r} and {name!r}")
                group_of[k] = g
        names.append(str(name))
    return SuperclassMap(source, names, group_of)


def _expand(item, index: dict, c: int, where: str) -> list[int]:
    if isinstance(item, bool):
        raise SuperclassError(f"{where}: bad entry {item!r}")
    if isinstance(item, int):
        ks = [item]
    elif isinstance(item, str) and item in index:
        return [index[item]]
    elif isinstance(item, str) and "-" in item and item.replace("-", "").strip().isdigit():
        a, b = (int(t) for t in item.split("-", 1))
        if b < a:
            raise SuperclassError(f"{where}: empty range {item!r}")
        ks = list(range(a, b + 1))
    elif isinstance(item, str) and item.strip().isdigit():
        ks = [int(item)]
    else:
        raise SuperclassError(f"{where}: {item!r} is not a class of this model "
                              "(use its exact class name, an index or an 'a-b' range)")
    bad = [k for k in ks if not 0 <= k < c]
    if bad:
        raise SuperclassError(f"{where}: class index {bad[0]} is outside 0..{c - 1}")
    return ks


def builtin_map(name: str, class_names: list[str]) -> SuperclassMap:
    """The built-in map ``cifar10`` or ``imagenet`` for these class names."""
    if name not in BUILTIN:
        raise SuperclassError(f"unknown built-in superclass map {name!r}; "
                              f"choose from {', '.join(BUILTIN)} or pass a YAML file")
    return _resolve(BUILTIN[name], class_names, f"built-in {name}")


def load_superclasses(path: str | os.PathLike, class_names: list[str]) -> SuperclassMap:
    """Read a YAML superclass map (see the module docstring) for these class names."""
    import yaml
    path = Path(path)
    if not path.is_file():
        raise SuperclassError(f"superclass file {path} not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SuperclassError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return _resolve(data, class_names, str(path))


def resolve_superclasses(spec: str | os.PathLike | None,
                         class_names: list[str]) -> SuperclassMap | None:
    """``spec``: None or ``"auto"`` = the built-in map the class names allow (CIFAR-10 names
    → cifar10; CIFAR-100 names → cifar100; 1000 classes → imagenet; else no map),
    ``"none"``, a built-in name (cifar10, cifar10-fine, cifar100, imagenet), or a YAML
    path. The failures and Grad-CAM analyses both resolve their superclass option here, so
    ``auto`` means one map everywhere."""
    if spec is None or str(spec) == "auto":
        for name in ("cifar10", "cifar100"):
            if sorted(class_names) == sorted(c for v in BUILTIN[name].values() for c in v):
                return builtin_map(name, class_names)
        if len(class_names) == 1000:
            return builtin_map("imagenet", class_names)
        return None
    if str(spec) == "none":
        return None
    if str(spec) in BUILTIN:
        return builtin_map(str(spec), class_names)
    return load_superclasses(spec, class_names)
