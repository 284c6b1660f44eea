"""The web app in a real browser: Debian's headless Chromium driven by Playwright.

A store indexed from package photos and a rendered video (smile 0-3 s,
speaking 3-6 s, smile 6-8 s) is served over gRPC and HTTP on 127.0.0.1 with a
token. The browser logs in, uploads obama.jpg, sees hits with thumbnails,
opens a video hit and checks the player landed on the hit's timestamp (and
plays on from there), names a person and sees the name in the next search,
makes a tag from a face and runs it on the video, and without the token gets
nothing. Screenshots of the pages go to $MIEN_WEB_SCREENSHOTS (else a temp dir).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from web_support import TOKEN, build_web_store, chromium_path, http, start, stop

CHROMIUM = chromium_path()
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: `make system-deps` installs Debian's chromium "
                                                "(as root with apt), or set MIEN_CHROMIUM"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) drives the browser")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    store = build_web_store(tmp_path_factory.mktemp("web"))
    server, web, base = start(store)
    shots = Path(os.environ.get("MIEN_WEB_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield {"store": store, "base": base, "browser": browser, "page": page, "shots": shots}
        browser.close()
    stop(server, web)


def _login(site):
    page = site["page"]
    page.goto(site["base"] + "/")
    assert page.url.endswith("/login"), "the app sends a visitor without a session to the login form"
    page.fill("#token", TOKEN)
    page.click("#login")
    page.wait_for_url(site["base"] + "/")
    # session and CSRF cookies are HttpOnly: no script reads them (the page carries the CSRF value)
    assert page.evaluate("document.cookie") == ""
    return page


def _show_own(page):
    """Let the query's own person into the results (left out by default), once the search answered."""
    page.wait_for_selector("#results .summary")
    if page.locator("#show-own").count():
        page.click("#show-own")
        page.wait_for_selector("#hide-own")
        page.wait_for_selector("#hits .hit-card")


def _cards(page) -> list[dict]:
    """The top-level result cards (not those a "more from this video" opened) as their data attributes."""
    return page.eval_on_selector_all(
        "#hits > .hit-card, #hits > .hit-cell > .hit-card",
        "els => els.map(e => ({...e.dataset, text: e.innerText}))")


def test_search_page_upload_shows_faces_and_hits_with_thumbnails(site):
    page = _login(site)
    page.wait_for_selector("#drop")
    page.set_input_files("#file", str(site["store"].media / "obama.jpg"))
    page.wait_for_selector("#hits .hit-card")
    # by default the query's own person is left out, and said so
    own = page.get_attribute("#own-note", "data-person-id")
    assert int(own) >= 0 and "left out" in page.inner_text("#own-note")
    assert all(c["personId"] != own for c in _cards(page)), _cards(page)
    _show_own(page)
    cards = _cards(page)
    # one hit per track: the video's 16 frames are one card, the photos one each
    keys = [(c["source"], c["trackId"]) for c in cards]
    assert len(keys) == len(set(keys)), keys
    assert sum(c["source"].endswith("obama_moods.avi") for c in cards) == 1
    assert {Path(c["source"]).name for c in cards} >= {"obama.jpg", "obama2.jpg", "obama_moods.avi", "biden.jpg"}
    # every thumbnail decoded in the browser
    page.wait_for_function("[...document.querySelectorAll('#hits .hit-card img')].every(i => i.complete)")
    widths = page.eval_on_selector_all("#hits .hit-card img", "els => els.map(e => e.naturalWidth)")
    assert all(w > 0 for w in widths), widths
    # the query face is outlined with its FaceQA verdict, chosen
    box = page.locator("#query .fbox.chosen")
    assert box.count() == 1 and "ok" in box.inner_text()
    # closest first: the query photo itself (or a video frame of it) at distance ~0
    assert "d 0.00" in cards[0]["text"]
    # the distances are explained once, under the results
    assert "0 the same" in page.inner_text("#legend")
    page.screenshot(path=str(site["shots"] / "search.png"), full_page=True)


