"""Training: recipes, batched on-device augmentation, the reproducible trainer (DDP under
torchrun).

>>> from failmodes.train import list_recipes, load_recipe
>>> list_recipes()
['augmix', 'baseline-cosine', 'baseline-multistep', 'cutout', 'fast', 'fast-cutout',
 'fast-sgd']
"""
from .augment import AUGMIX_OPS, BatchAugment, augmix, cutout, jsd_loss, random_crop, random_flip
from .history import plot_history, write_history
from .recipes import TrainConfig, list_recipes, load_recipe
from .trainer import TrainError, TrainResult, epoch_order, shard_indices, train_model

__all__ = ["AUGMIX_OPS", "BatchAugment", "TrainConfig", "TrainError", "TrainResult", "augmix",
           "cutout", "epoch_order", "jsd_loss", "list_recipes", "load_recipe", "plot_history",
           "random_crop", "random_flip", "shard_indices", "train_model", "write_history"]
