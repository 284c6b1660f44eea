"""A tiny wrapper around ai-edge-litert's Interpreter for the bundled .tflite models.

One Interpreter per (model, thread count) per process: an Interpreter is not
thread-safe, and the analyzer is one per worker process, so sharing within a
process is fine as long as callers don't run it from several threads.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from mien.engine.faces.bundled import bundled_path


def default_threads() -> int:
    """LiteRT threads per interpreter: MIEN_LITERT_THREADS, else 1 (workers are processes)."""
    try:
        return max(1, int(os.environ.get("MIEN_LITERT_THREADS", "1")))
    except ValueError:
        return 1


class TFLiteModel:
    """One .tflite model with a single float input; run() returns every output tensor."""

    def __init__(self, name: str, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.name = name
        self.interpreter = Interpreter(model_path=str(bundled_path(name)),
                                       num_threads=threads or default_threads())
        self.interpreter.allocate_tensors()
        inp = self.interpreter.get_input_details()[0]
        self.input_index = inp["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self.output_indices = [d["index"] for d in self.interpreter.get_output_details()]

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        tensor = np.ascontiguousarray(tensor, dtype=np.float32).reshape(self.input_shape)
        self.interpreter.set_tensor(self.input_index, tensor)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self.output_indices]   # get_tensor copies already


@lru_cache(maxsize=None)
def load(name: str, threads: int | None = None) -> TFLiteModel:
    """The process-wide model for `name` (loaded once)."""
    return TFLiteModel(name, threads)


def model(name: str, threads: int | None = None, private: bool = False) -> TFLiteModel:
    """load(name, threads); with `private`, an interpreter of its own that no other code runs
    (a second thread's copy: LiteRT interpreters are not thread-safe)."""
    return TFLiteModel(name, threads) if private else load(name, threads)
