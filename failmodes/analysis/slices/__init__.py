"""Failure slices: groups of images whose error rate is far above the rest, found from
interpretable pixel attributes and from the model's own representation, each tested with an
exact test under Benjamini-Hochberg, described in words and illustrated; and each image's
breaking point (the lowest severity at which it first flips) under every corruption.

The machinery lives in private modules until the package registers itself as an analysis:
``_attributes`` (attributes and their bins), ``_find`` (the search and its statistics),
``_describe`` (sentences, cluster descriptions, typical images), ``_breaks`` (breaking
points and their rank correlations), ``_features`` (penultimate-layer features) and
``_claims`` (the ``errors_concentrate`` claim).
"""
