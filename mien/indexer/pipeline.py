"""index_paths: crawl -> sniff -> fingerprint -> analyse -> track -> cluster -> commit.

One process writes the store (this one); analysis runs in worker processes
(one per core by default) so both cores detect faces while this process
decodes video, tracks and commits. Every source is committed in one store
transaction together with the persons it creates (see `commit.py`), so a
kill -9 at any moment loses at most the source in flight.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from mien.indexer import worker
from mien.indexer.commit import Group, commit_source, repair_persons
from mien.indexer.crawl import OUTSIDE_ROOTS, crawl, under_roots
from mien.indexer.fingerprint import fingerprint
from mien.indexer.persons import PersonBook, cluster, link_rules, normalise
from mien.indexer.pooling import median_pool
from mien.indexer.runner import InlineRunner, make_runner
from mien.indexer.sniff import IMAGE, VIDEO, has_media_extension, sniff
from mien.indexer.summary import IndexOptions, IndexSummary
from mien.indexer.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass
class Job:
    path: str
    kind: str
    fingerprint: str


def _classify(found, store, summary: IndexSummary, roots=None) -> Job | None:
    """A Job for a file that needs analysing, else None (counted in the summary).

    roots: the allowed roots (real paths) of a server-side run; the file is
    resolved again here, so a name swapped for a link since the crawl is caught.
    """
    if roots is not None and not found.skip and not found.fail and not (
            os.path.realpath(found.path) == found.path and under_roots(found.path, roots)):
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
        kind = sniff(path) if found.size else None
        fp = fingerprint(path, found.size, found.mtime_ns) if kind else ""
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
    previous = store.get_source(path)
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


def _quality_score(face) -> float:
    """Which faces of a track are worth an identity embedding: big, frontal, sharp."""
    q = face.quality
    width = face.bbox[2] - face.bbox[0]
    return float(min(width, 200.0) * np.cos(np.radians(min(abs(q.yaw), 89.0))) * min(1.0, q.sharpness / 10.0))


def _record(FaceRecord, uri: str, face, frame_index: int, ts: int, track_id: int, identity):
    q = face.quality
    expr = np.asarray(face.expression, dtype=np.float32)
    return FaceRecord(
        source_uri=uri, frame_index=int(frame_index), timestamp_ms=int(ts),
        bbox=tuple(float(v) for v in face.bbox), landmarks5=np.asarray(face.landmarks5, np.float32),
        det_score=float(face.det_score), sharpness=float(q.sharpness), yaw=float(q.yaw),
        pitch=float(q.pitch), roll=float(q.roll), expression=expr, pooled=expr.copy(),
        identity=None if identity is None else np.asarray(identity, np.float32),
        track_id=int(track_id), thumbnail=face.thumbnail or b"",
        occluded=bool(getattr(q, "occluded", False)), occlusion=float(getattr(q, "occlusion", 0.0)),
    )


def _count_faces(faces, summary: IndexSummary) -> list:
    """Count detections and FaceQA rejections; return the passed faces."""
    passed = []
    for face in faces:
        summary.faces_detected += 1
        if face.quality is not None and face.quality.passed and face.expression is not None:
            passed.append(face)
        else:
            reason = face.quality.reason if face.quality is not None and face.quality.reason else "rejected"
            summary.rejected[reason] += 1
    summary.faces_passed += len(passed)
    return passed


class Indexer:
    def __init__(self, store, runner, book: PersonBook, options: IndexOptions, summary: IndexSummary,
                 progress, bar, should_stop=None):
        self.store, self.runner, self.book = store, runner, book
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
        self.summary.fail(job.path, reason, detail)
        source = self.SourceRecord(uri=job.path, fingerprint=job.fingerprint, kind=job.kind,
                                   status="failed", error=f"{reason}: {detail}" if detail else reason)
        commit_source(self.store, self.book, source, [], [])
        self._tick(job.path, done=True)

    # ------------------------------------------------------------ images
    def run_images(self, jobs: list[Job]) -> None:
        window: deque = deque()
        pending = list(reversed(jobs))
        ahead = max(2, 2 * self.runner.workers)
        suspects: set[str] = set()   # jobs in flight when a worker died: retried one at a time
        while pending or window:
            if self.should_stop():  # between two commits: the store holds whole sources only
                self.summary.stopped = True
                return
            limit = 1 if suspects else ahead
            while pending and len(window) < limit:
                job = pending.pop()
                window.append((job, self.runner.submit(worker.analyze_image, job.path, self.options.max_pixels)))
            job, future = window.popleft()
            try:
                result = future.result()
            except Exception as exc:  # a dead worker (BrokenProcessPool: segfault, OOM kill) or a bug
                broken = self.runner.recover(exc)
                if broken and job.path not in suspects:
                    # any job in flight may have killed the pool: retry them alone
                    retry = [job] + [j for j, _ in window]
                    window.clear()
                    suspects.update(j.path for j in retry)
                    pending.extend(reversed(retry))
                    continue
                suspects.discard(job.path)
                self._failed(job, "analysis crashed", type(exc).__name__)
                if broken:
                    pending.extend(reversed([j for j, _ in window]))
                    window.clear()
                continue
            suspects.discard(job.path)
            self._commit_image(job, result)

    def _commit_image(self, job: Job, result) -> None:
        if result.error:
            self._failed(job, "too large" if result.too_large else "corrupt or unreadable image", result.error)
            return
        self.summary.frames += 1
        passed = _count_faces(result.faces, self.summary)
        records, groups = [], []
        for i, face in enumerate(passed):
            records.append(_record(self.FaceRecord, job.path, face, 0, 0, i, face.identity))
            if face.identity is not None:  # faces of one image are different people: frame 0 for all
                groups.append(Group(normalise(face.identity)[None, :], [i], {0}))
        self.summary.tracks += len(passed)
        source = self.SourceRecord(uri=job.path, fingerprint=job.fingerprint, kind=IMAGE, status="done",
                                   face_count=len(records), frames=1)
        self.summary.persons_new += commit_source(self.store, self.book, source, records, groups)
        self.summary.indexed += 1
        self.summary.images += 1
        self._tick(job.path, done=True)

    # ------------------------------------------------------------ videos
    def run_video(self, job: Job, attempts: int = 2) -> None:
        """Analyse and commit one video; a dead worker costs one retry, not the video."""
        from collections import Counter

        from mien.errors import BadInputError, TooLargeError
        from mien.indexer.video import FrameSampler

        fps = None if self.options.every_frame else self.options.fps
        s = self.summary
        before = (s.frames, s.faces_detected, s.faces_passed, Counter(s.rejected))
        for attempt in range(attempts):
            try:
                sampler = FrameSampler(job.path, fps, max_pixels=self.options.max_pixels,
                                       queue_size=2 * self.options.batch_frames)
            except TooLargeError as exc:
                self._failed(job, "too large", str(exc))
                return
            except BadInputError as exc:
                self._failed(job, "no video stream or undecodable video", str(exc))
                return
            try:
                state = self._analyse_video(job, sampler)
                break
            except BadInputError as exc:
                self._failed(job, "corrupt video", str(exc))
                return
            except Exception as exc:
                broken = self.runner.recover(exc)
                if broken and attempt + 1 < attempts:
                    s.frames, s.faces_detected, s.faces_passed, s.rejected = (
                        before[0], before[1], before[2], Counter(before[3]))
                    continue
                self._failed(job, "analysis crashed", f"{type(exc).__name__}: {exc}")
                return
            finally:
                sampler.close()
        if state is None:
            self._failed(job, "corrupt video", "no decodable frames")
            return
        self._commit_video(job, sampler, *state)

    def _analyse_video(self, job: Job, sampler):
        tracker = Tracker()
        entries = []          # (frame_index, ts, face, track_id) of passed faces
        candidates: dict[int, list] = {}   # track id -> [(score, Patch)] best first
        frames_seen = 0
        window: deque = deque()
        ahead = max(2, 2 * self.runner.workers)
        keep = self.options.identity_faces

        def consume(results) -> None:
            nonlocal frames_seen
            for res in results:
                frames_seen += 1
                self.summary.frames += 1
                ids = tracker.update([f.bbox for f in res.faces])
                passed = set(id(f) for f in _count_faces(res.faces, self.summary))
                for pos, (face, tid) in enumerate(zip(res.faces, ids)):
                    if id(face) not in passed:
                        continue
                    entries.append((res.index, res.timestamp_ms, face, tid))
                    patch = res.patches.get(pos)
                    if patch is not None:
                        best = candidates.setdefault(tid, [])
                        best.append((_quality_score(face), len(entries), patch))
                        best.sort(key=lambda c: (-c[0], c[1]))
                        del best[keep:]
            self._tick(job.path)

        # A job is a run of consecutive sampled frames starting with a keyframe
        # (see IndexOptions.keyframe_seconds): jobs are independent, so both
        # workers stay busy while each job tracks its faces from frame to frame.
        key_ms = max(0.0, self.options.keyframe_seconds) * 1000.0
        guided = key_ms > 0
        batch = []
        for frame in sampler:
            if batch and (len(batch) >= self.options.batch_frames
                          or (guided and frame.timestamp_ms - batch[0][1] >= key_ms)):
                window.append(self.runner.submit(worker.analyze_frames, batch, guided))
                batch = []
                while len(window) >= ahead:
                    consume(window.popleft().result())
            batch.append((frame.index, frame.timestamp_ms, frame.image))
        if batch:
            window.append(self.runner.submit(worker.analyze_frames, batch, guided))
        while window:
            consume(window.popleft().result())
        if frames_seen == 0:
            return None
        tracks = [t.track_id for t in tracker.finish()]
        return entries, candidates, tracks

    def _track_identities(self, candidates: dict[int, list]) -> dict[int, np.ndarray]:
        """Mean identity of each track's best faces, embedded in parallel."""
        order = sorted(candidates)
        patches = [(tid, c[2]) for tid in order for c in candidates[tid]]
        if not patches:
            return {}
        chunks = max(1, self.runner.workers)
        size = (len(patches) + chunks - 1) // chunks
        futures = [self.runner.submit(worker.embed_patches, [p for _, p in patches[i:i + size]])
                   for i in range(0, len(patches), size)]
        vectors = [v for f in futures for v in f.result()]
        sums: dict[int, list] = {}
        for (tid, _), vec in zip(patches, vectors):
            if vec is not None:
                sums.setdefault(tid, []).append(normalise(vec))
        return {tid: normalise(np.mean(vs, axis=0)) for tid, vs in sums.items()}

    def _commit_video(self, job: Job, sampler, entries, candidates, tracks) -> None:
        identities = self._track_identities(candidates)
        with_id = sorted(identities)
        # cannot-link: tracks seen in one frame are different people
        position = {tid: k for k, tid in enumerate(with_id)}
        in_frame: dict[int, set[int]] = {}
        for index, _, _, tid in entries:
            if tid in position:
                in_frame.setdefault(index, set()).add(position[tid])
        apart = {(a, b) for ks in in_frame.values() for a in ks for b in ks if a < b}
        labels = cluster(np.stack([identities[t] for t in with_id]), self.book.threshold, apart) if with_id else []
        cluster_of = {tid: int(label) for tid, label in zip(with_id, labels)}

        records = [_record(self.FaceRecord, job.path, face, index, ts, tid, identities.get(tid))
                   for index, ts, face, tid in entries]
        # person groups: one per identity cluster; faces of tracks without identity stay unknown
        members: dict[int, list[int]] = {}
        frames: dict[int, set[int]] = {}
        for i, (index, _, _, tid) in enumerate(entries):
            if tid in cluster_of:
                members.setdefault(cluster_of[tid], []).append(i)
                frames.setdefault(cluster_of[tid], set()).add(index)
        groups = [Group(np.stack([identities[t] for t in with_id if cluster_of[t] == label]),
                        members[label], frames[label]) for label in sorted(members)]
        # pooling: per person (cluster) in time order; identity-less tracks pool on their own
        sequences: dict[tuple, list[int]] = {}
        for i, (_, ts, _, tid) in enumerate(entries):
            key = ("c", cluster_of[tid]) if tid in cluster_of else ("t", tid)
            sequences.setdefault(key, []).append(i)
        for idx in sequences.values():
            idx.sort(key=lambda i: (records[i].timestamp_ms, records[i].track_id))
            pooled = median_pool(np.stack([records[i].expression for i in idx]))
            for i, vec in zip(idx, pooled):
                records[i].pooled = vec

        self.summary.tracks += len(tracks)
        self.summary.video_ms += sampler.duration_ms
        source = self.SourceRecord(uri=job.path, fingerprint=job.fingerprint, kind=VIDEO, status="done",
                                   face_count=len(records), duration_ms=int(sampler.duration_ms),
                                   frames=int(sampler.frames_decoded))
        self.summary.persons_new += commit_source(self.store, self.book, source, records, groups)
        self.summary.indexed += 1
        self.summary.videos += 1
        self._tick(job.path, done=True)


