"""The batched evaluation core: equality with one-at-a-time runs, halting, summaries."""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from babyai.agent.records import EpisodeRecord
from babyai.agent.rollout import RolloutOptions, run_episodes
from babyai.evaluation.stats import (mission_types, success_by_mission_type, summarize_success,
                                     wilson_interval)
from babyai.common.errors import UserError
from babyai.agent.model import AgentOutput, Memory, TextEncoding, ModelConfig, build_agent
from babyai.data.vocab import EOS, PAD, Vocabulary
from babyai.commands import bench_eval

WORDS = ("go to the red ball pick up a blue key open door put next then after and explore "
         "unseen area pickup to complete mission grey green purple yellow box")
LEVEL = "BabyAI-GoToLocal-v0"
STEPS = 16
"""A short step limit keeps untrained agents' episodes cheap."""


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.build([WORDS])


def tiny_agent(vocab: Vocabulary, use_thoughts: bool, seed: int = 0):
    torch.manual_seed(seed)
    return build_agent(ModelConfig(vocab_size=len(vocab), memory_dim=32, image_dim=16,
                                   instr_dim=16, use_thoughts=use_thoughts))


@pytest.mark.parametrize("use_thoughts", [True, False])
def test_greedy_batched_equals_one_at_a_time(vocab, use_thoughts):
    agent = tiny_agent(vocab, use_thoughts)
    seeds = [3, 1, 4, 15, 9, 2]
    batched = run_episodes(agent, vocab, LEVEL, seeds, RolloutOptions(argmax=True, max_batch=4, max_steps=STEPS))  # refills
    assert [record.seed for record in batched] == seeds
    for record in batched:
        alone = run_episodes(agent, vocab, LEVEL, [record.seed], RolloutOptions(argmax=True, max_steps=STEPS))[0]
        assert alone.actions == record.actions
        assert alone.thoughts == record.thoughts
        assert (alone.success, alone.reward, alone.length) == (record.success, record.reward,
                                                               record.length)
    assert all(len(r.thoughts) == (r.length if use_thoughts else 0) for r in batched)
    assert all(len(r.events) == r.length == len(r.actions) for r in batched)


def test_sampling_does_not_depend_on_batch_composition(vocab):
    agent = tiny_agent(vocab, True)
    seeds = [5, 6, 7, 8, 9]
    wide = run_episodes(agent, vocab, LEVEL, seeds, RolloutOptions(max_batch=5, sample_seed=11, max_steps=STEPS))
    narrow = run_episodes(agent, vocab, LEVEL, seeds, RolloutOptions(max_batch=2, sample_seed=11, max_steps=STEPS))
    other = run_episodes(agent, vocab, LEVEL, seeds, RolloutOptions(max_batch=5, sample_seed=12, max_steps=STEPS))
    assert [r.actions for r in wide] == [r.actions for r in narrow]
    assert [r.actions for r in wide] != [r.actions for r in other]


def test_mode_is_restored(vocab):
    agent = tiny_agent(vocab, False)
    agent.train()
    run_episodes(agent, vocab, LEVEL, [0], RolloutOptions(argmax=True, max_steps=4))
    assert agent.training


class ScriptedThinker(nn.Module):
    """A stand-in agent that turns left forever and thinks `special` at its `halt_at`-th step
    (counting from 0), "explore unseen area" otherwise. The step counter lives in memory."""

    def __init__(self, vocab: Vocabulary, special: str, halt_at: int) -> None:
        super().__init__()
        self.config = SimpleNamespace(use_thoughts=True)
        self.dummy = nn.Parameter(torch.zeros(1))
        self.vocab, self.special, self.halt_at = vocab, special, halt_at

    def initial_memory(self, batch: int, device=None) -> Memory:
        return Memory.zeros(batch, 1, device)

    def encode_missions(self, tokens):
        return TextEncoding(tokens.float()[..., None], tokens != PAD)

    def forward(self, images, mission, memory, thought_target=None, teacher_forcing=True, **_):
        step = memory.upper_h[:, 0].long()
        rows = []
        for value in step.tolist():
            text = self.special if value == self.halt_at else "explore unseen area"
            rows.append(self.vocab.encode(text) + [EOS])
        width = max(len(row) for row in rows)
        tokens = torch.tensor([row + [PAD] * (width - len(row)) for row in rows])
        logits = torch.tensor([[5.0, 0, 0, 0, 0, 0, 0]]).expand(len(rows), 7)
        new_memory = memory._replace(upper_h=memory.upper_h + 1)
        return AgentOutput(logits, torch.zeros(len(rows)), None, tokens, new_memory)


