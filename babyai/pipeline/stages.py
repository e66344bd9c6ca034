"""Content-addressed stages: a long job as a chain of commands that can be killed and rerun.

A stage is one of our commands (a module of :mod:`babyai.commands`, run as
`python -m <module>` with the running interpreter, so it works from any directory and
from a non-editable install) with its arguments. It is *fresh* when the record of its last
successful run has the same key — a hash of the command and of the content of every input
file — and all its outputs still have the content they had then. A fresh stage is skipped;
a stale one runs again (our commands resume their own partial work, so a stage killed
half-way loses nothing). Keys depend on content, not names: regenerating identical demos
does not retrain, while a changed file does.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from babyai.common.errors import UserError
from babyai.common.storage import atomic_write_text

log = logging.getLogger(__name__)

@dataclass
class Stage:
    """One step of a pipeline: a command of ours, its arguments, and the files it reads and writes."""

    name: str
    module: str
    """The command's module, e.g. `babyai.commands.make_agent_demos`."""
    args: list[str]
    inputs: list[Path] = field(default_factory=list)
    """Files (or directories) whose content the stage depends on."""
    outputs: list[Path] = field(default_factory=list)
    """Files the stage must leave behind; their content is recorded."""
    workdir: Path | None = None
    """Where the stage keeps its resumable partial work (e.g. a run directory). Kept when a
    killed stage is rerun with the same key; removed when its inputs or arguments changed,
    so that a resumed job never mixes old and new inputs."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module, *self.args]

    def shell_command(self) -> str:
        """How a user reruns this stage by hand."""
        return " ".join(["python", "-m", self.module, *map(shlex.quote, self.args)])


def file_digest(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (sorted by name); '' if missing."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            digest.update(child.relative_to(path).as_posix().encode())
            digest.update(file_digest(child).encode())
        return digest.hexdigest()
    if not path.is_file():
        return ""
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class StageRunner:
    """Runs stages in order, skipping fresh ones; the record lives in one JSON file."""

    def __init__(self, record_path: Path, force: bool = False) -> None:
        self.record_path = Path(record_path)
        self.force = force
        self.records: dict[str, dict] = {}
        if self.record_path.is_file():
            try:
                self.records = json.loads(self.record_path.read_text())
            except json.JSONDecodeError as error:
                raise UserError(f"{self.record_path} is corrupt ({error}); delete it or use --force") from error
        self.timings: dict[str, float] = {}

    def key(self, stage: Stage) -> str:
        digest = hashlib.sha256(json.dumps([stage.module, stage.args]).encode())
        for path in stage.inputs:
            content = file_digest(path)
            if not content:
                raise UserError(f"stage {stage.name}: input {path} is missing")
            digest.update(content.encode())
        return digest.hexdigest()

    def is_fresh(self, stage: Stage) -> bool:
        record = self.records.get(stage.name)
        if self.force or record is None or record.get("key") != self.key(stage):
            return False
        return all(file_digest(Path(path)) == digest for path, digest in record["outputs"].items())

    def run(self, stage: Stage, env: dict[str, str] | None = None) -> bool:
        """Run `stage` unless fresh; returns True if it ran."""
        if self.is_fresh(stage):
            log.info("[%s] up to date, skipped", stage.name)
            self.timings.setdefault(stage.name, self.records[stage.name].get("seconds", 0.0))
            return False
        key = self.key(stage)
        record = self.records.setdefault(stage.name, {})
        if stage.workdir is not None and Path(stage.workdir).exists() and (
                self.force or record.get("started_key") != key):
            log.info("[%s] inputs changed: starting afresh in %s", stage.name, stage.workdir)
            shutil.rmtree(stage.workdir)
        record["started_key"] = key
        self.save()
        log.info("[%s] %s", stage.name, stage.shell_command())
        started = time.perf_counter()
        result = subprocess.run(stage.command(), env={**os.environ, **(env or {})})
        if result.returncode != 0:
            raise UserError(f"stage {stage.name} failed (exit code {result.returncode}); "
                            f"fix the cause and rerun: finished stages are kept")
        missing = [str(path) for path in stage.outputs if not Path(path).exists()]
        if missing:
            raise UserError(f"stage {stage.name} did not write {', '.join(missing)}")
        seconds = round(time.perf_counter() - started, 1)
        self.timings[stage.name] = seconds  # as recorded, so a rerun reports the same figure
        self.records[stage.name] = {
            "key": key, "started_key": key, "seconds": seconds,
            "command": stage.shell_command(),
            "outputs": {str(path): file_digest(Path(path)) for path in stage.outputs},
        }
        self.save()
        return True

    def save(self) -> None:
        atomic_write_text(self.record_path, json.dumps(self.records, indent=2) + "\n")

