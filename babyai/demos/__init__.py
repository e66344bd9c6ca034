"""Demonstrations: the episode record and the original tuple layout, the checks every episode
passes at load, demonstration files (our pickle-free format; the original layout read
safely), their generation with the noisy thinking bot, and Minari export/import.

May import: `babyai.common`, `babyai.env`.
"""
