"""Runners (one per experiment) and the pieces they share: data, CLI, tracker, sweep runner.

Run them from the repository root as modules, e.g. ``python -m experiments.palindrome --help``.
"""
