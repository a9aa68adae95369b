"""The contract every layer of the suite shares, and nothing else: errors, typed configs, the job,
the input description, the LR schedule, the training context a method trains through, the
registries, and the allocator setting.

A leaf: it imports no package of the suite (`models`, `datasets`, `methods`, `benchmarks` and
`reports` all import it) and importing it changes nothing (docs/design.md, "Layers").
"""
