"""Pictures: training curves and GIFs of what an agent (or the bot) thinks.

May import: `common`, `env`, `demos`, `data`, `agent`, `evaluation`.
"""
