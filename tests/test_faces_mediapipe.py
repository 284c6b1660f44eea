"""MediaPipe front end on real package photos: FaceMesh, BlazeFace, landmarks."""

import numpy as np
import pytest

from faces_support import analyzer, t1
from mien.demo import photos
from mien.engine.faces import facemesh


@pytest.fixture(scope="module")
def dlib_faces():
    return analyzer(detector="dlib").detect(t1())


def test_mesh_from_dlib_faces_lands_on_the_face(dlib_faces):
    assert len(dlib_faces) == 6
    for face in dlib_faces:
        facemesh.fill_mesh(t1(), face)
        assert face.mesh.shape == (468, 3) and face.mesh.dtype == np.float32
        assert face.mesh_presence > 0.9
        # the mesh's 5 points agree with dlib's within a fraction of the eye distance
        err = np.linalg.norm(facemesh.landmarks5(face.mesh) - face.landmarks5, axis=1) / face.inter_ocular
        assert err.max() < 0.25, err
        # z is in pixels: the face's depth extent is comparable to its width
        width = np.ptp(face.mesh[:, 0])
        assert 0.4 * width < np.ptp(face.mesh[:, 2]) < 1.2 * width


def test_second_pass_is_stable():
    img = photos.face_recognition_photo("obama.jpg")
    face = analyzer(detector="dlib").detect(img)[0]
    mesher = facemesh.FaceMesher()
    roi = facemesh.roi_from_box(face.bbox, face.landmarks5[0], face.landmarks5[1])
    two, _ = mesher.mesh(img, roi, passes=2)
    three, _ = mesher.mesh(img, roi, passes=3)
    iod = face.inter_ocular
    assert np.abs(two[:, :2] - three[:, :2]).max() / iod < 0.05
