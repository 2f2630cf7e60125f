"""Benchmarks: each module is a `seg_perception bench <name>` subcommand writing JSON."""
