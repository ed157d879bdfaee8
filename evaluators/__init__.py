"""Evaluation backends: run untrusted candidate programs in a sandbox and score their output."""

from evaluators.base import Evaluator
from evaluators.local import LocalEvaluator

__all__ = ["Evaluator", "LocalEvaluator"]
