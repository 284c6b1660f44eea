"""Videos: cut into time ranges that workers read and analyse themselves; the
driver tracks, links persons and commits each video in one transaction.

The driver only probes a file (video.probe) and plans its ranges; a worker
gets the path and a range (worker.analyze_range), opens the file itself, seeks
and returns the analysed frames: faces and small identity patches, never
whole frames. The driver consumes the ranges in time order with one Tracker,
one candidate list and one commit per video, so tracks and persons join
across ranges exactly as within one range, and the store does not depend on
how a file was cut:

- sampling is absolute (video.RangeReader: the first frame of each bin
  floor(t / step)) and keyframe segments are bins of keyframe_seconds, so
  range bounds on multiples of both see the frames and segments the whole
  file sees;
- ranges must meet: each worker reports the first frame at or after its start
  and the first at or after its end, and consecutive ranges must agree on
  that frame's (index, timestamp). Where they do not (a variable-frame-rate
  file: OpenCV derives frame numbers from the average rate after a seek), the
  rest of the file is read as one range without seeking.

Images and videos share one window of jobs in flight (at most 2 x workers):
an image is one job, a video its ranges, so the first video's ranges go out
while the last images are analysed, the next video's while a video's last
range and identity step finish, and short clips keep every worker busy too.
Results are consumed, and files committed, strictly in job order (images
first, then videos, as given), so the store and its person ids do not depend
on timing. A worker that dies makes every file in flight a suspect: suspects
are retried alone, and one that kills a worker again fails with
"analysis crashed".
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from mien.indexer import worker
from mien.indexer.commit import Group, commit_source
from mien.indexer.persons import cluster, normalise
from mien.indexer.pooling import median_pool
from mien.indexer.records import count_faces, face_record, quality_score
from mien.indexer.sniff import IMAGE, VIDEO
from mien.indexer.tracking import Tracker

log = logging.getLogger(__name__)

MIN_RANGE_MS = 4000     # automatic ranges are at least this long (seeking costs a GOP's decoding)
MAX_RANGE_MS = 60000    # ... and at most this long, so a long file spreads and progress moves
MAX_RANGES = 10000      # a plan never holds more (a header can claim years): ranges get longer instead


@dataclass
class Span:
    start_ms: int
    end_ms: int | None      # None: to the end of the file
    seek: bool = True


def range_unit_ms(fps: float | None, key_ms: float) -> int | None:
    """The smallest whole number of ms that is a multiple of the keyframe interval and of
    the sampling step: range bounds on its multiples cut no bin. None: no such unit."""
    base = key_ms if key_ms > 0 else (1000.0 / fps if fps else 1000.0)
    for m in range(1, 1001):
        unit = m * base
        if abs(unit - round(unit)) > 1e-6 or round(unit) <= 0:
            continue
        samples = round(unit) * fps / 1000.0 if fps else 0.0
        if abs(samples - round(samples)) <= 1e-6:
            return int(round(unit))
    return None


def plan_spans(duration_ms: float, unit: int | None, workers: int, range_seconds: float = 0.0,
               frames: int = 0, spread: bool = True) -> list[Span]:
    """Ranges covering [0, end of file): the last one is open, so a short duration
    estimate loses nothing. range_seconds > 0: that length (rounded to the unit);
    0: each MIN_RANGE_MS..MAX_RANGE_MS, longer ones first (the pool hands out ranges
    in order: the short ones fill the gaps at the end); with `spread`, at least about
    2 per worker, so the file alone keeps every worker busy to its end. A file that
    other files follow needs not (their jobs fill the workers) and is cut only where
    MAX_RANGE_MS says: each cut costs a range's start (opening, seeking, a keyframe
    interval's decoding; 6-8 % of a 20 s file's CPU in 4 ranges).
    frames: the frames the file can hold (the probe's count, bounded by its bytes; 0 =
    unknown): never more ranges than that, as a range without a frame only costs a seek
    (a 772 KB AVI claiming 1e-4 fps made 40 frames 10^4 s apart: 9,751 one-second ranges)."""
    if unit is None or not duration_ms > 0 or not math.isfinite(duration_ms):
        return [Span(0, None)]
    units = max(1, math.ceil(duration_ms / unit - 1e-9))
    most = min(MAX_RANGES, frames) if frames > 0 else MAX_RANGES
    if range_seconds > 0:
        size = max(1, round(range_seconds * 1000.0 / unit), math.ceil(units / most))
        sizes = [size] * math.ceil(units / size)
    else:
        lo, hi = max(1, math.ceil(MIN_RANGE_MS / unit)), max(1, MAX_RANGE_MS // unit)
        least = 2 * max(1, workers) if spread else 1
        n = min(max(least, math.ceil(units / hi)), max(1, units // lo))
        n = max(1, min(n, most))
        sizes = [units // n + (1 if i < units % n else 0) for i in range(n)]
    spans, start = [], 0
    for size in sizes:
        spans.append(Span(start * unit, (start + size) * unit))
        start += size
    spans[-1].end_ms = None
    return spans


def partly_decoded(gaps: list, end_ms: int | None, announced_ms: float, fps: float) -> str:
    """What a video lost to damage, "" when nothing: each stretch skipped, and the end when
    the last frame decoded falls more than a second short of the container's duration
    (its estimate is frame count / average rate, so a second of slack)."""
    lost = [f"skipped damage between {a / 1000:.1f} s and {b / 1000:.1f} s" for a, b in sorted(gaps)]
    frame_ms = 1000.0 / fps if fps > 0 else 0.0
    if end_ms is not None and announced_ms > 0 and end_ms + frame_ms < announced_ms - 1000.0:
        lost.insert(0, f"decoded 0–{(end_ms + frame_ms) / 1000:.1f} s of {announced_ms / 1000:.1f} s")
    return "; ".join(lost)


@dataclass
class FileRun:
    """One file's plan and the driver's state while its results come back: a video's
    ranges, or an image's one job (`image` holds its result until its commit)."""
    job: object
    spans: list = field(default_factory=list)
    plan: list = field(default_factory=list)     # the spans as first planned (for a retry)
    failure: tuple | None = None                 # (reason, detail): committed as failed in its turn
    submitted: int = 0
    consumed: int = 0
    suspect: bool = False                        # in flight when a worker died: retried alone
    fallbacks: int = 0
    tracker: Tracker = field(default_factory=Tracker)
    entries: list = field(default_factory=list)  # (frame_index, ts, face, track_id) of passed faces
    candidates: dict = field(default_factory=dict)   # track id -> [(score, order, Patch)] best first
    frames_seen: int = 0
    expect: tuple | None = None                  # where the next range must begin: previous range's `next`
    end: tuple | None = None                     # (index, ts) of the file's last frame
    before: tuple | None = None                  # summary counters before this video was consumed
    image: object = None                         # an image's ImageResult, committed in its turn
    identity: tuple | None = None                # (track ids, futures) of the identity jobs, once sent
    announced: tuple = (0.0, 0.0)                # the container's (duration_ms, fps), from the probe
    gaps: list = field(default_factory=list)     # (ms before, ms after) of damage the ranges skipped

    def reset(self) -> None:
        self.spans = list(self.plan)
        self.submitted = self.consumed = self.frames_seen = 0
        self.tracker, self.entries, self.candidates = Tracker(), [], {}
        self.expect = self.end = self.image = self.identity = None
        self.gaps = []

    @property
    def complete(self) -> bool:
        return self.failure is not None or self.consumed >= len(self.spans)


