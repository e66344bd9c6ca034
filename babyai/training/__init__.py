"""Imitation training: the loss, the schedules, the training configuration and the Trainer
loop with its logger, distributed helpers, checkpoint state and early stopping, and the
bot's labels of an agent's own states (DAgger) to train on.

May import: everything above it (`common`, `env`, `demos`, `data`, `agent`).
"""
