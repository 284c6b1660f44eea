"""The ONNX Runtime session options of the networks mien converts itself (dlib ResNet, FaceNet)."""

from __future__ import annotations


def session_options(threads: int):
    """intra-op `threads` (at least 1), one inter-op thread, no spinning."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    # the pipeline around it (OpenCV, dlib, MediaPipe) wants the cores when ORT is idle
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts
