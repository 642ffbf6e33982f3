"""Marking expectations as blocking (the row is quarantined) or warning (recorded, the row goes on)."""

from __future__ import annotations

from great_expectations.expectations import Expectation


def blocking(expectation: Expectation, rule: str) -> Expectation:
    expectation.meta = {"blocking": True, "rule": rule}
    return expectation


def warning(expectation: Expectation, rule: str) -> Expectation:
    expectation.meta = {"blocking": False, "rule": rule}
    return expectation
