"""The Client's server-side indexing: IndexPaths and the index-job calls."""

from __future__ import annotations

import os
from typing import Iterator, Sequence

from mien.clients import from_proto
from mien.results.index_jobs import IndexJob, IndexProgress
from mien.filenames import escape
from mien.v1 import search_pb2


class IndexJobCalls:
    """Mixed into Client, which provides _call, _stub and _metadata."""

    def index_paths(self, paths: Sequence[str | os.PathLike], *, fps: float = 0.0,
                    timeout: float | None = None) -> Iterator[IndexProgress]:
        """Index paths on the server's disk (under its allowed roots); yields progress.
        timeout: for this stream (default none). The run is a job (IndexProgress.job_id): it
        goes on if the stream ends early; watch_index_job re-attaches, cancel_index_job stops it."""
        req = search_pb2.IndexPathsRequest(paths=[escape(str(p)) for p in paths], fps=fps)
        for m in self._stub.IndexPaths(req, timeout=timeout, metadata=self._metadata):
            yield from_proto.progress(m)

    def start_index_job(self, paths: Sequence[str | os.PathLike], *, fps: float = 0.0,
                        timeout: float | None = None) -> IndexJob:
        """Start indexing paths on the server's disk and return the running job at once."""
        req = search_pb2.StartIndexJobRequest(paths=[escape(str(p)) for p in paths], fps=fps)
        return from_proto.job(self._call("StartIndexJob", req, timeout))

    def index_job(self, job_id: str, *, timeout: float | None = None) -> IndexJob:
        return from_proto.job(self._call("GetIndexJob", search_pb2.GetIndexJobRequest(job_id=job_id), timeout))

    def watch_index_job(self, job_id: str, *, timeout: float | None = None) -> Iterator[IndexJob]:
        """The job now and after every change until it ends (the job outlives this stream)."""
        req = search_pb2.WatchIndexJobRequest(job_id=job_id)
        for m in self._stub.WatchIndexJob(req, timeout=timeout, metadata=self._metadata):
            yield from_proto.job(m)

    def cancel_index_job(self, job_id: str, *, timeout: float | None = None) -> IndexJob:
        """Stop a job after the source in hand (each source is committed whole)."""
        return from_proto.job(self._call("CancelIndexJob", search_pb2.CancelIndexJobRequest(job_id=job_id),
                                      timeout))
