"""mien.engine.faces: the per-face pipeline (detect, FaceQA, align, identity, expression).

    from mien.engine.faces import EngineConfig, FaceAnalyzer, Face, Quality, load_image
    faces = FaceAnalyzer(EngineConfig()).analyze(load_image("photo.jpg"))
"""

from mien.engine.faces.analyzer import FaceAnalyzer
from mien.engine.faces.config import EngineConfig
from mien.engine.faces.imageio import load_image
from mien.engine.faces.types import Face, Quality

__all__ = ["EngineConfig", "FaceAnalyzer", "Face", "Quality", "load_image"]
