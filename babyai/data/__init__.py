"""Demonstrations as training data: the frozen vocabulary of missions and thoughts, and the
tokenized, compressed dataset cut into batches and BPTT windows.

May import: `babyai.common`, `babyai.env`, `babyai.demos`.
"""
