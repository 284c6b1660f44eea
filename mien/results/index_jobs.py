"""What the indexing calls (IndexPaths, StartIndexJob, GetIndexJob, ...) return."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class IndexProgress:
    files_done: int
    files_total: int
    frames: int
    faces: int
    current: str
    done: bool
    failures: list[str]
    job_id: str = ""


@dataclass
class IndexJob:
    """A server-side indexing run (StartIndexJob, IndexPaths); state running | succeeded |
    failed | cancelled."""

    job_id: str
    state: str
    paths: list[str]
    progress: IndexProgress
    error_code: str
    error: str
    create_time_ms: int
    end_time_ms: int
    cancel_requested: bool

    @property
    def done(self) -> bool:
        return self.state != "running"
