"""dlib identity aligned on dlib's 5 points: the default for new stores; old stores keep the 68.

Real photos, real stores, real dlib models.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from indexer_support import copy_photo
from mien.engine.faces import EngineConfig, FaceAnalyzer
from mien.engine.faces.engine_record import matching_store
from mien.indexer.persons import link_rules


def index(paths, store, config=None):
    from mien.indexer import IndexOptions, index_paths

    return index_paths(paths, store, options=IndexOptions(workers=1, show_progress=False),
                       engine_config=config)


def identity_name(store) -> str:
    from mien.engine.store import Store

    with Store(str(store), mode="r") as s:
        return s.encoders["identity"]


NEVER_LOADS_68 = r"""
import json, sys
from mien.demo.videos import photo
from mien.engine.faces import EngineConfig, FaceAnalyzer
from mien.engine.faces import dlib_landmarks
analyzer = FaceAnalyzer(EngineConfig())
faces = analyzer.analyze(photo("obama"))
print(json.dumps({"faces": len(faces), "identity": analyzer.encoders["identity"],
                  "norm": float(sum(float(v) ** 2 for v in faces[0].identity)),
                  "loaded_68": dlib_landmarks.shape_predictor_68.cache_info().currsize,
                  "loaded_5": dlib_landmarks.shape_predictor_5.cache_info().currsize}))
"""


def test_the_default_identity_never_loads_the_68_point_predictor():
    """The point of the 5 points: a worker does not read dlib's 99 MB 68-point model at all."""
    done = subprocess.run([sys.executable, "-c", NEVER_LOADS_68], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["faces"] == 1 and got["identity"] == "dlib-resnet-5pt"
    assert abs(got["norm"] - 1.0) < 1e-4
    assert got["loaded_5"] == 1 and got["loaded_68"] == 0


def test_five_point_vectors_keep_people_apart_as_the_68_point_ones_do():
    from mien.demo.videos import photo

    five, sixty_eight = FaceAnalyzer(EngineConfig()), FaceAnalyzer(EngineConfig(identity="dlib"))
    vecs = {}
    for name in ("obama", "obama2", "biden"):
        image = photo(name)
        faces = five.assess(image, five.detect(image))
        assert len(faces) == 1
        vecs[name] = (five.embed_identity(image, faces)[0].identity.copy(),
                      sixty_eight.embed_identity(image, faces)[0].identity.copy())
    for a5, a68 in vecs.values():   # one face, two alignments: far closer than any two people
        assert np.linalg.norm(a5 - a68) < 0.2
    same = np.linalg.norm(vecs["obama"][0] - vecs["obama2"][0])
    other = np.linalg.norm(vecs["obama"][0] - vecs["biden"][0])
    assert same < link_rules({"identity": "dlib-resnet-5pt"}).threshold < other


def test_each_alignment_has_its_own_calibration():
    assert link_rules({"identity": "dlib-resnet-5pt"}).threshold == 0.34
    assert link_rules({"identity": "dlib-resnet"}).threshold == 0.35


def test_a_store_of_68_point_vectors_goes_on_with_them(tmp_path):
    from mien.indexer.pipeline import engine_config_for

    store = tmp_path / "store"
    index([copy_photo("obama", tmp_path / "a" / "obama.jpg")], store, EngineConfig(identity="dlib"))
    assert identity_name(store) == "dlib-resnet"
    # the default config opened on it becomes a 68-point one: its vectors never mix
    assert EngineConfig().identity == "dlib5"
    assert engine_config_for(store).identity == "dlib"
    assert matching_store(EngineConfig(), {"identity": "dlib-resnet", "identity_dim": 128}).identity == "dlib"
    index([copy_photo("biden", tmp_path / "b" / "biden.jpg")], store, engine_config_for(store))
    assert identity_name(store) == "dlib-resnet"
    fresh = tmp_path / "fresh"
    index([copy_photo("obama", tmp_path / "c" / "obama.jpg")], fresh)
    assert identity_name(fresh) == "dlib-resnet-5pt"
