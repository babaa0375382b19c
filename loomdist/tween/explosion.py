"""LOOM's gap-explosion detection: an adaptive rate multiplier per TweenStep (spec 4.8)."""

from __future__ import annotations

from dataclasses import dataclass

BASELINE_SAMPLES = 10


@dataclass
class ExplosionTracker:
    """PrevAvgGap, GapGrowthRate, ExplosionCount, AdaptiveRate, BaselineGap, GapSamples."""

    prev_avg_gap: float = 0.0
    gap_growth_rate: float = 0.0
    explosion_count: int = 0
    adaptive_rate: float = 1.0
    baseline_gap: float = 0.0
    gap_samples: int = 0

    def multiplier(self, gap: float, enabled: bool) -> float:
        """getAdaptiveRateMultiplier(avgGap): 1 when disabled; else the damped rate."""
        if not enabled:
            return 1.0
        if self.gap_samples < BASELINE_SAMPLES:
            n = self.gap_samples
            self.baseline_gap = (self.baseline_gap * n + gap) / (n + 1)
            self.gap_samples += 1
            self.prev_avg_gap = gap
            return self.adaptive_rate
        growth = gap / self.prev_avg_gap if self.prev_avg_gap > 1e-4 else 1.0
        self.gap_growth_rate = growth
        if growth > 1.5 or (self.baseline_gap > 0 and gap > 10 * self.baseline_gap):
            self.explosion_count += 1
            factor = 0.3 if self.explosion_count > 10 else 0.5 if self.explosion_count > 5 \
                else 0.7
            self.adaptive_rate = max(0.01, self.adaptive_rate * factor)
        else:
            self.explosion_count = 0
            self.adaptive_rate = min(1.0, self.adaptive_rate * 1.05)
        self.prev_avg_gap = gap
        return self.adaptive_rate
