"""IndexOptions (what to do) and IndexSummary (what happened)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mien.filenames import escape, shown


@dataclass
class IndexOptions:
    fps: float = 2.0                 # video sampling rate (frames per second of video)
    every_frame: bool = False        # analyse every decoded frame instead of sampling
    prune: bool = False              # drop sources under the given roots whose files are gone
    strict: bool = False             # the CLI exits non-zero if anything failed
    workers: int = 0                 # analysis processes; 0 = one per core, 1 = in-process
    batch_frames: int = 4            # sampled frames per analysis segment (at most; see worker.segments)
    # Video: full-frame detection only on keyframes, this many seconds apart (and
    # when a tracked face is lost); in between, known faces are re-found in small
    # regions around their last box. Faces entering between keyframes are found
    # at the next one. 0 = full detection on every sampled frame. Keyframe bins are
    # absolute (floor(t / keyframe_seconds)); a keyframe also starts every
    # batch_frames samples within a bin.
    keyframe_seconds: float = 2.0
    # Videos are cut into time ranges that workers read and analyse on their own
    # (video_jobs.py): this many seconds each (rounded to whole keyframe intervals);
    # 0 = automatic (about 2 per worker, 4 to 60 s). The store does not depend on it.
    range_seconds: float = 0.0
    identity_faces: int = 3          # best faces per track that get an identity embedding
    person_threshold: float | None = None   # identity distance for same person; None = per encoder
    max_pixels: int = 64_000_000     # larger images/frames fail as too large (decompression bombs)
    show_progress: bool = True       # tqdm bar on stderr
    # `mien index --ray`: None = local processes (Ray never imported); "" = Ray's default
    # (RAY_ADDRESS or a new local cluster), "auto", "ray://head:10001" or "host:port"
    ray_address: str | None = None
    ray_cpus_per_worker: float = 1.0  # per analysis actor (models load once per actor)
    ray_gpus_per_worker: float = 0.0  # > 0 puts actors on GPU nodes (FEENet, ArcFace, SCRFD)


@dataclass
class IndexSummary:
    files: int = 0                   # paths the crawl found (files and problems)
    indexed: int = 0                 # sources analysed and committed this run
    images: int = 0
    videos: int = 0
    unchanged: int = 0               # already in the store with the same fingerprint
    pruned: int = 0
    frames: int = 0                  # images + sampled video frames analysed
    video_ms: int = 0                # duration of the videos analysed
    video_ranges: int = 0            # time ranges of videos analysed (video_jobs.py)
    video_rereads: int = 0           # videos whose rest was read without seeking (ranges did not meet)
    faces_detected: int = 0
    faces_passed: int = 0            # passed FaceQA, stored
    tracks: int = 0
    persons_new: int = 0
    persons_total: int = 0
    seconds: float = 0.0
    stopped: bool = False            # should_stop ended the run early (a server shutting down)
    rejected: Counter = field(default_factory=Counter)   # FaceQA reason -> faces
    skipped: Counter = field(default_factory=Counter)    # reason -> files (not errors)
    failed: Counter = field(default_factory=Counter)     # reason -> files (errors)
    failures: list = field(default_factory=list)         # (path, reason)
    # videos stored "done" that did not decode whole (damage skipped, or cut short of the
    # container's duration): (path, what was lost)
    partial: list = field(default_factory=list)

    @property
    def failed_count(self) -> int:
        return sum(self.failed.values())

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped.values())

    def fail(self, path: str, reason: str, detail: str = "") -> None:
        self.failed[reason] += 1
        self.failures.append((path, f"{reason}: {detail}" if detail else reason))

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in (
            "files", "indexed", "images", "videos", "unchanged", "pruned", "frames", "video_ms",
            "video_ranges", "video_rereads",
            "faces_detected", "faces_passed", "tracks", "persons_new", "persons_total", "seconds")}
        # file names as text: a name that is not UTF-8 escaped (mien/filenames.py)
        out.update(rejected=dict(self.rejected), skipped=dict(self.skipped), failed=dict(self.failed),
                   failures=[[escape(p), escape(r)] for p, r in self.failures],
                   partial=[[escape(p), escape(lost)] for p, lost in self.partial])
        return out

    def table(self) -> str:
        rate = self.faces_detected / self.seconds if self.seconds else 0.0
        rows = [
            ("files found", self.files),
            ("sources indexed", f"{self.indexed} ({self.images} images, {self.videos} videos)"),
            ("unchanged (skipped)", self.unchanged),
            ("pruned", self.pruned),
            ("frames analysed", f"{self.frames} ({self.video_ms / 1000:.1f} s of video"
                                + (f" in {self.video_ranges} ranges)" if self.video_ranges else ")")),
            ("faces detected", self.faces_detected),
            ("faces passed FaceQA", self.faces_passed),
        ]
        rows += [(f"  rejected: {r}", n) for r, n in sorted(self.rejected.items())]
        rows += [("tracks", self.tracks),
                 ("persons", f"{self.persons_total} ({self.persons_new} new)")]
        rows += [(f"skipped: {r}", n) for r, n in sorted(self.skipped.items())]
        rows += [(f"failed: {r}", n) for r, n in sorted(self.failed.items())]
        if self.partial:
            rows += [("partly decodable", len(self.partial))]
        rows += [("time", f"{self.seconds:.1f} s ({rate:.1f} faces/s)")]
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        lines += [f"  partly decodable: {shown(path)}: {lost}" for path, lost in self.partial[:20]]
        if len(self.partial) > 20:
            lines.append(f"  ... and {len(self.partial) - 20} more partly decodable")
        return "\n".join(lines)
