"""The one writer of evaluation outputs: CSV tables and JSON-lines episode files, atomically."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from babyai.common.storage import atomic_write_text


def write_csv(path: Path, rows: Sequence[dict[str, Any]],
              fields: Sequence[str] | None = None) -> Path:
    """A CSV table with a header (default: the first row's keys); None is written empty."""
    fields = list(fields if fields is not None else rows[0])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(path), buffer.getvalue())
    return Path(path)


def write_jsonl(path: Path, items: Iterable[dict[str, Any]]) -> Path:
    """One JSON object per line."""
    atomic_write_text(Path(path), "".join(json.dumps(item) + "\n" for item in items))
    return Path(path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file (blank lines skipped)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
