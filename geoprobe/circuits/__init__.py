"""Weight-sparse transformers and their circuits (Gao et al. 2025).

Small transformers trained on algorithmic next-token tasks (:mod:`.tasks`), dense or with
most weights forced to zero (:mod:`.train`), pruned to the smallest set of nodes that still
does one task (:mod:`.prune`), and measured for weight sparsity and modularity
(:mod:`.graph`). The ``circuit`` and ``weight-sparsity`` probes (``geoprobe list``) and the
``circuit-transformer`` generator are built on these; docs/circuits.md has the definitions.
"""
