"""Server-side indexing as jobs a client can leave and come back to (in the spirit of AIP-151).

A job runs in its own thread (ServerContext.start_indexer, so the shutdown
waits for it); its progress is kept here, not in a call, so a client whose
stream ended (its deadline, a dropped connection) re-attaches with
WatchIndexJob or polls GetIndexJob, and CancelIndexJob stops it at the next
source boundary (each source is committed whole). Finished jobs are kept for a
while (KEEP_FINISHED of them) so their outcome can still be read.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from dataclasses import dataclass, field

from mien.errors import NotFoundError

RUNNING, SUCCEEDED, FAILED, CANCELLED = "running", "succeeded", "failed", "cancelled"
KEEP_FINISHED = 100


@dataclass
class IndexJob:
    job_id: str
    paths: list[str]
    state: str = RUNNING
    progress: dict = field(default_factory=dict)   # the indexer's last progress event
    summary: object = None                          # the IndexSummary when it ended
    error_code: str = ""                            # a grpc.StatusCode name when FAILED
    error: str = ""                                 # the public message when FAILED
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    ended_ms: int = 0
    version: int = 0                                # bumped on every change (watchers wait on it)
    cancel: threading.Event = field(default_factory=threading.Event)
    exception: BaseException | None = None           # what ended a FAILED job (re-raised to IndexPaths)

    @property
    def done(self) -> bool:
        return self.state != RUNNING


class JobTable:
    """The server's index jobs; thread-safe."""

    def __init__(self):
        self._jobs: dict[str, IndexJob] = {}
        self._finished: collections.deque = collections.deque()
        self._changed = threading.Condition()

    def create(self, paths) -> IndexJob:
        job = IndexJob(job_id=secrets.token_hex(8), paths=list(paths))
        with self._changed:
            self._jobs[job.job_id] = job
        return job

    def get(self, job_id: str) -> IndexJob:
        with self._changed:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no index job {job_id!r} (finished jobs are kept for the last "
                                f"{KEEP_FINISHED} runs of this server process)", reason="JOB_NOT_FOUND",
                                resource=("mien.v1.IndexJob", job_id))
        return job

    def update(self, job: IndexJob, **changes) -> None:
        with self._changed:
            for key, value in changes.items():
                setattr(job, key, value)
            if job.done and not job.ended_ms:
                job.ended_ms = int(time.time() * 1000)
                self._finished.append(job.job_id)
                while len(self._finished) > KEEP_FINISHED:
                    self._jobs.pop(self._finished.popleft(), None)
            job.version += 1
            self._changed.notify_all()

    def cancel(self, job_id: str) -> IndexJob:
        job = self.get(job_id)
        job.cancel.set()  # the run stops after the source in hand is committed
        with self._changed:
            job.version += 1
            self._changed.notify_all()
        return job

    def watch(self, job_id: str, keep_going, poll: float = 0.5):
        """The job now, then after every change until it ends; stops when keep_going() is
        False (the caller went away or its deadline passed: the job itself runs on)."""
        job = self.get(job_id)
        seen = -1
        while True:
            with self._changed:
                if job.version == seen:
                    self._changed.wait(poll)
                if job.version == seen:
                    if not keep_going():
                        return
                    continue
                seen, done = job.version, job.done
            yield job
            # done as of the version yielded: a job that ended since is yielded once more, so the
            # last message says how it ended (reading job.done here lost that message when the
            # job ended while the caller was sending the one before)
            if done or not keep_going():
                return

    def running(self) -> list[IndexJob]:
        with self._changed:
            return [j for j in self._jobs.values() if not j.done]
