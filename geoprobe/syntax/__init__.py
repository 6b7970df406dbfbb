"""Engine of the syntax probes (``structural-probe``, ``polar-probe`` in
:mod:`geoprobe.probes.syntax`): linear maps whose squared distances match dependency-tree
distances, trained on padded batches of whole sentences.

Modules, in the order the probes use them:

* :mod:`~geoprobe.syntax.trees` -- gold tree distances and depths (vectorised).
* :mod:`~geoprobe.syntax.corpus` -- sentences of one split from an item table, padded batches.
* :mod:`~geoprobe.syntax.losses` -- distance, depth, angular and root losses.
* :mod:`~geoprobe.syntax.maps` -- a fixed linear map with its relation prototypes and root.
* :mod:`~geoprobe.syntax.training` -- the trainable map and the training loop.
* :mod:`~geoprobe.syntax.parsing` -- batched minimum spanning trees, edge labels and directions.
* :mod:`~geoprobe.syntax.scoring` -- per-sentence counts of what a map decodes right.
* :mod:`~geoprobe.syntax.metrics` -- corpus-level metrics with a bootstrap over sentences.
* :mod:`~geoprobe.syntax.figures` -- the probes' figure.
"""