def test_intervention_halts_exactly_at_the_matching_thought(vocab):
    agent = ScriptedThinker(vocab, "pickup red ball", halt_at=3)
    rule = re.compile(r"\bred\b")
    records = run_episodes(agent, vocab, LEVEL, [0, 1, 2], RolloutOptions(argmax=True, max_batch=2, intervention=lambda thought: "red" if rule.search(thought) else None))
    for record in records:
        assert record.halted and record.halt_step == 3 and record.halt_reason == "red"
        assert record.actions == [0, 0, 0]  # the matching step's action never ran
        assert record.thoughts == ["explore unseen area"] * 3 + ["pickup red ball"]
        assert len(record.events) == 3 and not record.success
    free = run_episodes(agent, vocab, LEVEL, [0], RolloutOptions(argmax=True, max_steps=STEPS))[0]
    assert not free.halted and free.length > 3  # runs to the step limit turning left


def test_bc_agent_refuses_thought_interventions_and_oracle(vocab):
    agent = tiny_agent(vocab, False)
    with pytest.raises(UserError):
        run_episodes(agent, vocab, LEVEL, [0], RolloutOptions(intervention=lambda thought: True))
    with pytest.raises(UserError):
        run_episodes(agent, vocab, LEVEL, [0], RolloutOptions(thought_ablation="oracle"))
    with pytest.raises(UserError):
        run_episodes(agent, vocab, LEVEL, [0], RolloutOptions(thought_ablation="zeroed"))
    with pytest.raises(UserError):
        RolloutOptions(thought_ablation="scrambled")


def test_render_gives_one_frame_per_state_and_json_round_trip(vocab):
    agent = tiny_agent(vocab, True)
    record = run_episodes(agent, vocab, LEVEL, [0], RolloutOptions(argmax=True, render=True, max_steps=STEPS))[0]
    assert len(record.frames) == record.length + 1
    assert record.frames[0].ndim == 3 and record.frames[0].shape[-1] == 3
    data = json.loads(json.dumps(record.to_json()))
    assert "frames" not in data
    back = EpisodeRecord.from_json(data)
    assert back.events == record.events and back.thoughts == record.thoughts


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_mission_types_and_breakdown():
    assert mission_types("go to the red ball") == ["go to"]
    assert mission_types("open the red door, then pick up a ball") == ["open", "pick up",
                                                                       "then/after"]
    assert mission_types("put the red ball next to a key and go to a door") == [
        "go to", "put next to", "and"]
    assert mission_types("pick up a box after you open a door") == ["open", "pick up",
                                                                    "then/after"]
    records = [EpisodeRecord(0, "go to the red ball", success=True),
               EpisodeRecord(1, "go to a box and open a door", success=False)]
    by_type = success_by_mission_type(records)
    assert (by_type["go to"].episodes, by_type["go to"].successes) == (2, 1)
    assert (by_type["open"].episodes, by_type["open"].successes) == (1, 0)
    assert by_type["pick up"].episodes == 0
    assert summarize_success(records).success_rate == 0.5