def test_more_from_this_video_opens_its_frames_and_back_keeps_the_search(site):
    page = site["page"]
    page.goto(site["base"] + "/#/search")
    page.set_input_files("#file", str(site["store"].media / "obama.jpg"))
    _show_own(page)
    cell = page.locator("#hits > .hit-cell").filter(has_text="obama_moods.avi")
    cell.locator("button.more").click()
    page.wait_for_selector("#hits .more-row .hit-card")
    frames = page.eval_on_selector_all("#hits .more-row .hit-card", "els => els.map(e => e.dataset.source)")
    assert len(frames) >= 10 and all(f.endswith("obama_moods.avi") for f in frames), frames
    # open a frame far down the page, then come Back: the same results, where they were, no new search
    searches = []
    page.on("request", lambda r: searches.append(r.url) if "SearchExpression" in r.url else None)
    page.set_viewport_size({"width": 1280, "height": 500})
    target = page.locator("#hits .more-row .hit-card").last
    target.scroll_into_view_if_needed()
    y = page.evaluate("window.scrollY")
    assert y > 0
    face_id = target.get_attribute("data-face-id")
    target.click()
    page.wait_for_selector("#stage")
    assert page.url.endswith(f"#/hit/{face_id}")
    page.go_back()
    page.wait_for_selector("#hits .hit-card")
    page.wait_for_function(f"() => Math.abs(window.scrollY - {y}) < 5")
    assert searches == [], "Back showed the results it had, without searching again"
    page.set_viewport_size({"width": 1280, "height": 860})


def test_hit_viewer_steps_through_the_results(site):
    page = site["page"]
    page.goto(site["base"] + "/#/search")
    page.wait_for_selector("#hits .hit-card")
    cards = _cards(page)
    page.locator("#hits > .hit-card, #hits > .hit-cell > .hit-card").first.click()
    page.wait_for_selector("#hit-nav")
    assert f"1 of {len(cards)}" in page.inner_text("#hit-nav")
    assert page.is_disabled("#prev-hit")
    page.click("#next-hit")
    page.wait_for_url(f"**/#/hit/{cards[1]['faceId']}")
    # the second hit's page, not the first one's still on screen while it loads
    page.wait_for_selector(f"#hit-nav:has-text('2 of {len(cards)}')")
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(f"**/#/hit/{cards[0]['faceId']}")
    page.wait_for_selector(f"#hit-nav:has-text('1 of {len(cards)}')")
    # components read as words, not identifiers
    page.wait_for_selector("#components li")
    names = page.eval_on_selector_all("#components .cname", "els => els.map(e => e.textContent)")
    assert names and all("_" not in n for n in names), names
    # Back from the viewer is the results (stepping did not pile up history)
    page.click("#back-to-results")
    page.wait_for_selector("#hits .hit-card")
    assert page.url.endswith("#/search")


_DROP_AND_PASTE = """async ([url, how]) => {
    const blob = await (await fetch(url)).blob();
    const data = new DataTransfer();
    data.items.add(new File([blob], "query.jpg", {type: "image/jpeg"}));
    if (how === "drop") {
        document.querySelector("#drop").dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
    } else {
        document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true}));
    }
}"""


@pytest.mark.parametrize("how", ["drop", "paste"])
def test_a_photo_dropped_or_pasted_becomes_the_query(site, how):
    page = site["page"]
    page.goto(site["base"] + "/#/search")
    page.wait_for_selector("#drop")
    biden = site["store"].media / "biden.jpg"
    page.evaluate(_DROP_AND_PASTE, [f"/media/file?uri={biden}", how])
    page.wait_for_function("() => document.querySelector('#query-img') && document.querySelector('#hits .hit-card')")
    assert "biden.jpg" in page.locator("#hits .hit-card").first.inner_text()


