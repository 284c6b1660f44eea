"""A pool run's identity step for videos, in the driver: the identity model loads on a thread of
the driver while the workers start, and each video's best track patches are embedded there.

A video's identity step (a few patches per track through dlib's 5 points and ResNet) used to be
one more pool job after the video's last range. The worker that took it first loaded the identity
model (dlib's predictor, ONNX Runtime and its session: about 0.2 s of CPU), so every run ended
with ~0.25 s on one core while the other idled, and the patches were pickled twice on the way.
Here the model loads while the fork server imports, when the driver waits and a core is free, and
the step itself (8 ms a patch) overlaps the next video's ranges as before.

The encoder is the one the workers build from the same EngineConfig, on one thread as in a worker,
so the vectors are the same to the bit (tests/test_driver_identity.py). Only a pool of local worker
processes uses it: the in-process runner has its analyzer at hand, and a Ray cluster's driver may
be a laptop.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np


class DriverIdentity:
    """Identity vectors of identity patches, computed on one thread of this process."""

    def __init__(self, engine_config):
        self._config = engine_config
        self._thread: ThreadPoolExecutor | None = None
        self._encoder: Future | None = None

    def prepare(self) -> None:
        """Start loading the model (once): call it as soon as a run has a video."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="mien-identity")
            self._encoder = self._thread.submit(self._load)

    def submit(self, patches: list) -> Future:
        """The vectors of `patches` (worker.Patch), as worker.embed_patches returns them."""
        from mien.indexer.worker import patch_identities

        self.prepare()
        return self._thread.submit(lambda: patch_identities(self._encoder.result(), patches))

    def _load(self):
        from mien.engine.faces import registry
        from mien.engine.faces.types import Face

        encoder = registry.build("identity", self._config, threads=1)
        # one blank face through it: the predictor, the session and the runtime's first call,
        # which would otherwise fall on the first video's last moments
        eyes_nose_mouth = np.array([[56, 64], [104, 64], [80, 88], [60, 108], [100, 108]], np.float32)
        blank = Face(bbox=(40.0, 40.0, 120.0, 120.0), det_score=1.0, landmarks5=eyes_nose_mouth)
        encoder.embed_many([(np.zeros((160, 160, 3), np.uint8), blank)])
        return encoder

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True, cancel_futures=True)
            self._thread = None