def test_bot_and_oracle_thoughts(vocab):
    from babyai.env.bot import ThinkingBot
    from babyai.env.envs import make_env

    agent = tiny_agent(vocab, True)
    seeds = [0, 1, 2]
    recorded = run_episodes(agent, vocab, LEVEL, seeds, RolloutOptions(argmax=True, bot_thoughts=True, max_steps=STEPS))
    oracle = run_episodes(agent, vocab, LEVEL, seeds, RolloutOptions(argmax=True, thought_ablation="oracle", max_steps=STEPS))
    for seed, with_bot, with_oracle in zip(seeds, recorded, oracle):
        env = make_env(LEVEL)
        env.reset(seed=seed)
        first = ThinkingBot(env).act().thought
        assert with_bot.bot_thoughts[0] == first and with_oracle.thoughts[0] == first
        if with_bot.bot_failure is None:
            assert len(with_bot.bot_thoughts) == with_bot.length
        # The lower level read the bot's thought: the thoughts recorded are the bot's, for
        # as long as the bot could continue; every episode runs to its end.
        assert with_oracle.thoughts[: len(with_oracle.bot_thoughts)] == with_oracle.bot_thoughts
        assert len(with_oracle.thoughts) == with_oracle.length


def test_thought_ablations_change_only_what_the_lower_level_reads(vocab):
    """zeroed/shuffled alter the lower level's input; the thoughts the agent has (and so
    the upper level's course) stay those of the unablated run, step for step, as long as
    the actions agree; with a lower level that ignores thoughts nothing changes at all."""
    agent = tiny_agent(vocab, True)
    seeds = [0, 1, 2, 3]
    options = dict(argmax=True, max_steps=STEPS)
    runs = {mode: run_episodes(agent, vocab, LEVEL, seeds,
                               RolloutOptions(thought_ablation=mode, **options))
            for mode in ("none", "zeroed", "shuffled")}
    for mode in ("zeroed", "shuffled"):
        for plain, ablated in zip(runs["none"], runs[mode]):
            assert ablated.thoughts[0] == plain.thoughts[0]
    # Cut the thought pathway: the ablations can no longer change any action.
    with torch.no_grad():
        agent.policy.thought_projection.weight.zero_()
    cut = {mode: run_episodes(agent, vocab, LEVEL, seeds,
                              RolloutOptions(thought_ablation=mode, **options))
           for mode in ("none", "zeroed", "shuffled")}
    for mode in ("zeroed", "shuffled"):
        assert [r.actions for r in cut[mode]] == [r.actions for r in cut["none"]]


def test_policy_thought_modes_on_one_step(vocab):
    """`zeroed` equals a lower level fed all-zero thought features; `shuffled` equals each
    row reading the previous row's thought."""
    agent = tiny_agent(vocab, True).eval()
    images = torch.randint(0, 6, (3, 7, 7, 3))
    mission = agent.encode_missions(torch.tensor([[4, 5, 6]] * 3))
    memory = agent.initial_memory(3)
    thoughts = torch.tensor([[1, 7, 8, 2], [1, 9, 2, 0], [1, 10, 11, 2]])
    with torch.no_grad():
        plain = agent(images, mission, memory, thought_target=thoughts)
        zeroed = agent(images, mission, memory, thought_target=thoughts, policy_thought="zeroed")
        shuffled = agent(images, mission, memory, thought_target=thoughts, policy_thought="shuffled")
        rolled = agent(images, mission, memory, thought_target=thoughts.roll(1, dims=0))
        visual = agent.image_encoder(images)
        encoded = agent.encode_thoughts(thoughts)
        from babyai.agent.model import TextEncoding
        blank = TextEncoding(torch.zeros_like(encoded.features), encoded.mask)
        expected_zeroed, _, _ = agent.policy(visual, mission, blank, memory)
    assert torch.allclose(zeroed.action_logits, expected_zeroed, atol=1e-6)
    assert torch.allclose(shuffled.action_logits, rolled.action_logits, atol=1e-6)
    # The upper level and the history are untouched by the ablation.
    assert torch.equal(shuffled.memory.history_h, plain.memory.history_h)
    assert not torch.allclose(zeroed.action_logits, plain.action_logits)


