"""index_paths: crawl -> sniff -> fingerprint -> analyse -> track -> cluster -> commit.

One process writes the store (this one); analysis runs in worker processes
(one per core by default), which also read the files themselves: images
whole, videos in time ranges (video_jobs.py), while this process tracks,
links persons and commits. Every source is committed in one store
transaction together with the persons it creates (see `commit.py`), so a
kill -9 at any moment loses at most the source in flight.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from mien.indexer import worker
from mien.indexer.beneath import OutsideRootsError, open_file
from mien.indexer.commit import Group, commit_source, repair_persons
from mien.indexer.crawl import OUTSIDE_ROOTS, VANISHED, crawl, under_roots
from mien.indexer.fingerprint import fingerprint_fd
from mien.indexer.persons import PersonBook, link_rules, normalise
from mien.indexer.records import count_faces, face_record
from mien.indexer.runner import InlineRunner, make_runner
from mien.indexer.sniff import IMAGE, VIDEO, has_media_extension, sniff_fd
from mien.indexer.summary import IndexOptions, IndexSummary

log = logging.getLogger(__name__)


@dataclass
class Job:
    path: str
    kind: str
    fingerprint: str


def _classify(found, store, summary: IndexSummary, roots=None) -> Job | None:
    """A Job for a file that needs analysing, else None (counted in the summary). store None:
    a store that does not exist yet (nothing in it is unchanged).

    roots: the allowed roots (real paths) of a server-side run; the file is
    opened beneath its root (beneath.py), so a link put in its path since the
    crawl is refused, not followed.
    """
    if roots is not None and not found.skip and not found.fail and not under_roots(found.path, roots):
        summary.skipped[OUTSIDE_ROOTS] += 1
        return None
    if found.skip:
        summary.skipped[found.skip] += 1
        return None
    if found.fail:
        summary.fail(found.path, found.fail)
        return None
    path = found.path
    try:
        kind, fp = _sniff_and_fingerprint(found, roots)
    except OutsideRootsError:  # a link appeared in its real path since the crawl
        summary.skipped[OUTSIDE_ROOTS] += 1
        return None
    except PermissionError:
        summary.fail(path, "permission denied")
        return None
    except FileNotFoundError:
        summary.fail(path, "vanished during crawl")
        return None
    except OSError as exc:
        summary.fail(path, "unreadable", exc.strerror or str(exc))
        return None
    if kind is None:
        media_name = has_media_extension(path)
        if found.size == 0:
            if media_name:
                summary.fail(path, "empty file")
            else:
                summary.skipped["empty file"] += 1
        elif media_name:
            summary.fail(path, "not media (content does not match its extension)")
        else:
            summary.skipped["not media"] += 1
        return None
    previous = store.get_source(path) if store is not None else None
    if previous is not None and previous.fingerprint == fp:
        if previous.status == "failed":
            # the stored error is "reason: detail"; keep the detail, say why it was not retried
            reason, _, detail = previous.error.partition(": ")
            note = f"{detail} (unchanged since last run)" if detail else "unchanged since last run"
            summary.fail(path, reason or "failed", note)
        else:
            summary.unchanged += 1
        return None
    return Job(path, kind, fp)


def _classify_all(found, store, summary: IndexSummary, roots=None) -> list[Job]:
    """The Jobs of the found files that need analysing (_classify, file by file)."""
    return [job for job in (_classify(f, store, summary, roots) for f in found) if job is not None]


def _sniff_and_fingerprint(found, roots) -> tuple[str | None, str]:
    """(kind, fingerprint) of a found file, read from one descriptor opened beneath its root."""
    if not found.size:
        return None, ""
    fd = open_file(found.path, roots)
    try:
        kind = sniff_fd(fd)
        return kind, fingerprint_fd(fd, found.size, found.mtime_ns) if kind else ""
    finally:
        os.close(fd)


def _prune(store, roots: list[str], summary: IndexSummary) -> None:
    """Remove sources under the crawled roots whose files no longer exist.

    Only vanished paths are pruned: a file that merely became unreadable or
    was skipped keeps its faces.
    """
    prefixes = []
    for root in roots:
        real = os.path.realpath(root)
        prefixes.append(real if not os.path.isdir(real) else real.rstrip(os.sep) + os.sep)
    for source in store.list_sources():
        uri = source.uri
        if any(uri == p or uri.startswith(p) for p in prefixes) and not os.path.lexists(uri):
            store.remove_source(uri)
            summary.pruned += 1


class Indexer:
    def __init__(self, store, runner, book: PersonBook, options: IndexOptions, summary: IndexSummary,
                 progress, bar, should_stop=None, roots=None):
        self.store, self.runner, self.book = store, runner, book
        self.roots = roots   # allowed roots: workers open files beneath them (None: the CLI's own files)
        self.should_stop = should_stop or (lambda: False)
        self.options, self.summary = options, summary
        self.progress, self.bar = progress, bar
        self.files_done = 0
        self.files_total = 0
        from mien.engine.store import FaceRecord, SourceRecord

        self.FaceRecord, self.SourceRecord = FaceRecord, SourceRecord

    # ------------------------------------------------------------ progress
    def _tick(self, current: str, done: bool = False) -> None:
        if done:
            self.files_done += 1
        if self.bar is not None:
            if done:
                self.bar.update(1)
            self.bar.set_postfix(frames=self.summary.frames, faces=self.summary.faces_passed, refresh=False)
        if self.progress is not None:
            self.progress({"files_done": self.files_done, "files_total": self.files_total,
                           "frames": self.summary.frames, "faces": self.summary.faces_passed,
                           "current": current})

    def _failed(self, job: Job, reason: str, detail: str = "") -> None:
        if reason == OUTSIDE_ROOTS:
            # a link put in its path during the run: counted as the crawl counts one, never stored
            # (the file itself may be fine on the next run) and never named beyond its path
            self.summary.skipped[OUTSIDE_ROOTS] += 1
            self._tick(job.path, done=True)
            return
        self.summary.fail(job.path, reason, detail)
        if reason == VANISHED:  # gone: nothing to record; what the store held of it stays (--prune drops it)
            self._tick(job.path, done=True)
            return
        source = self.SourceRecord(uri=job.path, fingerprint=job.fingerprint, kind=job.kind,
                                   status="failed", error=f"{reason}: {detail}" if detail else reason)
        commit_source(self.store, self.book, source, [], [])
        self._tick(job.path, done=True)

    # ------------------------------------------------------------ analysis
    def run_jobs(self, jobs: list[Job]) -> None:
        """Analyse images and videos in one window of jobs on the workers; commit each file
        in the order given (video_jobs.JobQueue)."""
        from mien.indexer.video_jobs import JobQueue

        JobQueue(self).run(jobs)

    # ------------------------------------------------------------ images
    def _commit_image(self, job: Job, result) -> None:
        if result.error:
            self._failed(job, result.reason or ("too large" if result.too_large else "corrupt or unreadable image"),
                         result.error)
            return
        self.summary.frames += 1
        passed = count_faces(result.faces, self.summary)
        records, groups = [], []
        for i, face in enumerate(passed):
            records.append(face_record(self.FaceRecord, job.path, face, 0, 0, i, face.identity))
            if face.identity is not None:  # faces of one image are different people: frame 0 for all
                groups.append(Group(normalise(face.identity)[None, :], [i], {0}))
        self.summary.tracks += len(passed)
        source = self.SourceRecord(uri=job.path, fingerprint=job.fingerprint, kind=IMAGE, status="done",
                                   face_count=len(records), frames=1)
        self.summary.persons_new += commit_source(self.store, self.book, source, records, groups)
        self.summary.indexed += 1
        self.summary.images += 1
        self._tick(job.path, done=True)


def engine_config_for(store_dir, config=None):
    """`config` (default EngineConfig()) detecting at the scale of the store's faces.

    Landmark-derived vectors shift with the detection scale, so every run into
    one store detects with the min_face the store was built with.
    """
    from mien.engine.faces import EngineConfig
    from mien.engine.faces.engine_record import matching_store
    from mien.engine.store import Store

    config = config or EngineConfig()
    if not os.path.exists(os.path.join(os.fspath(store_dir), "data.mdb")):
        return config
    with Store(os.fspath(store_dir), mode="r") as store:
        return matching_store(config, store.encoders)


def index_paths(paths, store_dir, options: IndexOptions | None = None, engine_config=None,
                progress=None, *, allowed_roots=None, should_stop=None, pool=None) -> IndexSummary:
    """Index files and folders into the store at `store_dir`; see IndexOptions.

    allowed_roots: read nothing outside these folders, links included (the
    server's --allow-root; see crawl). should_stop: polled between sources;
    when it returns True the run ends after the source in hand is committed,
    with summary.stopped set. pool: a warm_pool.WarmPool whose kept worker
    processes the run borrows (a server's jobs, one after another).
    """
    from mien.engine.faces.engine_record import RECORD_KEY, encoded, refuse_conflicts
    from mien.engine.store import Store

    options = options or IndexOptions()
    engine_config = engine_config or engine_config_for(store_dir)
    started = time.perf_counter()
    summary = IndexSummary()
    paths = [os.fspath(p) for p in paths]
    roots = None if allowed_roots is None else [os.path.realpath(os.fspath(r)) for r in allowed_roots]
    found = crawl(paths, roots)
    summary.files = len(found)

    # Classify against the existing store first: an unchanged re-run then never
    # starts the analysis processes (loading models costs seconds per process).
    jobs: list[Job] = []
    store_exists = os.path.exists(os.path.join(os.fspath(store_dir), "data.mdb"))
    if store_exists:
        with Store(os.fspath(store_dir), mode="w") as store:
            # refused before any work, new or not: the store keeps the engine it was built with
            refuse_conflicts(store_dir, store.encoders, engine_config)
            repair_persons(store)  # after a kill -9 of a run on a store without atomic persons
            jobs = _classify_all(found, store, summary, roots)
            if options.prune:
                _prune(store, paths, summary)
            if not jobs:
                summary.persons_total = len(store.list_persons())
                summary.seconds = time.perf_counter() - started
                return summary
    else:
        # a new store: every file is new. Sniffed and fingerprinted now, while the fork server
        # (pool_start) still imports what the workers need, not after their start
        jobs = _classify_all(found, None, summary, roots)

    runner = make_runner(engine_config, options.workers, options, pool=pool)
    try:
        try:
            # one job per worker: every process starts loading its models now, not at its
            # first range (a pool starts a process only for a job no idle one can take)
            warm = [runner.submit(worker.encoders) for _ in range(max(1, runner.workers))]
            encoders = warm[0].result()
        except BrokenProcessPool:
            # workers died while starting: typically a script without the
            # `if __name__ == "__main__":` guard that multiprocessing needs. Work in-process.
            log.warning("indexer worker processes failed to start; analysing in this process")
            runner.close()
            runner = InlineRunner(engine_config)
            encoders = runner.submit(worker.encoders).result()
        # a new store records the whole engine that builds it (settings, model files' hashes)
        encoders = {**encoders, RECORD_KEY: encoded(engine_config)}
        # opening with encoders refuses a store built by other models (EncoderMismatchError)
        with Store(os.fspath(store_dir), mode="w", encoders=encoders) as store:
            rules = link_rules(encoders, options.person_threshold)
            earlier = store.record_person_rules(rules.as_dict())
            if earlier is not None:
                log.warning("this store's persons were linked with identity threshold %s, margin %s (%s); "
                            "this run uses %s, margin %s (%s)", earlier.get("threshold"), earlier.get("margin"),
                            earlier.get("identity"), rules.threshold, rules.margin, rules.identity)
            book = PersonBook.from_store(store, rules)
            bar = None
            if options.show_progress:
                from tqdm import tqdm

                bar = tqdm(total=len(jobs), unit="file", desc="indexing", dynamic_ncols=True)
            indexer = Indexer(store, runner, book, options, summary, progress, bar, should_stop, roots)
            indexer.files_total = len(jobs)
            try:
                # images first, then videos: the commit order (and so person ids) of earlier runs
                indexer.run_jobs([j for j in jobs if j.kind == IMAGE] + [j for j in jobs if j.kind == VIDEO])
            finally:
                if bar is not None:
                    bar.close()
            summary.persons_total = len(store.list_persons())
    finally:
        runner.close()
    summary.seconds = time.perf_counter() - started
    return summary
