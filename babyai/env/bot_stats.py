"""The thinking bot's report card: success, distinct thoughts and unmatched pushes per level."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from babyai.env.bot import play_bot
from babyai.env.envs import cached_env


@dataclass
class BotStatistics:
    """How the noise-free thinking bot does on a set of seeds of one level."""

    level: str
    episodes: int
    successes: int
    steps: int
    steps_without_thought: int
    thoughts: Counter
    failures: Counter
    """Why episodes failed (exception type or "no reward")."""
    fallbacks: Counter
    """Pushes that matched no known pattern (see ThinkingBot.fallbacks)."""

    @property
    def success_rate(self) -> float:
        return self.successes / max(self.episodes, 1)

    def merge(self, other: "BotStatistics") -> "BotStatistics":
        return BotStatistics(self.level, self.episodes + other.episodes,
                             self.successes + other.successes, self.steps + other.steps,
                             self.steps_without_thought + other.steps_without_thought,
                             self.thoughts + other.thoughts, self.failures + other.failures,
                             self.fallbacks + other.fallbacks)


def bot_statistics(level: str, seeds: range | list[int]) -> BotStatistics:
    """Play every seed with the noise-free thinking bot, counting every step (failed
    episodes included) and whether it carried a thought."""
    env = cached_env(level)
    stats = BotStatistics(level, 0, 0, 0, 0, Counter(), Counter(), Counter())
    for seed in seeds:
        played = play_bot(env, seed)
        stats.episodes += 1
        stats.steps += len(played.actions)
        stats.thoughts.update(played.thoughts)
        stats.steps_without_thought += sum(not thought for thought in played.thoughts)
        if played.failure is not None:
            stats.failures[type(played.failure.__cause__).__name__] += 1
        elif played.reward > 0:
            stats.successes += 1
        else:
            stats.failures["no reward"] += 1
        stats.fallbacks += played.fallbacks
    return stats


def bot_statistics_chunk(task: tuple[str, int, int]) -> BotStatistics:
    """`bot_statistics(level, range(start, stop))` for a process pool."""
    level, start, stop = task
    return bot_statistics(level, range(start, stop))