def test_per_row_teacher_forcing_mixes_target_and_generated_thoughts(vocab):
    agent = tiny_agent(vocab, True).eval()
    images = torch.randint(0, 6, (2, 7, 7, 3))
    mission = agent.encode_missions(torch.tensor([[4, 5, 6]] * 2))
    memory = agent.initial_memory(2)
    target = torch.tensor([[1, 7, 8, 2], [1, 9, 2, 0]])
    with torch.no_grad():
        forced = agent(images, mission, memory, thought_target=target, teacher_forcing=True)
        free = agent(images, mission, memory, thought_target=target, teacher_forcing=False)
        mixed = agent(images, mission, memory, thought_target=target,
                      teacher_forcing=torch.tensor([True, False]))
    assert torch.allclose(mixed.action_logits[0], forced.action_logits[0], atol=1e-6)
    assert torch.allclose(mixed.action_logits[1], free.action_logits[1], atol=1e-6)


def test_bench_eval_script_smoke(capsys):

    module = bench_eval
    threads = torch.get_num_threads()
    try:
        result = module.main(["--episodes", "4", "--single-episodes", "2", "--max-steps", "3",
                              "--render-episodes", "1", "--memory-dim", "16", "--instr-dim",
                              "8", "--image-dim", "8", "--max-batch", "4"])
    finally:
        torch.set_num_threads(threads)
    assert result["steps"] == 12 and result["ratio"] > 0
    assert "speed-up of batching" in capsys.readouterr().out


def test_thought_agreement_counts_exact_matches_per_family():
    from babyai.agent.records import thought_agreement

    first = EpisodeRecord(seed=0, mission="m", env_name=LEVEL,
                          thoughts=["open red door", "open red door", "explore unseen area"],
                          bot_thoughts=["open red door", "open blue door", "explore unseen area"])
    second = EpisodeRecord(seed=1, mission="m", env_name=LEVEL,
                           thoughts=["explore unseen area", "open red door"],
                           bot_thoughts=["explore unseen area"])  # the bot gave up after step 0
    agreement = thought_agreement([first, second])
    assert (agreement.matched, agreement.intended, agreement.steps) == (3, 4, 4)
    assert agreement.by_family == {"open": (1, 2, 2), "explore": (2, 2, 2)}
    assert agreement.as_dict()["by_family"]["open"] == {
        "exact_match": 0.5, "intention_match": 1.0, "steps": 2}
    wrong_kind = EpisodeRecord(seed=2, mission="m", env_name=LEVEL,
                               thoughts=["explore unseen area"], bot_thoughts=["open red door"])
    assert thought_agreement([wrong_kind]).as_dict()["intention_match"] == 0.0


def test_thought_following_counts_pickups_of_the_named_object():
    from babyai.agent.records import ObjectRef, StepEvent, thought_following

    key, ball = ObjectRef("key", "purple"), ObjectRef("ball", "red")

    def pickup(obj):
        return StepEvent(3, obj, None, obj)

    record = EpisodeRecord(
        seed=0, mission="m", env_name=LEVEL,
        thoughts=["pickup purple key to complete pickup mission",   # named, taken
                  "pickup purple key to complete pickup mission",   # named, another taken
                  "pickup key to unlock the door",                  # any key will do
                  "remove blocking object red ball",                # named, taken
                  "go to red ball to complete goto mission",        # not a pick-up thought
                  "pickup purple key to complete pickup mission"],  # no pickup happened
        events=[pickup(key), pickup(ball), pickup(key), pickup(ball), pickup(ball),
                StepEvent(2, None, None, None)])
    following = thought_following([record])
    assert (following.named, following.other, following.unprompted) == (3, 1, 1)
    assert following.value == 0.75
    assert thought_following([]).as_dict()["named_object_rate"] is None