def test_video_hit_plays_from_the_hits_timestamp(site):
    page = site["page"]
    page.goto(site["base"] + "/#/search")
    page.set_input_files("#file", str(site["store"].media / "obama.jpg"))
    _show_own(page)
    page.locator("#hits > .hit-cell").filter(has_text="obama_moods.avi").locator("button.more").click()
    page.wait_for_selector("#hits .more-row .hit-card")
    # a frame after the first: a seek that must really move the player
    card = page.locator("#hits .more-row .hit-card:not([data-timestamp-ms='0'])").first
    ts_ms = int(card.get_attribute("data-timestamp-ms"))
    assert ts_ms > 0
    card.click()
    page.wait_for_selector("#player[data-seeked-at]")
    seeked = float(page.get_attribute("#player", "data-seeked-at"))
    assert seeked == pytest.approx(ts_ms / 1000, abs=0.05), "the player starts at the hit's time"
    # and plays on from there (served with range requests, transcoded to WebM for the browser)
    page.wait_for_function("p => p.currentTime > Number(p.dataset.seekedAt) + 0.2",
                           arg=page.query_selector("#player"))
    # back on the hit's frame, the face box is drawn over it; away from it, not
    page.evaluate("p => { p.pause(); p.currentTime = Number(p.dataset.seekedAt); }", page.query_selector("#player"))
    page.wait_for_selector("#stage .fbox.face:not([hidden])")
    box = page.eval_on_selector("#stage .fbox.face", "b => b.getBoundingClientRect().width")
    assert box > 10
    page.evaluate("p => { p.currentTime = Number(p.dataset.seekedAt) + 1.5; }", page.query_selector("#player"))
    page.wait_for_selector("#stage .fbox.face[hidden]", state="attached")
    page.screenshot(path=str(site["shots"] / "hit-video.png"), full_page=True)


