"""Step mode and neural tweening (pure math plane: no ray, no click)."""

from .step import StepState, TargetDelay

__all__ = ["StepState", "TargetDelay"]
