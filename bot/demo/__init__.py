"""The demo and its data: `siaga demo`, `siaga demo-data` and the synthetic provinces tests and benchmarks use.

`play` runs the real bot against the built-in emulator on a virtual clock,
`script` is the election morning it plays and the transcript it prints,
`province` is the import format as Python rows and their writers, and
`demodata` generates a realistic province in those rows from a seed.
"""
