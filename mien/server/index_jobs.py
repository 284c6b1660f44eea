"""Mien's server-side indexing RPCs on top of index jobs (mien.server.jobs): IndexPaths,
StartIndexJob, GetIndexJob, WatchIndexJob, CancelIndexJob. Mixed into MienServicer.

IndexPaths starts a job and streams its progress while the caller listens; the
job does not depend on the call, so a deadline or a dropped connection ends
the stream, not the indexing (re-attach with WatchIndexJob, stop with
CancelIndexJob).
"""

from __future__ import annotations

import os
import threading

from mien.errors import BadInputError, MienError, ServerStoppingError
from mien.filenames import escape, find
from mien.server.rpc_errors import rpc, status_for
from mien.server.jobs import CANCELLED, FAILED, RUNNING, SUCCEEDED, JobTable
from mien.server.validate import clip
from mien.v1 import search_pb2

_STATES = {RUNNING: search_pb2.INDEX_JOB_STATE_RUNNING, SUCCEEDED: search_pb2.INDEX_JOB_STATE_SUCCEEDED,
           FAILED: search_pb2.INDEX_JOB_STATE_FAILED, CANCELLED: search_pb2.INDEX_JOB_STATE_CANCELLED}


class JobCancelledError(MienError):
    """The index job was cancelled (CancelIndexJob) before it finished."""


def progress_message(event: dict, job=None) -> search_pb2.IndexProgress:
    return search_pb2.IndexProgress(
        files_done=int(event.get("files_done", 0)), files_total=int(event.get("files_total", 0)),
        frames=int(event.get("frames", 0)), faces=int(event.get("faces", 0)),
        current=escape(str(event.get("current", ""))), job_id=job.job_id if job is not None else "",
        refused_paths=[escape(r) for r in getattr(job, "refused", ())])


def _final_progress(job) -> search_pb2.IndexProgress:
    final = progress_message(job.progress, job)
    summary = job.summary
    if summary is not None:
        final.files_total = summary.files
        final.frames = summary.frames
        final.faces = max(final.faces, summary.faces_passed)
        final.failures.extend(escape(f"{path}: {reason}") for path, reason in summary.failures)
        for reason, count in summary.skipped.items():
            final.skipped[reason] = int(count)
    if job.state == SUCCEEDED:
        final.files_done = max(final.files_done, final.files_total)
    final.done = True
    return final


def job_message(job) -> search_pb2.IndexJob:
    return search_pb2.IndexJob(
        job_id=job.job_id, state=_STATES[job.state], paths=job.paths,
        progress=_final_progress(job) if job.done else progress_message(job.progress, job),
        error_code=job.error_code, error=job.error, create_time_ms=job.created_ms, end_time_ms=job.ended_ms,
        cancel_requested=job.cancel.is_set())