class JobQueue:
    """Analyse and commit the images and videos of one run, in order (see the module docstring)."""

    def __init__(self, indexer):
        self.ix = indexer
        self.options = indexer.options
        self.runner = indexer.runner
        self.summary = indexer.summary
        self.fps = None if self.options.every_frame else self.options.fps
        self.key_ms = max(0.0, self.options.keyframe_seconds) * 1000.0
        self.unit = range_unit_ms(self.fps, self.key_ms)
        self.window: deque = deque()    # (run, range number, future), in the order they are consumed
        self.ahead = max(2, 2 * self.runner.workers)
        self.identity = getattr(self.runner, "identity", None)   # a pool's identity step (driver_identity.py)
        self.active: deque = deque()    # runs started and not committed, in job order

    # ------------------------------------------------------------ planning
    def _start(self, job, last: bool = True) -> FileRun:
        """A file's run: an image's one job, or a video's probe and ranges (`last`: no file
        follows it in this run, so its ranges must keep every worker busy to the end)."""
        from mien.errors import BadInputError, TooLargeError, VanishedError
        from mien.indexer.beneath import OutsideRootsError
        from mien.indexer.crawl import OUTSIDE_ROOTS, VANISHED
        from mien.indexer.video import probe

        run = FileRun(job)
        if job.kind == IMAGE:
            run.plan, run.spans = [Span(0, None)], [Span(0, None)]
            return run
        try:
            info = probe(job.path, self.options.max_pixels, self.ix.roots)
        except OutsideRootsError as exc:
            run.failure = (OUTSIDE_ROOTS, exc.strerror)
            return run
        except VanishedError as exc:
            run.failure = (VANISHED, str(exc))
            return run
        except TooLargeError as exc:
            run.failure = ("too large", str(exc))
            return run
        except BadInputError as exc:
            run.failure = ("no video stream or undecodable video", str(exc))
            return run
        if self.identity is not None:
            self.identity.prepare()   # its model loads while the workers start
        run.announced = (info.duration_ms, info.fps)
        run.plan = plan_spans(info.duration_ms, self.unit, self.runner.workers, self.options.range_seconds,
                              info.frame_count, spread=last)
        run.spans = list(run.plan)
        return run

    def _submit_or_fail(self, fn, *args) -> Future:
        """runner.submit, or a future holding its error: a pool that broke since the last
        result is then handled in turn, where that future's result is read."""
        try:
            return self.runner.submit(fn, *args)
        except Exception as exc:
            failed: Future = Future()
            failed.set_exception(exc)
            return failed

    def _submit(self, run: FileRun):
        span = run.spans[run.submitted]
        if run.job.kind == IMAGE:
            return self._submit_or_fail(worker.analyze_image, run.job.path, self.options.max_pixels, self.ix.roots)
        return self._submit_or_fail(worker.analyze_range, run.job.path, span.start_ms, span.end_ms, self.fps,
                                    self.key_ms, self.options.batch_frames, self.options.max_pixels, span.seek,
                                    self.ix.roots, self.options.identity_faces)

    def _fill(self, pending: deque) -> None:
        ahead = self.ahead
        while len(self.window) < ahead:
            run = self._next_run(pending, ahead)
            if run is None:
                return
            self.window.append((run, run.submitted, self._submit(run)))
            run.submitted += 1

    def _next_run(self, pending: deque, ahead: int) -> FileRun | None:
        """The run whose next range goes out: the earliest with ranges left; a suspect
        goes alone; a new video starts only when the runs in hand are all out."""
        for run in self.active:
            if run.suspect and run is not self.active[0]:
                return None
            if run.failure is None and run.submitted < len(run.spans):
                return run
            if run.suspect:
                return None
        while pending and len(self.active) < ahead and not self.ix.should_stop():
            job = pending.popleft()
            run = self._start(job, last=not pending)
            self.active.append(run)
            if run.failure is None:
                return run
        return None

    def _drop(self, run: FileRun) -> None:
        """Forget `run`'s ranges in flight (their results are not needed)."""
        keep = deque()
        for item in self.window:
            if item[0] is run:
                item[2].cancel()
            else:
                keep.append(item)
        self.window = keep

    # ------------------------------------------------------------ the loop
    def run(self, jobs) -> None:
        pending = deque(jobs)
        while True:
            self._fill(pending)
            if not self.active:
                if pending:  # should_stop before the next video
                    self.summary.stopped = True
                return
            head = self.active[0]
            if head.complete:
                self.active.popleft()
                self._finish(head)
                if self.ix.should_stop():  # between two commits: the store holds whole sources only
                    self.summary.stopped = bool(pending or self.active)
                    for _, _, future in self.window:
                        future.cancel()
                    return
                continue
            run, k, future = self.window.popleft()
            assert run is head and k == head.consumed, "ranges are consumed in the order they went out"
            if head.before is None:
                s = self.summary
                head.before = (s.frames, s.faces_detected, s.faces_passed, Counter(s.rejected), s.video_ranges)
            try:
                result = future.result()
            except Exception as exc:  # a dead worker (segfault, OOM kill, lost node) or a bug
                self._crashed(head, exc)
                continue
            self._consume(head, k, result)

    def _crashed(self, head: FileRun, exc: BaseException) -> None:
        broken = self.runner.recover(exc)
        if not broken or head.suspect:
            detail = type(exc).__name__ if head.job.kind == IMAGE else f"{type(exc).__name__}: {exc}"
            head.failure = ("analysis crashed", detail)
            self._roll_back(head)  # its faces are not stored: not counted either
            if broken:  # every other future died with the pool: send them again
                self._requeue()
            else:
                self._drop(head)
            return
        # any video in flight may have killed the worker: each is retried alone
        for run in self.active:
            if run.submitted or run is head:
                run.suspect = True
        self._requeue()

    def _requeue(self) -> None:
        """After the pool was replaced: every unfinished run starts over (the head's
        counts are rolled back), suspects first and alone."""
        self.window.clear()
        for run in self.active:
            if run.failure is None:
                self._roll_back(run)
                run.reset()

    def _roll_back(self, run: FileRun) -> None:
        """Take the counts of `run`'s consumed ranges out of the summary."""
        if run.before is not None:
            s = self.summary
            s.frames, s.faces_detected, s.faces_passed, s.rejected, s.video_ranges = (
                run.before[0], run.before[1], run.before[2], Counter(run.before[3]), run.before[4])
            run.before = None

    def _consume(self, run: FileRun, k: int, result) -> None:
        if run.job.kind == IMAGE:  # counted and committed in its turn (Indexer._commit_image)
            run.image = result
            run.consumed += 1
            return
        if result.error:
            run.failure = (result.reason or ("too large" if result.too_large else "corrupt video"), result.error)
            self._drop(run)
            return
        span = run.spans[k]
        if k > 0 and span.seek and (result.first != run.expect or result.backwards):
            # the seek did not land where the previous range ended: read the rest without seeking
            log.info("%s: range at %d ms starts at %s, the previous one ended at %s; reading the rest "
                     "without seeking", run.job.path, span.start_ms, result.first, run.expect)
            self._drop(run)
            run.spans = run.spans[:k] + [Span(span.start_ms, None, seek=False)]
            run.submitted = k
            self.window.appendleft((run, k, self._submit(run)))
            run.submitted = k + 1
            run.fallbacks += 1
            self.summary.video_rereads += 1
            return
        run.expect = result.next
        run.gaps.extend(result.gaps)   # each gap comes from the one range its start is in
        if result.last is not None and run.end is None:
            run.end = result.last
        if result.next is None and k + 1 < len(run.spans):
            self._drop(run)  # the file ended in this range: the ones after it are empty
            run.spans = run.spans[:k + 1]
            run.submitted = k + 1
        self._feed(run, result.frames)
        run.consumed += 1
        self.summary.video_ranges += 1
        if run.consumed >= len(run.spans):
            # the identity jobs go out now, ahead of the next ranges the window sends
            run.identity = self._send_identities(run.candidates)
        self.ix._tick(run.job.path)

    def _feed(self, run: FileRun, frames) -> None:
        keep = self.options.identity_faces
        for res in frames:
            run.frames_seen += 1
            self.summary.frames += 1
            ids = run.tracker.update([f.bbox for f in res.faces])
            passed = set(id(f) for f in count_faces(res.faces, self.summary))
            for pos, (face, tid) in enumerate(zip(res.faces, ids)):
                if id(face) not in passed:
                    continue
                run.entries.append((res.index, res.timestamp_ms, face, tid))
                patch = res.patches.get(pos)
                if patch is not None:
                    best = run.candidates.setdefault(tid, [])
                    best.append((quality_score(face), len(run.entries), patch))
                    best.sort(key=lambda c: (-c[0], c[1]))
                    del best[keep:]

    # ------------------------------------------------------------ commit
    def _finish(self, run: FileRun) -> None:
        if run.failure is not None:
            self.ix._failed(run.job, *run.failure)
            return
        if run.job.kind == IMAGE:
            self.ix._commit_image(run.job, run.image)
            return
        if run.frames_seen == 0:
            self.ix._failed(run.job, "corrupt video", "no decodable frames")
            return
        try:
            identities = self._track_identities(run.identity or self._send_identities(run.candidates))
        except Exception as exc:  # a worker died embedding: the ranges in flight died with it
            broken = self.runner.recover(exc)
            if broken and not run.suspect:
                for other in self.active:
                    other.suspect = other.suspect or other.submitted > 0
                run.suspect = True
                self.active.appendleft(run)   # analysed again, alone
                self._requeue()
                return
            if broken:
                self._requeue()
            self.ix._failed(run.job, "analysis crashed", f"{type(exc).__name__}: {exc}")
            return
        self._commit(run, identities)

    def _send_identities(self, candidates: dict) -> tuple:
        """Start the identity step of each track's best faces: (the track id of each patch,
        the futures). A pool's runs in this process (driver_identity.py); elsewhere it is one
        job, as the identity models load on first use (split over every worker, each would load
        them for a few milliseconds of embedding)."""
        order = sorted(candidates)
        patches = [(tid, c[2]) for tid in order for c in candidates[tid]]
        if not patches:
            return [], []
        chosen = [p for _, p in patches]
        # a pool that broke since the last result: raised by _track_identities
        future = self.identity.submit(chosen) if self.identity is not None else \
            self._submit_or_fail(worker.embed_patches, chosen)
        return [tid for tid, _ in patches], [future]

    def _track_identities(self, sent: tuple) -> dict:
        """Mean identity of each track's best faces, from the jobs _send_identities sent."""
        tids, futures = sent
        vectors = [v for f in futures for v in f.result()]
        sums: dict = {}
        for tid, vec in zip(tids, vectors):
            if vec is not None:
                sums.setdefault(tid, []).append(normalise(vec))
        return {tid: normalise(np.mean(vs, axis=0)) for tid, vs in sums.items()}

    def _commit(self, run: FileRun, identities: dict) -> None:
        ix, entries = self.ix, run.entries
        tracks = [t.track_id for t in run.tracker.finish()]
        with_id = sorted(identities)
        # cannot-link: tracks seen in one frame are different people
        position = {tid: k for k, tid in enumerate(with_id)}
        in_frame: dict = {}
        for index, _, _, tid in entries:
            if tid in position:
                in_frame.setdefault(index, set()).add(position[tid])
        apart = {(a, b) for ks in in_frame.values() for a in ks for b in ks if a < b}
        labels = cluster(np.stack([identities[t] for t in with_id]), ix.book.threshold, apart) if with_id else []
        cluster_of = {tid: int(label) for tid, label in zip(with_id, labels)}

        records = [face_record(ix.FaceRecord, run.job.path, face, index, ts, tid, identities.get(tid))
                   for index, ts, face, tid in entries]
        # person groups: one per identity cluster; faces of tracks without identity stay unknown
        members: dict = {}
        frames: dict = {}
        for i, (index, _, _, tid) in enumerate(entries):
            if tid in cluster_of:
                members.setdefault(cluster_of[tid], []).append(i)
                frames.setdefault(cluster_of[tid], set()).add(index)
        groups = [Group(np.stack([identities[t] for t in with_id if cluster_of[t] == label]),
                        members[label], frames[label]) for label in sorted(members)]
        # pooling: per person (cluster) in time order; identity-less tracks pool on their own
        sequences: dict = {}
        for i, (_, ts, _, tid) in enumerate(entries):
            key = ("c", cluster_of[tid]) if tid in cluster_of else ("t", tid)
            sequences.setdefault(key, []).append(i)
        for idx in sequences.values():
            idx.sort(key=lambda i: (records[i].timestamp_ms, records[i].track_id))
            pooled = median_pool(np.stack([records[i].expression for i in idx]))
            for i, vec in zip(idx, pooled):
                records[i].pooled = vec

        end_index, end_ms = run.end if run.end is not None else (entries[-1][0] if entries else 0, 0)
        self.summary.tracks += len(tracks)
        self.summary.video_ms += end_ms
        source = ix.SourceRecord(uri=run.job.path, fingerprint=run.job.fingerprint, kind=VIDEO, status="done",
                                 face_count=len(records), duration_ms=int(end_ms), frames=int(end_index) + 1)
        self.summary.persons_new += commit_source(ix.store, ix.book, source, records, groups)
        lost = partly_decoded(run.gaps, end_ms if run.end is not None else None, *run.announced)
        if lost:
            self.summary.partial.append((run.job.path, lost))
        self.summary.indexed += 1
        self.summary.videos += 1
        ix._tick(run.job.path, done=True)