def test_naming_a_person_shows_the_name_in_the_next_search(site):
    page = site["page"]
    page.goto(site["base"] + "/#/people")
    page.wait_for_selector("#people-grid .person-tile")
    # a grid of cover faces, most faces first: Obama (his photos and every video frame)
    page.wait_for_function("() => [...document.querySelectorAll('#people-grid img.cover')].every(i => i.complete && i.naturalWidth > 0)")
    tile = page.locator("#people-grid .person-tile").first
    pid = tile.get_attribute("data-person-id")
    tile.locator("a").click()
    page.wait_for_selector("#person-faces .hit-card")
    page.fill("#person-name", "Barack Obama")
    page.click("#rename")
    page.wait_for_selector("#flash.info")
    page.goto(site["base"] + "/#/people")
    page.wait_for_selector("#people-grid .person-tile:has-text('Barack Obama')")
    page.screenshot(path=str(site["shots"] / "people.png"), full_page=True)
    # the search box asks the server: a few letters find him, and only him
    page.fill("#people-search", "bara")
    page.wait_for_function("() => document.querySelector('#people-count').textContent.includes('match')")
    assert page.locator("#people-grid .person-tile").all_inner_texts()[0].startswith("Barack Obama")
    assert page.locator("#people-grid .person-tile").count() == 1
    page.fill("#people-search", "")
    page.goto(site["base"] + "/#/search")
    page.wait_for_selector("#hits .hit-card")
    _show_own(page)
    names = page.locator("#hits .hit-card .person").all_inner_texts()
    assert "Barack Obama" in names, names
    status, _, body = http("GET", f"{site['base']}/v1/persons/{pid}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and b"Barack Obama" in body


def test_tag_from_a_face_runs_on_the_video_and_shows_its_timeline(site):
    page = site["page"]
    page.goto(site["base"] + "/#/search")
    _show_own(page)
    page.locator("#hits .hit-card").first.click()   # obama.jpg itself: the broad smile
    page.wait_for_selector("#tag-face")
    face_id = page.url.rsplit("/", 1)[1]
    page.click("#tag-face")                         # a form on the tags page, not a prompt()
    page.wait_for_url(f"**/#/tags?face={face_id}")
    page.wait_for_selector("#new-tag-preview img")
    page.fill("#new-tag-name", "broad-smile")
    page.click("#create-tag")
    page.wait_for_selector("#tag-list .tag-row[data-tag='broad-smile'] img")
    page.check(f"#tag-videos input[value='{site['store'].video}']")
    page.click("#run-tag")
    page.wait_for_selector("#timeline .tl-result .tl-seg")
    titles = page.eval_on_selector_all("#timeline .tl-seg", "els => els.map(e => e.title)")
    starts = [_seconds(t.split("–")[0]) for t in titles]
    # the smile is on screen 0-3 s and 6-8 s; the speaking seconds carry no segment start
    assert starts and all(s < 3.0 or s >= 6.0 for s in starts), titles
    page.fill("#summary-person", "Barack")
    page.locator("#summary-person + ul li").filter(has_text="Barack Obama").click()
    page.fill("#summary-k", "3")
    page.click("#run-summary")
    page.wait_for_selector("#summary .hit-card")
    # each cluster is labelled by its dominant components
    labels = page.locator("#summary .cluster-label").all_inner_texts()
    assert labels and all("%" in label for label in labels), labels
    page.fill("#corpus-k", "4")
    page.click("#run-corpus")
    page.wait_for_selector("#corpus .hit-card")
    assert page.locator("#corpus .hit-card").count() == 4
    page.screenshot(path=str(site["shots"] / "tags.png"), full_page=True)


def test_tag_from_an_uploaded_photo_threshold_edited_run_on_a_persons_videos(site):
    import shutil

    page = site["page"]
    # a second video of the same person: his videos are two
    second = site["store"].media / "more" / "obama_moods_again.avi"
    second.parent.mkdir(exist_ok=True)
    shutil.copy(site["store"].video, second)
    assert http("POST", f"{site['base']}/v1/Mien/IndexPaths", {"paths": [str(second.parent)]},
                {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    page.goto(site["base"] + "/#/tags")
    page.wait_for_selector("#new-tag-file")
    page.fill("#new-tag-name", "upload-smile")
    page.fill("#new-tag-threshold", "0.4")
    page.set_input_files("#new-tag-file", str(site["store"].media / "obama.jpg"))
    page.wait_for_selector("#new-tag-preview img.photo")
    page.click("#create-tag")
    row = "#tag-list .tag-row[data-tag='upload-smile']"
    page.wait_for_selector(f"{row} img[src^='data:image/jpeg']")   # the face of the photo it was made from
    assert page.input_value(f"{row} input.threshold") == "0.40"
    page.fill(f"{row} input.threshold", "0.3")
    page.click(f"{row} button.save-threshold")
    page.wait_for_selector("#flash.info:has-text('threshold 0.30')")
    tags = json.loads(http("GET", f"{site['base']}/v1/tags", headers={"Authorization": f"Bearer {TOKEN}"})[2])["tags"]
    tag = next(t for t in tags if t["name"] == "upload-smile")
    assert abs(tag["threshold"] - 0.3) < 1e-6 and len(tag["reference_pictures"]) == 1
    # his videos, chosen by picking him; one timeline each, his rows only
    page.goto(site["base"] + "/#/tags")
    page.wait_for_selector("#tag-person")
    page.fill("#tag-person", "Barack")
    page.locator("#tag-person + ul li").filter(has_text="Barack Obama").click()
    page.wait_for_function("() => document.querySelectorAll('#tag-videos input:checked').length === 2")
    page.select_option("#tag-name", "upload-smile")
    page.click("#run-tag")
    page.wait_for_function("() => document.querySelectorAll('#timeline .tl-video.tl-done').length === 2")
    assert page.locator("#timeline .tl-video .tl-result").count() == 2
    assert all("Barack Obama" in t for t in page.locator("#timeline .tl-result").all_inner_texts())


def test_cross_identity_photo_hit_and_split(site):
    page = site["page"]
    page.goto(site["base"] + "/#/cross")
    page.wait_for_selector("#target")
    # search-as-you-type: a few letters suggest the person
    page.fill("#target", "bara")
    page.wait_for_selector(".suggest li")
    page.locator(".suggest li").filter(has_text="Barack Obama").click()
    page.wait_for_selector("#hits .hit-card")
    people = set(page.locator("#hits .hit-card .person").all_inner_texts())
    assert people == {"Barack Obama"}, people
    # a photo hit: the photo itself with the face box over it
    page.locator("#hits .hit-card").filter(has_text="obama2.jpg").click()
    page.wait_for_selector("#stage .fbox")
    assert page.eval_on_selector("#photo", "i => i.naturalWidth") > 0
    # split that face off into a new person from the person's page
    face_id = page.url.rsplit("/", 1)[1]
    page.click("#this-person")
    page.wait_for_selector("#person-faces input.pick")
    page.check(f"#person-faces input.pick[value='{face_id}']")
    page.click("#split")
    page.wait_for_selector("#flash.info")
    page.wait_for_selector("#person-faces .hit-card")
    assert page.locator("#person-faces .hit-card").count() == 1
    assert page.locator(f"#person-faces .hit-card[data-face-id='{face_id}']").count() == 1


def test_without_the_token_the_browser_gets_nothing(site):
    context = site["browser"].new_context()
    page = context.new_page()
    response = page.goto(site["base"] + "/v1/stats")
    assert response.status == 401 and "faces" not in page.content()
    response = page.goto(site["base"] + "/media/play?uri=" + str(site["store"].video))
    assert response.status == 401
    page.goto(site["base"] + "/")
    assert page.url.endswith("/login") and page.locator("#token").count() == 1
    page.fill("#token", "not-the-token")
    page.click("#login")
    assert "Wrong token" in page.content()
    context.close()


def _seconds(clock: str) -> float:
    minutes, seconds = clock.strip().split(":")
    return int(minutes) * 60 + float(seconds)


def test_indexing_page_streams_progress_to_done(site, tmp_path):
    import cv2

    from mien.demo import photos

    media = site["store"].media
    new = media / "new"
    new.mkdir()
    cv2.imwrite(str(new / "biden_mirrored.jpg"), cv2.flip(photos.face_recognition_photo("biden.jpg"), 1))
    secret = tmp_path / "secret.jpg"    # outside the allowed root, reached by a link inside it
    cv2.imwrite(str(secret), photos.face_recognition_photo("obama2.jpg"))
    os.symlink(secret, new / "leads_out.jpg")
    page = site["page"]
    page.goto(site["base"] + "/#/index")
    # the folder picker: the allowed root, then its folders; "Add" lists one to index
    page.wait_for_selector("#folder-picker li.folder")
    page.locator("#folder-picker li.folder button.open").first.click()
    page.wait_for_selector(f"#folder-picker li.folder[data-path='{new}']")
    page.locator(f"#folder-picker li.folder[data-path='{new}'] button.add").click()
    assert page.input_value("#index-paths") == str(new)
    # a relative path and one outside the root are refused on their own; the folder still runs
    page.fill("#index-paths", f"{new}\nnew/relative\n{tmp_path}")
    page.click("#index-start")
    page.wait_for_function("() => document.querySelector('#index-status').textContent.includes('done')")
    status = page.inner_text("#index-status")
    assert status.startswith("2 / 2 files ·") and "· 1 face ·" in status and "1 faces" not in status, status
    assert "1 skipped (outside allowed roots: 1)" in status, status
    refused = page.locator("#index-refused li").all_inner_texts()
    assert len(refused) == 2 and "not an absolute path" in refused[0] and "outside the server's allowed roots" in refused[1]
    assert page.eval_on_selector("#index-progress", "p => p.value === p.max")
    page.screenshot(path=str(site["shots"] / "index.png"), full_page=True)
    # the new face is searchable at once, without a restart
    page.goto(site["base"] + "/#/search")
    page.wait_for_selector("#hits .hit-card")
    page.set_input_files("#file", str(site["store"].media / "biden.jpg"))
    _show_own(page)   # the mirrored photo is Biden's own face
    page.wait_for_selector("#hits .hit-card:has-text('biden_mirrored.jpg')")


_PAGES = ("search", "hit-photo", "hit-video", "cross", "people", "suggestions", "review", "person", "tags", "index",
          "rate")


def _visit(page, base, name, media):
    """Open one page of the app as a person would and wait until it shows its content."""
    if name == "search":
        page.goto(base + "/#/search")
        page.set_input_files("#file", str(media / "obama.jpg"))
        _show_own(page)
    elif name.startswith("hit-"):
        page.goto(base + "/#/search")
        page.wait_for_selector("#hits .hit-card")
        which = "obama_moods.avi" if name == "hit-video" else "obama.jpg"
        page.locator("#hits .hit-card").filter(has_text=which).first.click()
        page.wait_for_selector("#player[data-seeked-at]" if name == "hit-video" else "#stage .fbox")
        if name == "hit-video":  # still, on the hit's frame with its face box
            page.evaluate("p => { p.pause(); p.currentTime = Number(p.dataset.seekedAt); }",
                          page.query_selector("#player"))
            page.wait_for_selector("#stage .fbox.face:not([hidden])")
    elif name == "cross":
        page.goto(base + "/#/cross")
        most = page.evaluate("""async () => (await (await fetch('/v1/persons')).json()).persons
                                 .sort((a, b) => b.face_count - a.face_count)[0].person_id""")
        page.fill("#target", f"#{most}")   # the person with most faces: Obama
        page.press("#target", "Enter")
        page.wait_for_selector("#hits .hit-card")
    elif name == "people":
        page.goto(base + "/#/people")
        page.wait_for_selector("#people-grid .person-tile img")
    elif name in ("suggestions", "review"):
        page.goto(base + f"/#/people?tab={name}")
        page.wait_for_selector("#suggestions, #no-suggestions" if name == "suggestions" else "#single-face, #unassigned")
    elif name == "person":
        page.goto(base + "/#/people")
        page.wait_for_selector("#people-grid .person-tile")
        page.locator("#people-grid .person-tile a").first.click()
        page.wait_for_selector("#person-faces .hit-card")
    elif name == "tags":
        page.goto(base + "/#/tags")
        page.wait_for_selector("#tag-list")
    elif name == "index":
        page.goto(base + "/#/index")
        page.wait_for_selector("#index-paths")
    elif name == "rate":
        page.goto(base + "/#/rate")
        page.wait_for_selector("#rate-faces .rate-face img")
        page.wait_for_function("() => [...document.querySelectorAll('#rate-faces img')].every(i => i.naturalWidth > 0)")
    page.wait_for_timeout(300)


@pytest.mark.parametrize("width", [1280, 390, 360])
def test_every_page_fits_the_screen(site, width):
    """No horizontal scroll, on a desktop or a phone: every page is at most as wide as the screen.
    (The screenshots it takes are the ones in docs/img.)"""
    context = site["browser"].new_context(viewport={"width": width, "height": 800}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    base = site["base"]
    page.goto(base + "/login")
    wide = {}
    page.wait_for_selector("#token")
    if page.evaluate("document.documentElement.scrollWidth") > width:
        wide["login"] = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(site["shots"] / f"web-login-{width}.png"), full_page=True)
    page.fill("#token", TOKEN)
    page.click("#login")
    page.wait_for_url(base + "/")
    for name in _PAGES:
        _visit(page, base, name, site["store"].media)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            wide[name] = scroll_width
        page.screenshot(path=str(site["shots"] / f"web-{name}-{width}.png"), full_page=True)
    context.close()
    assert not wide, f"pages wider than a {width} px screen: {wide}"


def test_the_dark_theme_follows_the_system(site):
    context = site["browser"].new_context(viewport={"width": 1280, "height": 860}, color_scheme="dark")
    page = context.new_page()
    page.goto(site["base"] + "/login")
    page.wait_for_selector("#token")
    rgb = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert sum(int(v) for v in rgb[rgb.index("(") + 1:-1].split(",")[:3]) < 150, rgb
    page.fill("#token", TOKEN)
    page.click("#login")
    page.wait_for_url(site["base"] + "/")
    for name in _PAGES:
        _visit(page, site["base"], name, site["store"].media)
        page.screenshot(path=str(site["shots"] / f"web-{name}-dark.png"), full_page=True)
    panel = page.evaluate("getComputedStyle(document.querySelector('.panel')).backgroundColor")
    assert sum(int(v) for v in panel[panel.index("(") + 1:-1].split(",")[:3]) < 200, panel
    context.close()
    with_light = site["browser"].new_context(color_scheme="light")
    page = with_light.new_page()
    page.goto(site["base"] + "/login")
    rgb = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert sum(int(v) for v in rgb[rgb.index("(") + 1:-1].split(",")[:3]) > 600, rgb
    with_light.close()


def _api(site, method, body):
    status, _, raw = http("POST", f"{site['base']}/v1/Mien/{method}", body, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, raw
    return json.loads(raw)


def test_same_person_suggestions_accepted_rejected_and_faces_moved(site):
    import numpy as np

    from mien.engine.store import Store

    persons = _api(site, "ListPersons", {"order": "PERSON_ORDER_FACES"})["persons"]
    obama = persons[0]
    faces = _api(site, "ListPersonFaces", {"person": {"person_id": obama["person_id"]}, "page_size": 100})["faces"]
    video = [f for f in faces if f["source_uri"].endswith("obama_moods.avi")]
    # two frames split off him: three persons the identity model finds to be one
    a = _api(site, "SplitPerson", {"face_ids": [video[3]["face_id"]]})["person_id"]
    b = _api(site, "SplitPerson", {"face_ids": [video[5]["face_id"]]})["person_id"]
    page = site["page"]
    page.goto(site["base"] + "/#/people?tab=suggestions")
    pair = lambda x, y: f"#suggestions .suggestion[data-a='{min(int(x), int(y))}'][data-b='{max(int(x), int(y))}']"  # noqa: E731
    page.wait_for_selector(pair(obama["person_id"], a))
    page.screenshot(path=str(site["shots"] / "suggestions.png"), full_page=True)
    # accept: one click merges them (into the named one)
    page.locator(pair(obama["person_id"], a)).locator("button.accept").click()
    page.wait_for_selector("#flash.info:has-text('merged into Barack Obama')")
    assert http("GET", f"{site['base']}/v1/persons/{a}", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 404
    # reject: remembered as cannot-link in the store, never suggested again
    page.goto(site["base"] + "/#/people?tab=all")
    page.goto(site["base"] + "/#/people?tab=suggestions")
    page.wait_for_selector(pair(obama["person_id"], b))
    page.locator(pair(obama["person_id"], b)).locator("button.reject").click()
    page.wait_for_selector("#flash.info:has-text('are two people')")
    page.goto(site["base"] + "/#/people?tab=all")
    page.goto(site["base"] + "/#/people?tab=suggestions")
    page.wait_for_selector("#suggestions, #no-suggestions")
    assert page.locator(pair(obama["person_id"], b)).count() == 0
    pairs = {(int(s["person_a"]["person_id"]), int(s["person_b"]["person_id"]))
             for s in _api(site, "SuggestMerges", {})["suggestions"]}
    key = (min(int(obama["person_id"]), int(b)), max(int(obama["person_id"]), int(b)))
    assert key not in pairs
    with Store(site["store"].store_dir, mode="r") as store:
        assert key in store.cannot_links()
    # move: select the face on B's page, pick Obama in the search box
    page.goto(site["base"] + f"/#/person/{b}")
    page.wait_for_selector("#person-faces input.pick")
    page.check("#person-faces input.pick")
    page.wait_for_selector("#selection:not([hidden])")
    page.fill("#move-target", "Barack")
    page.locator("#selection .suggest li").filter(has_text="Barack Obama").click()
    page.wait_for_selector("#flash.info:has-text('moved to Barack Obama')")
    moved = _api(site, "GetFace", {"face_id": video[5]["face_id"]})
    assert moved["person_id"] == obama["person_id"]
    assert http("GET", f"{site['base']}/v1/persons/{b}", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 404
    assert np.isfinite(float(moved["sharpness"]))


def test_a_merge_refused_for_one_frame_says_where_and_may_go_ahead(site):
    import cv2

    from mien.demo import photos
    from mien.engine.store import Store

    group = site["store"].media / "group"
    group.mkdir(exist_ok=True)
    cv2.imwrite(str(group / "t1.jpg"), photos.t1())
    status, _, _ = http("POST", f"{site['base']}/v1/Mien/IndexPaths", {"paths": [str(group)]},
                        {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    with Store(site["store"].store_dir, mode="w") as store:   # two people of one photo, as two persons
        t1 = [f.face_id for f in store.faces_of_source(str(group / "t1.jpg"), thumbnail=False)]
        ident = store.vectors(t1[:2], kind="identity")
        a, b = store.add_person(None, ident[0]), store.add_person(None, ident[1])
        store.set_faces_person([t1[0]], a)
        store.set_faces_person([t1[1]], b)
    page = site["page"]
    page.goto(site["base"] + f"/#/person/{a}")
    page.wait_for_selector("#merge-target")
    page.fill("#merge-target", f"#{b}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".person-head .suggest li").filter(has_text=f"person #{b}").click()
    page.wait_for_selector("#flash-action")
    message = page.inner_text("#flash")
    assert "are both in t1.jpg," in message and "two faces in one frame are two people" in message, message
    assert "allow_same_frame" not in message and "ms" not in message.split("Merge anyway")[0]
    assert http("GET", f"{site['base']}/v1/persons/{a}", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    page.click("#flash-action")   # the detector found one face twice: the person says so
    page.wait_for_selector("#flash.info:has-text('merged into')")
    assert http("GET", f"{site['base']}/v1/persons/{a}", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 404


def test_the_rate_page_records_answers_mien_can_learn_from(site):
    """FEC's question about three of the store's faces; keys 1 2 3 answer, 0 can't tell; each answer
    is a row of the store's ratings file that resolves back to the store's faces."""
    from mien.engine.store import Store
    from mien.training.rated import read_rated, table_from_store

    context = site["browser"].new_context(viewport={"width": 1280, "height": 860})   # a rater of their own
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(site["base"] + "/login")
    page.fill("#token", TOKEN)
    page.click("#login")
    page.wait_for_url(site["base"] + "/")
    ratings = site["store"].store_dir / "ratings.csv"
    page.goto(site["base"] + "/#/rate")
    page.wait_for_selector("#rate-faces .rate-face img")
    assert "most unlike the other two" in page.inner_text("#rate-question")
    page.keyboard.press("1")          # no rater yet: asked for a name, nothing written
    page.wait_for_selector("#flash:not([hidden])")
    assert not ratings.exists()
    page.fill("#rate-rater", "ann")
    page.dispatch_event("#rate-rater", "change")
    shown = "() => [...document.querySelectorAll('#rate-faces img')].map(i => i.src).join(' ')"
    for key in ("1", "0", "3", "2"):
        page.wait_for_function("() => [...document.querySelectorAll('#rate-faces img')]"
                               ".every(i => i.naturalWidth > 0)")
        before = page.evaluate(shown)
        page.locator("#rate-faces").click()        # the keys work wherever the page has the focus
        page.keyboard.press(key)
        page.wait_for_function(f"() => ({shown})() !== {json.dumps(before)}")   # the next triplet
    page.wait_for_function("() => document.querySelector('#rate-count').textContent.startsWith('3 answers by ann')")
    triplets, stats = read_rated([ratings])
    assert stats.malformed == 0 and sorted(a for t in triplets for a in t.answers) == [("ann", 1), ("ann", 2), ("ann", 3)]
    with Store(site["store"].store_dir, mode="r") as store:
        table, missing = table_from_store(store, triplets)
    assert missing == 0
    assert page.evaluate("localStorage.getItem('mien-rater')") == "ann"   # remembered for the next visit
    context.close()
