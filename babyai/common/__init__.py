"""Shared ground floor: user errors, the storage layout and every path built in it, seeding,
device and thread settings, the table of seed ranges, and the command-line plumbing
(flags generated from config dataclasses, the runner that turns a user error into one line),
the plain-data reader of original-layout pickles and the one-writer locks.

May import: the standard library, numpy, torch, blosc and filelock only; nothing else of
`babyai`.
"""
