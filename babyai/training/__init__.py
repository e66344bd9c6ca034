"""Imitation training: the loss, the schedules, the training configuration and the Trainer
loop with its logger, distributed helpers, checkpoint state and early stopping.

May import: everything above it (`common`, `env`, `demos`, `data`, `agent`).
"""
