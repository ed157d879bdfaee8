"""Evaluation backends: run untrusted candidate programs in a sandbox and score their output."""

from evaluators.base import Evaluator
from evaluators.isolation import Isolation, SandboxUnavailable
from evaluators.local import LocalEvaluator
from evaluators.ray_pool import RayEvaluator
from evaluators.workers import ScorerLoadError

__all__ = ["Evaluator", "Isolation", "LocalEvaluator", "RayEvaluator", "SandboxUnavailable", "ScorerLoadError"]
