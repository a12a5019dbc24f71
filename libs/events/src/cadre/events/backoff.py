"""Capped exponential backoff for the retry loops of the relay and the consumer helper."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    initial_s: float = 0.1
    maximum_s: float = 5.0
    current_s: float = 0.0

    def next(self) -> float:
        self.current_s = (
            self.initial_s if self.current_s == 0 else min(self.current_s * 2, self.maximum_s)
        )
        return self.current_s

    def reset(self) -> None:
        self.current_s = 0.0