def test_partial_oracle_hands_over_whole_subgoals(vocab):
    """`oracle_share` draws once per subgoal of the bot: each run of one bot thought is read
    whole or not at all; 0 plays exactly like own thoughts, 1 reads every answered step."""
    agent = tiny_agent(vocab, True)
    seeds = list(range(10))
    options = dict(argmax=True, max_steps=STEPS)
    own = run_episodes(agent, vocab, LEVEL, seeds, RolloutOptions(**options))
    runs = {share: run_episodes(agent, vocab, LEVEL, seeds,
                                RolloutOptions(thought_ablation="oracle", oracle_share=share,
                                               **options))
            for share in (0.0, 0.5, 1.0)}
    for plain, none in zip(own, runs[0.0]):
        assert (none.actions, none.thoughts, none.oracle_steps) == (plain.actions, plain.thoughts, 0)
    for full in runs[1.0]:
        assert full.oracle_steps == len(full.bot_thoughts)
    kinds = set()
    for record in runs[0.5]:
        read = [mine == bot for mine, bot in zip(record.thoughts, record.bot_thoughts)]
        assert sum(read) == record.oracle_steps  # an untrained agent never thinks the bot's
        start = 0
        for end in range(1, len(read) + 1):
            if end == len(read) or record.bot_thoughts[end] != record.bot_thoughts[start]:
                assert len(set(read[start:end])) == 1, "a subgoal was split"
                kinds.add(read[start])
                start = end
    assert kinds == {True, False}  # both handed and kept subgoals occur


@pytest.mark.parametrize("options, message", [
    (dict(thought_ablation="oracle", oracle_share=1.5), "oracle_share must be in"),
    (dict(oracle_share=0.5), "need thought_ablation='oracle'")])
def test_partial_oracle_options_are_checked(options, message):
    with pytest.raises(UserError, match=message):
        RolloutOptions(**options)


def test_evaluate_command_oracle_shares(vocab, tmp_path):
    """tc-evaluate: one oracle condition per share, each with the share of its steps that
    read the bot's thought; a share without the oracle condition is a one-line error."""
    from babyai.agent.checkpoint import save_checkpoint
    from babyai.commands import evaluate

    path = tmp_path / "tc.pt"
    save_checkpoint(path, tiny_agent(vocab, True), vocab)
    common = ["--env", LEVEL, "--model", str(path), "--episodes", "4", "--argmax",
              "--no-thought-agreement"]
    summary = evaluate.main(common + ["--thought-ablation", "none,oracle",
                                      "--oracle-share", "0,0.5,1"])
    model = str(path)
    assert list(summary) == [model, f"{model} (oracle thoughts, 0% of subgoals)",
                             f"{model} (oracle thoughts, 50% of subgoals)",
                             f"{model} (oracle thoughts)"]
    shares = [entry.get("oracle_step_share") for entry in summary.values()]
    assert shares[0] is None and shares[1] == 0.0 and 0 < shares[3] <= 1
    assert [entry["oracle_share"] for entry in list(summary.values())[1:]] == [0.0, 0.5, 1.0]
    assert summary[model]["mean_length"] == summary[f"{model} (oracle thoughts, 0% of subgoals)"]["mean_length"]
    with pytest.raises(UserError, match="add oracle"):
        evaluate.main(common + ["--oracle-share", "0.5"])


def test_oracle_families_hand_over_only_their_thoughts(vocab):
    """With `oracle_families`, exactly the steps whose bot thought is of those families read
    it; the others keep the agent's own thought."""
    from babyai.env.thoughts import thought_family

    agent = tiny_agent(vocab, True)
    played = run_episodes(agent, vocab, LEVEL, list(range(10)),
                          RolloutOptions(argmax=True, max_steps=STEPS, thought_ablation="oracle",
                                         oracle_families=("goto",)))
    families = set()
    for record in played:
        for mine, bot in zip(record.thoughts, record.bot_thoughts):
            families.add(thought_family(bot))
            assert (mine == bot) == (thought_family(bot) == "goto")
        assert record.oracle_steps == sum(thought_family(bot) == "goto"
                                          for bot in record.bot_thoughts)
    assert families == {"goto", "explore"}  # both kinds of step occur
    with pytest.raises(UserError, match="unknown thought families"):
        RolloutOptions(thought_ablation="oracle", oracle_families=("teleport",))
    with pytest.raises(UserError, match="oracle_families need"):
        RolloutOptions(oracle_families=("goto",))