class IndexJobs:
    """The indexing RPCs; needs self.ctx (a ServerContext)."""

    _jobs_lock = threading.Lock()

    @property
    def jobs(self) -> JobTable:
        with self._jobs_lock:
            if getattr(self, "_job_table", None) is None:
                self._job_table = JobTable()
            return self._job_table

    def _start(self, given_paths, fps: float):
        """Check the request and start the job on the paths that may be indexed.

        A path that is relative, outside the allowed roots or missing is
        refused on its own ("path: reason" in every progress message) and the
        others run; when none may, the call fails with the first refusal.
        """
        ctx = self.ctx
        if not given_paths:
            raise BadInputError("indexing needs at least one path", field="paths")
        paths, refused, first_error = [], [], None
        for given in given_paths:
            try:
                paths.append(str(self._indexable(given)))
            except (BadInputError, PermissionError) as exc:
                refused.append(f"{clip(given)}: {_refusal(exc)}")
                first_error = first_error or exc
        if not paths:
            raise first_error
        from mien.indexer import IndexOptions, index_paths
        from mien.indexer.pipeline import engine_config_for

        # the store's recorded engine, with the server's pointers to moved model files
        engine_config = engine_config_for(ctx.store_dir, ctx.engine_config) if ctx.engine_config else None

        with ctx.open_writer():  # fail fast (UNAVAILABLE) before starting indexer workers
            pass
        options = IndexOptions(show_progress=False)  # no tqdm bar in a server
        if fps > 0:
            options.fps = fps
        table = self.jobs
        job = table.create(list(given_paths))
        job.refused = refused

        def work():
            try:
                summary = index_paths(
                    paths, ctx.store_dir, options=options, engine_config=engine_config,
                    progress=lambda event: table.update(job, progress=dict(event)),
                    allowed_roots=ctx.allowed_roots, pool=ctx.index_pool,
                    # a draining server or CancelIndexJob ends the run at the next source boundary
                    should_stop=lambda: ctx.draining or job.cancel.is_set())
                state = CANCELLED if summary.stopped else SUCCEEDED
                table.update(job, summary=summary, state=state)
            except Exception as exc:  # noqa: BLE001 - the job records it; the log has the rest
                from mien.server.rpc_errors import public_message

                code = status_for(exc)
                job.exception = exc
                table.update(job, state=FAILED, error_code=(code.name if code else "INTERNAL"),
                             error=public_message(exc, ctx.private_strings()) if code else
                             "internal error; the server's log has the details")
                if code is None:
                    import logging

                    logging.getLogger("mien.server").exception("index job %s failed", job.job_id)

        # the shutdown waits for it (ctx.wait_indexers)
        ctx.start_indexer(work)
        return job

    def _indexable(self, given: str):
        """The real path of a path IndexPaths may index; BadInputError or PermissionError says why not."""
        if not os.path.isabs(given):
            raise BadInputError(f"{clip(given)} is a relative path: give an absolute path on the server "
                                "(relative paths are not resolved against the server's working folder)",
                                field="paths", reason="PATH_NOT_ABSOLUTE")
        # a name that is not UTF-8 comes escaped (mien/filenames.py): the name as written if it
        # exists, else the one its escapes stand for
        real = self.ctx.check_allowed(find(given, os.path.lexists) or given)
        if not os.path.exists(real):
            raise BadInputError(f"{clip(given)} does not exist on the server", field="paths",
                                reason="PATH_NOT_FOUND")
        return real

    # -- RPCs ---------------------------------------------------------------------------
    @rpc
    def IndexPaths(self, request, context):
        job = self._start(list(request.paths), request.fps)
        yield progress_message({}, job)  # at once: the caller holds the job id before any work
        last = None
        for state in self.jobs.watch(job.job_id, context.is_active):
            if state.done:
                break
            if state.progress and state.progress != last:
                last = dict(state.progress)
                yield progress_message(last, job)
        if not job.done:  # the caller went away: the job runs on
            return
        if job.state == FAILED:
            raise getattr(job, "exception", None) or MienError(job.error)
        if job.state == CANCELLED:
            done = job.progress.get("files_done", 0)
            total = job.progress.get("files_total", 0)
            if job.cancel.is_set():
                raise JobCancelledError(f"index job {job.job_id} was cancelled after {done} of {total} files "
                                        "(each one committed whole)", reason="JOB_CANCELLED")
            raise ServerStoppingError(
                f"the server is shutting down: indexing stopped after {done} of {total} files (each one "
                "committed whole); run IndexPaths again to index the rest")
        yield _final_progress(job)

    @rpc
    def StartIndexJob(self, request, context):
        return job_message(self._start(list(request.paths), request.fps))

    @rpc
    def GetIndexJob(self, request, context):
        return job_message(self.jobs.get(request.job_id))

    @rpc
    def WatchIndexJob(self, request, context):
        for state in self.jobs.watch(request.job_id, context.is_active):
            yield job_message(state)

    @rpc
    def CancelIndexJob(self, request, context):
        return job_message(self.jobs.cancel(request.job_id))

    @rpc
    def ListFolders(self, request, context):
        from mien.server.folders import list_folders

        return list_folders(self.ctx, request.path)


def _refusal(exc: Exception) -> str:
    """Why a path was refused, in a few words (the path itself is said before it)."""
    reason = getattr(exc, "reason", "")
    if reason == "PATH_NOT_ABSOLUTE":
        return "not an absolute path (relative paths are not resolved against the server's working folder)"
    if reason == "PATH_NOT_FOUND":
        return "not found on the server"
    if isinstance(exc, PermissionError):
        return "outside the server's allowed roots"
    return str(exc)
