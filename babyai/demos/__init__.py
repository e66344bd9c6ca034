"""Demonstrations: the episode record and the original tuple layout, demonstration files
(reading and writing), and their generation with the noisy thinking bot.

May import: `babyai.common`, `babyai.env`.
"""
