"""Reinforcement-learning fine-tuning (PPO) of trained TC and BC agents: the paper's Fig. 4b.

`ppo` holds the algorithm (GAE, the clipped loss, the recurrent update over BPTT windows),
`envs` the environment workers, `collect` the batched rollout that fills an experience
buffer, `config` the run's settings, `trainer` the loop with its run directory, checkpoints
and evaluation, `finetune` the Fig. 4b experiment (bins both agents fail, runs, curves).

May import: `common`, `env`, `demos`, `data`, `agent`, `evaluation`.
"""
