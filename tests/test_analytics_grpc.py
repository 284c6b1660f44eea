"""Every Analytics RPC on a real server at 127.0.0.1, the CLI, and the pictures."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest

from analytics_support import (
    add_source, basis, clustered_vectors, face, open_store, png_size, thumbnail,
)
from server_support import FRONTS

from mien.clients.analytics_client import AnalyticsClient
from mien.cli import main as cli_main

URI = "/archive/debate.mp4"


@pytest.fixture(scope="module", params=FRONTS)
def front(request):
    return request.param


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory, front):
    """Eve smiles 0-2000 then is neutral 2500-4000; Finn 40 faces in two groups.

    One store per front: the tests write tags into it.
    """
    path = tmp_path_factory.mktemp(f"grpc_{front}") / "store"
    s = open_store(path)
    eve = s.add_person("Eve", basis(0))
    finn = s.add_person("Finn", basis(1))
    faces = [face(URI, ts, basis(0 if ts <= 2000 else 1, 0.1), person=eve, track=1,
                  thumb=thumbnail((60, 60, 220) if ts <= 2000 else (220, 60, 60)))
             for ts in range(0, 4001, 500)]
    faces += [face(URI, ts, basis(1), person=finn, track=2, thumb=thumbnail((120, 120, 120)))
              for ts in range(1000, 3001, 500)]
    add_source(s, URI, faces, duration_ms=5000)
    vecs, _ = clustered_vectors((25, 15), seed=2)
    add_source(s, "/archive/finn.mp4",
               [face("/archive/finn.mp4", 200 * i, v, person=finn, track=1,
                     thumb=thumbnail((40 + 5 * i, 180, 90), label=str(i))) for i, v in enumerate(vecs)],
               duration_ms=8000)
    s.close()
    return path


@pytest.fixture(scope="module")
def server(store_dir, front):
    from mien.server.app import build_server

    srv, port = build_server(store_dir, port=0, host="127.0.0.1", workers=4, front=front)
    srv.start()
    yield f"127.0.0.1:{port}"
    srv.stop(grace=None)


@pytest.fixture()
def client(server):
    with AnalyticsClient(server) as c:
        yield c


def test_every_rpc_round_trip(client, store_dir):
    from mien.demo import photos

    # CreateTag from a vector, a stored face and a real photo (FaceAnalyzer on the server)
    smile = client.create_tag("smile", vectors=[basis(0)])
    assert smile.name == "smile" and smile.threshold == pytest.approx(0.5)
    s = open_store(store_dir, mode="r")
    eve_face = s.person_face_ids(s.find_person("Eve").person_id)[0]
    s.close()
    by_face = client.create_tag("eve0", face_ids=[int(eve_face)], threshold=0.2)
    assert list(by_face.reference_face_ids) == [int(eve_face)]
    photo = photos.face_recognition_images_dir() / "obama.jpg"
    by_image = client.create_tag("obama-smile", images=[photo])
    assert len(by_image.vectors) == 1 and len(by_image.vectors[0]) == 16   # a Tag dataclass, no protobuf
    assert np.linalg.norm(by_image.vectors[0]) == pytest.approx(1.0, abs=1e-5)

    assert [t.name for t in client.list_tags()] == ["eve0", "obama-smile", "smile"]
    client.delete_tag("obama-smile")
    assert [t.name for t in client.list_tags()] == ["eve0", "smile"]

    report = client.tag_source(URI, ["smile"])
    assert report.sample_period_ms == 500 and report.duration_ms == 5000 and report.faces == 14
    eve = [r for r in report.results if r.person_name == "Eve"][0]
    assert [(seg.start_ms, seg.end_ms) for seg in eve.segments] == [(0, 2000)]
    assert (eve.faces, eve.tagged) == (9, 5) and eve.rate == pytest.approx(5 / 9)
    finn = [r for r in report.results if r.person_name == "Finn"][0]
    assert finn.tagged == 0 and finn.segments == []

    store_report = client.tag_store(["smile"])
    assert store_report.faces == 54 and store_report.tagged["smile"] >= 5
    assert store_report.persons[0].person_name in ("Eve", "Finn")

    summary, thumbs = client.summarize("Finn", method="ward", k=2, thumbnails=True)
    assert summary.method == "ward" and summary.k == 2 and summary.faces == 45
    assert sum(c.size for c in summary.clusters) == 45
    assert set(thumbs) >= {c.representative_face_id for c in summary.clusters}
    km, _ = client.summarize("Finn", k=3, seed=4)
    km2, _ = client.summarize("Finn", k=3, seed=4)
    assert [c.representative_face_id for c in km.clusters] == [c.representative_face_id for c in km2.clusters]

    clusters, thumbs = client.cluster_store(k=5, closest=3, thumbnails=True)
    assert clusters.faces == 54 and clusters.k == 5
    assert all(1 <= len(c.closest_face_ids) <= 3 for c in clusters.clusters)
    assert all(fid in thumbs for c in clusters.clusters for fid in c.closest_face_ids)


@pytest.mark.parametrize("call, code", [
    (lambda c: c.delete_tag("missing"), grpc.StatusCode.NOT_FOUND),
    (lambda c: c.create_tag("bad/name", vectors=[basis(0)]), grpc.StatusCode.INVALID_ARGUMENT),
    (lambda c: c.create_tag("short", vectors=[np.ones(4)]), grpc.StatusCode.INVALID_ARGUMENT),
    (lambda c: c.create_tag("noface", face_ids=[10 ** 9]), grpc.StatusCode.NOT_FOUND),
    (lambda c: c.tag_source("/not/indexed.mp4"), grpc.StatusCode.NOT_FOUND),
    (lambda c: c.summarize("Nobody"), grpc.StatusCode.NOT_FOUND),
    (lambda c: c.summarize("Finn", k=5000), grpc.StatusCode.INVALID_ARGUMENT),
    (lambda c: c.cluster_store(k=3, closest=500), grpc.StatusCode.INVALID_ARGUMENT),
])
def test_errors_map_to_status_codes(client, call, code):
    with pytest.raises(grpc.RpcError) as err:
        call(client)
    assert err.value.code() == code
    assert err.value.details()


def test_cli_over_grpc_and_in_process_agree(server, store_dir, tmp_path, capsys):
    s = open_store(store_dir, mode="r")
    calm_face = int(s.person_face_ids(s.find_person("Eve").person_id)[-1])  # a neutral Eve face
    s.close()
    assert cli_main(["tag", "create", "calm", "--face-id", str(calm_face), "--threshold", "0.4",
                     "--server", server, "--replace"]) == 0
    capsys.readouterr()
    assert cli_main(["tag", "run", "--source", URI, "--tags", "calm", "--json", "--server", server]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert cli_main(["tag", "run", "--source", URI, "--tags", "calm", "--json", "--store", str(store_dir)]) == 0
    local = json.loads(capsys.readouterr().out)
    def shape(report):  # floats differ by float32 transport; the decisions must not
        return [(r["person_id"], r["tag"], r["faces"], r["tagged"],
                 [(g["start_ms"], g["end_ms"], g["best_face_id"], g["faces"]) for g in r["segments"]])
                for r in report["results"]]

    assert shape(remote) == shape(local) and sum(r["tagged"] for r in local["results"]) > 0
    timeline = tmp_path / "timeline.png"
    assert cli_main(["tag", "run", "--source", URI, "--server", server, "--timeline", str(timeline)]) == 0
    table = capsys.readouterr().out
    assert "Eve" in table and "calm" in table
    assert png_size(timeline) == (1200, 140 + 60 * 2)
    sheet = tmp_path / "sheet.png"
    assert cli_main(["summary", "--person", "Finn", "-k", "4", "--sheet", str(sheet), "--server", server]) == 0
    assert "kmeans k=4" in capsys.readouterr().out
    assert png_size(sheet) == (4 * 200, 1 * 240 + 50)
    assert cli_main(["clusters", "-k", "12", "--sheet", str(tmp_path / "c.png"), "--store", str(store_dir)]) == 0
    assert png_size(tmp_path / "c.png") == (10 * 120, 2 * 160 + 50)
    assert "in 12 clusters" in capsys.readouterr().out
    assert cli_main(["tag", "list", "--json", "--server", server]) == 0
    assert "calm" in [t["name"] for t in json.loads(capsys.readouterr().out)]
    assert cli_main(["tag", "delete", "calm", "--store", str(store_dir)]) == 0
    assert cli_main(["tag", "delete", "calm", "--server", server]) == 1  # NOT_FOUND -> exit 1