def engine_config_for(store_dir, config=None):
    """`config` (default EngineConfig()) detecting at the scale of the store's faces.

    Landmark-derived vectors shift with the detection scale, so every run into
    one store detects with the min_face the store was built with.
    """
    from mien.engine.faces import EngineConfig
    from mien.engine.store import Store

    config = config or EngineConfig()
    if not os.path.exists(os.path.join(os.fspath(store_dir), "data.mdb")):
        return config
    with Store(os.fspath(store_dir), mode="r") as store:
        return config.matching_store(store.encoders)


def index_paths(paths, store_dir, options: IndexOptions | None = None, engine_config=None,
                progress=None, *, allowed_roots=None, should_stop=None) -> IndexSummary:
    """Index files and folders into the store at `store_dir`; see IndexOptions.

    allowed_roots: read nothing outside these folders, links included (the
    server's --allow-root; see crawl). should_stop: polled between sources;
    when it returns True the run ends after the source in hand is committed,
    with summary.stopped set.
    """
    from mien.engine.faces import EngineConfig
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
            jobs = [job for job in (_classify(f, store, summary, roots) for f in found) if job is not None]
            if options.prune:
                _prune(store, paths, summary)
            if not jobs:
                summary.persons_total = len(store.list_persons())
                summary.seconds = time.perf_counter() - started
                return summary

    runner = make_runner(engine_config, options.workers, options)
    try:
        try:
            encoders = runner.submit(worker.encoders).result()
        except BrokenProcessPool:
            # workers died while starting: typically a script without the
            # `if __name__ == "__main__":` guard that spawn needs. Work in-process.
            log.warning("indexer worker processes failed to start; analysing in this process")
            runner.close()
            runner = InlineRunner(engine_config)
            encoders = runner.submit(worker.encoders).result()
        # a new store records the whole engine that builds it (settings, model files' hashes)
        encoders = {**encoders, RECORD_KEY: encoded(engine_config)}
        # opening with encoders refuses a store built by other models (EncoderMismatchError)
        with Store(os.fspath(store_dir), mode="w", encoders=encoders) as store:
            if not store_exists:
                jobs = [job for job in (_classify(f, store, summary, roots) for f in found) if job is not None]
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
            indexer = Indexer(store, runner, book, options, summary, progress, bar, should_stop)
            indexer.files_total = len(jobs)
            try:
                indexer.run_images([j for j in jobs if j.kind == IMAGE])
                for job in (j for j in jobs if j.kind == VIDEO):
                    if summary.stopped or indexer.should_stop():
                        summary.stopped = True
                        break
                    indexer.run_video(job)
            finally:
                if bar is not None:
                    bar.close()
            summary.persons_total = len(store.list_persons())
    finally:
        runner.close()
    summary.seconds = time.perf_counter() - started
    return summary
