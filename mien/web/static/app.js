// mien web app: plain JavaScript, no build step. Every call goes to the JSON API
// under /v1/ (the same servicer methods as gRPC). Text from the store is always
// set with textContent, never parsed as HTML.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const view = () => $("#view");

// h("div.card", {onclick}, child, "text", ...) -> element
function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "style") Object.assign(el.style, v);
    else if (k in el && k !== "list") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// The CSRF value comes in the page (its cookie is HttpOnly: no script of any origin reads it).
function csrf() {
  const meta = document.querySelector('meta[name="mien-csrf"]');
  return meta ? meta.content : "";
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error && body.error.status;
    // google.rpc.ErrorInfo: a stable reason ("SAME_FRAME") and its facts
    const info = ((body && body.error && body.error.details) || []).find((d) => d.reason) || {};
    this.reason = info.reason || "";
    this.metadata = info.metadata || {};
  }
}

// GET when body is undefined, else POST the body as JSON.
async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
  };
  const r = await fetch(path, opts);
  if (r.status === 401) { location.href = "/login"; throw new ApiError(401, null); }
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, data);
  // an edit (a rename, a merge, a tag...) makes the results on hand stale: the next visit searches again
  if (body !== undefined && !/Search/.test(path)) state.results = null;
  return data;
}

function flash(message, kind = "error") {
  const f = $("#flash");
  f.textContent = message;
  f.className = kind === "info" ? "info" : "";
  f.hidden = !message;
  if (message && kind === "info") setTimeout(() => { if (f.textContent === message) f.hidden = true; }, 4000);
}

// A refusal that a person may override: the message and one button that does it anyway.
function flashAction(message, label, action) {
  const f = $("#flash");
  f.className = "";
  f.hidden = false;
  f.replaceChildren(h("span", message), " ",
    h("button.danger", { id: "flash-action", type: "button", onclick: () => { f.hidden = true; guarded(action); } }, label),
    " ", h("button.secondary", { type: "button", onclick: () => { f.hidden = true; } }, "Cancel"));
}

async function guarded(fn) {
  try { if (!$("#flash").classList.contains("info")) flash(""); return await fn(); }
  catch (e) { flash(e.message); return undefined; }
}

// ------------------------------------------------------------------ shared state

const state = {
  query: null,        // {kind: "image", data: base64, url, faceIndex, name} | {kind: "face", faceId}
  lastReply: null,
  results: null,      // the last search as shown: {key, hits, reply, maxDistance} (Back shows it again)
  scroll: {},         // page hash -> scroll position, restored when Back returns there
  persons: null,      // [{person_id, name, face_count}]
  sources: null,      // uri -> Source
  target: "",         // cross-identity target (name or "#id")
  // by default one hit per track, and the query's own person left out: a search by a photo of
  // someone is about the expression, not about finding the same frames of them again
  filters: { person: "", exclude_own: true, source: "", from_s: "", to_s: "", max_distance: "0.5",
             per_track: true, top_k: "24" },
};

async function persons(refresh = false) {
  if (!state.persons || refresh) state.persons = (await api("/v1/persons")).persons;
  return state.persons;
}

async function sources(refresh = false) {
  if (!state.sources || refresh) {
    const map = new Map();
    let token = "";
    do {
      const page = await api(`/v1/sources?page_size=1000${token ? "&page_token=" + encodeURIComponent(token) : ""}`);
      for (const s of page.sources) map.set(s.uri, s);
      token = page.next_page_token;
    } while (token);
    state.sources = map;
  }
  return state.sources;
}

function personLabel(id, name) {
  if (Number(id) < 0) return "unknown person";
  return name ? name : `person #${id}`;
}

function personRef(text) {
  text = text.trim();
  const m = text.match(/^#(\d+)$/);
  return m ? { person_id: m[1] } : { name: text };
}

const base = (uri) => uri.split("/").pop();
// A file path that may wrap at its slashes, never inside a name.
const pathText = (uri) => uri.split("/").flatMap((part, i) => (i ? [h("wbr"), "/" + part] : [part]));
// "1 face", "2 faces"
const plural = (n, one, many = one + "s") => `${n} ${Number(n) === 1 ? one : many}`;

// Expression components as people say them (the FACS action unit in brackets).
const COMPONENT_LABELS = {
  angry: "anger", disgust: "disgust", fear: "fear", happy: "happiness", sad: "sadness", surprise: "surprise",
  neutral: "neutral", inner_brow_raise: "inner brow raise (AU1)", outer_brow_raise: "outer brow raise (AU2)",
  brow_lowerer: "brow lowered (AU4)", upper_lid_raise: "upper lid raise (AU5)", cheek_raise: "cheek raise (AU6)",
  lid_tighten: "lid tighten (AU7)", nose_wrinkle: "nose wrinkle (AU9)", upper_lip_raise: "upper lip raise (AU10)",
  lip_corner_pull: "lip corner pull (AU12)", lip_corner_depress: "lip corner down (AU15)",
  chin_raise: "chin raise (AU17)", lip_stretch: "lip stretch (AU20)", lip_press: "lip press (AU24)",
  lips_part: "lips part (AU25)", jaw_drop: "jaw drop (AU26)", eye_closure: "eye closure (AU43)",
};
const componentLabel = (name) => COMPONENT_LABELS[name] || name.replace(/_/g, " ");
const shortLabel = (name) => componentLabel(name).replace(/ \(AU\d+\)$/, "");
function clock(ms) {
  const s = Number(ms) / 1000;
  const m = Math.floor(s / 60);
  return `${m}:${(s - m * 60).toFixed(1).padStart(4, "0")}`;
}
const thumbSrc = (hit) => hit.thumbnail ? `data:image/jpeg;base64,${hit.thumbnail}` : `/v1/faces/${hit.face_id}/thumbnail.jpg`;

async function refreshStats() {
  const s = await api("/v1/stats").catch(() => null);
  if (s) $("#stats").textContent = [plural(s.faces, "face"), plural(s.sources, "source"),
                                     plural(s.persons, "person", "people"), plural(s.tags, "tag")].join(" · ");
}

// ------------------------------------------------------------------ search + cross-identity

function readImage(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function setImage(file) {
  if (!file || !file.type.startsWith("image/")) { flash("That is not an image file."); return; }
  const url = await readImage(file);
  state.query = { kind: "image", data: url.split(",", 2)[1], url, faceIndex: null, name: file.name,
                  serial: (state.query && state.query.serial || 0) + 1 };
  runSearch();
}

function faceQuery() {
  const q = state.query;
  if (!q) return null;
  if (q.kind === "face") return { face_id: q.faceId };
  const out = { image: { data: q.data } };
  // without a choice, the first face (left to right): the reply lists them all to pick from
  out.face_index = q.faceIndex === null ? 0 : q.faceIndex;
  return out;
}

function searchPage(cross) {
  const root = view();
  root.replaceChildren();
  const f = state.filters;
  const input = h("input", { type: "file", accept: "image/*", id: "file", hidden: true,
                             onchange: (e) => setImage(e.target.files[0]) });
  const drop = h("div.drop", { id: "drop", tabIndex: 0, onclick: () => input.click() },
                 "Drop a photo here, paste one (Ctrl+V), or click to choose a file", input);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); setImage(e.dataTransfer.files[0]); });

  const field = (label, el) => h("label", label, el);
  const bind = (el, key, prop = "value") => {
    el[prop] = f[key];
    el.addEventListener("change", () => { f[key] = el[prop]; runSearch(); });
    return el;
  };
  // the person filter: a search box (ListPersons query), not a list of everyone
  const personSel = personPicker("f-person", f.personLabel || "", (value, p) => {
    f.person = p ? p.person_id : "";
    f.personLabel = p ? value : "";
    runSearch();
  }, { placeholder: "anyone" });
  const sourceSel = bind(h("select", { id: "f-source" }, h("option", { value: "" }, "all sources")), "source");
  const filters = h("form.filters", { id: "filters", onsubmit: (e) => e.preventDefault() },
    cross ? null : field("Person", personSel),
    cross ? null : field("Source", sourceSel),
    field("From (s)", bind(h("input", { type: "number", min: 0, step: "0.1", id: "f-from" }), "from_s")),
    field("To (s)", bind(h("input", { type: "number", min: 0, step: "0.1", id: "f-to" }), "to_s")),
    field("Max distance", bind(h("input", { type: "number", min: 0, max: 4, step: "0.05", id: "f-maxd" }), "max_distance")),
    field("Results", bind(h("input", { type: "number", min: 1, max: 200, id: "f-topk" }), "top_k")),
    cross ? null : h("label.check", bind(h("input", { type: "checkbox", id: "f-exclude" }), "exclude_own", "checked"), "exclude own person"),
    h("label.check", bind(h("input", { type: "checkbox", id: "f-track" }), "per_track", "checked"), "one per track"),
  );
  let targetBox = null;
  if (cross) {
    targetBox = personPicker("target", state.target, (value) => { state.target = value; runSearch(); });
  }
  const panel = h("div.panel",
    h("h2", cross ? "Cross-identity: this expression, on another person" : "Search by expression"),
    cross ? h("p.muted", "The query face's expression, searched only among the target person's faces.") : null,
    cross ? field("Target person", targetBox) : null,
    drop, h("div.query", { id: "query" }), filters);
  root.append(h("div.cols", panel, h("section", { id: "results" })));
  sources().then((ss) => {
    for (const s of ss.values()) sourceSel.append(h("option", { value: s.uri }, base(s.uri)));
    sourceSel.value = f.source;
  }).catch(() => {});
  renderQuery();
  if (state.query && state.results && state.results.key === searchKey(cross)) {
    // Back from a hit: the same results where they were, no new search
    renderHits($("#results"), state.results);
    restoreScroll();
  } else if (state.query) runSearch();
  else $("#results").append(h("p.muted", "Results appear here: the faces whose expression is closest to the query face's."));
}

// What identifies a search: the page, the query, the filters, the target.
function searchKey(cross) {
  const q = state.query || {};
  return JSON.stringify([cross, q.kind, q.faceId, q.serial, q.faceIndex, state.filters, cross ? state.target : ""]);
}

// A search box for one person: names (or #id) suggested as you type, asked of the server
// (ListPersons query), with their cover faces; never a list of everyone.
function personPicker(id, value, onpick, { placeholder = "name or #id", exclude = null } = {}) {
  const box = h("input", { type: "search", id, value, placeholder, autocomplete: "off" });
  const list = h("ul", { hidden: true });
  const wrap = h("div.suggest", box, list);
  let seq = 0;
  const show = async () => {
    const q = box.value.trim();
    const mine = ++seq;
    const params = new URLSearchParams({ page_size: "12", order: "PERSON_ORDER_FACES", include_covers: "true" });
    if (q) params.set("query", q);
    const page = await api(`/v1/persons?${params}`).catch(() => null);
    if (!page || mine !== seq || document.activeElement !== box) return;  // picked or left meanwhile
    const matches = page.persons.filter((p) => String(p.person_id) !== String(exclude));
    list.replaceChildren(...matches.map((p) => h("li", {
      "data-person-id": p.person_id,
      onmousedown: (e) => { e.preventDefault(); seq++; box.value = p.name || `#${p.person_id}`; list.hidden = true; onpick(box.value, p); },
    }, coverImg(p, "mini"), h("span", `${personLabel(p.person_id, p.name)} · ${plural(p.face_count, "face")}`))));
    list.hidden = !matches.length;
  };
  let timer = null;
  box.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(show, 150); });
  box.addEventListener("focus", show);
  box.addEventListener("blur", () => { list.hidden = true; });
  box.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    seq++;  // a list still on its way must not open again
    list.hidden = true;
    onpick(box.value, null);
  });
  return wrap;
}

const coverImg = (p, cls = "") => Number(p.cover_face_id)
  ? h(`img.cover${cls ? "." + cls : ""}`, { src: `/v1/faces/${p.cover_face_id}/thumbnail.jpg`, alt: "", loading: "lazy" })
  : h(`span.cover.none${cls ? "." + cls : ""}`);

function renderQuery() {
  const el = $("#query");
  if (!el) return;
  el.replaceChildren();
  const q = state.query;
  if (!q) return;
  if (q.kind === "face") {
    el.append(h("p", "Query: stored face ", h("a", { href: `#/hit/${q.faceId}` }, `#${q.faceId}`)),
              h("img", { src: `/v1/faces/${q.faceId}/thumbnail.jpg`, className: "query-face", alt: `face ${q.faceId}` }));
    return;
  }
  const img = h("img", { src: q.url, alt: q.name || "query photo", id: "query-img" });
  el.append(img);
  const reply = state.lastReply;
  const faces = (reply && reply.query && reply.query.faces) || [];
  const place = () => {
    el.querySelectorAll(".fbox").forEach((b) => b.remove());
    const sx = img.clientWidth / img.naturalWidth, sy = img.clientHeight / img.naturalHeight;
    for (const face of faces) {
      const b = face.bbox;
      const passed = face.quality_passed;
      const chosen = reply.query.face_index === face.index;
      const verdict = passed ? "FaceQA ok" : `FaceQA: ${face.quality_reason || "rejected"}`;
      el.append(h(`div.fbox${passed ? "" : ".rejected"}${chosen ? ".chosen" : ""}`, {
        title: `face ${face.index}: ${verdict} (click to search with it)`,
        "data-face-index": face.index,
        style: { left: `${b.x1 * sx}px`, top: `${b.y1 * sy}px`, width: `${(b.x2 - b.x1) * sx}px`, height: `${(b.y2 - b.y1) * sy}px` },
        onclick: () => { state.query.faceIndex = face.index; runSearch(); },
      }, h("span", `${face.index}${chosen ? " ✓" : ""} · ${passed ? "ok" : "QA: " + (face.quality_reason || "rejected")}`)));
    }
  };
  if (img.complete && img.naturalWidth) place(); else img.addEventListener("load", place);
  if (faces.length > 1) el.append(h("p.muted", `${faces.length} faces found: click a box to search with that face.`));
}

let searchSeq = 0;

// The request body of the current search; extra: fields to override (a "more from this video" look).
function searchRequest(cross, extra = {}) {
  const f = state.filters;
  const topK = Math.max(1, Math.min(200, Number(f.top_k) || 24));
  const body = { query: faceQuery(), top_k: topK, include_thumbnails: true, explain: true,
                 distinct: f.per_track ? "DISTINCT_TRACK" : "DISTINCT_NONE" };
  const range = {};
  if (f.from_s !== "") range.start_ms = String(Math.round(Number(f.from_s) * 1000));
  if (f.to_s !== "") range.end_ms = String(Math.round(Number(f.to_s) * 1000));
  body.filters = {};
  if (Object.keys(range).length) body.filters.time_range = range;
  if (cross) {
    body.target = personRef(state.target);
  } else {
    if (f.person) body.filters.persons = [{ person_id: f.person }];
    if (f.source) body.filters.sources = [f.source];
    body.query.exclude_own_person = !!f.exclude_own;
  }
  if (extra.source) { body.filters.sources = [extra.source]; body.distinct = "DISTINCT_NONE"; }
  return body;
}

async function runSearch() {
  const results = $("#results");
  if (!results || !state.query) return;
  const cross = location.hash.startsWith("#/cross");
  if (cross && !state.target.trim()) {
    results.replaceChildren(h("p.muted", "Choose the target person: whose faces to search among."));
    renderQuery();
    return;
  }
  const key = searchKey(cross);
  const path = cross ? "/v1/Mien/CrossIdentitySearch" : "/v1/Mien/SearchExpression";
  const seq = ++searchSeq;
  results.replaceChildren(h("p.muted", "Searching…"));
  let reply;
  try {
    flash("");
    reply = await api(path, searchRequest(cross));
  } catch (e) {
    if (seq !== searchSeq) return;
    results.replaceChildren();
    flash(e.message);
    return;
  }
  if (seq !== searchSeq) return;
  state.lastReply = reply;
  state.results = { key, cross, hits: reply.hits, reply, maxDistance: Number(state.filters.max_distance) };
  renderQuery();
  renderHits(results, state.results);
}

function renderHits(root, results) {
  const { hits, reply, maxDistance, cross } = results;
  const f = state.filters;
  root.replaceChildren();
  const close = hits.filter((x) => !(x.distance > maxDistance));
  const far = hits.filter((x) => x.distance > maxDistance);
  root.append(h("p.muted.summary", `${plural(hits.length, "face")} in ${Number(reply.elapsed_ms || 0).toFixed(0)} ms` +
                                   (f.per_track ? " · one per track" : "")),
              distanceLegend(maxDistance));
  // the query's person: the server finds it when asked to leave it out; remembered for the same query
  let own = reply.query ? Number(reply.query.person_id) : -1;
  if (own >= 0 && state.query) state.query.ownPerson = own;
  else if (state.query && state.query.ownPerson !== undefined) own = state.query.ownPerson;
  if (!cross && own >= 0) {
    const who = personLabel(own, (state.persons || []).find((p) => String(p.person_id) === String(own))?.name);
    const toggle = (on) => () => { f.exclude_own = on; runSearch(); };
    root.append(f.exclude_own
      ? h("p.notice.own", { id: "own-note", "data-person-id": own }, `The query face is ${who}: their own faces are left out. `,
          h("a", { href: "#", id: "show-own", onclick: (e) => { e.preventDefault(); toggle(false)(); } }, "Show them"))
      : h("p.muted.own", { id: "own-note", "data-person-id": own }, `Showing ${who}'s own faces too. `,
          h("a", { href: "#", id: "hide-own", onclick: (e) => { e.preventDefault(); toggle(true)(); } }, "Leave them out")));
  }
  if (!hits.length) {
    root.append(h("div.notice", { id: "no-match" }, "No faces match these filters."));
    return;
  }
  if (!close.length) {
    root.append(h("div.notice", { id: "no-match" },
      `No close match: the nearest face is at distance ${hits[0].distance.toFixed(2)} (> ${maxDistance}). The nearest ones follow, for what they are worth.`));
  }
  const grid = h("div.grid", { id: "hits" });
  for (const hit of [...close, ...far]) {
    const card = hitCard(hit, hit.distance > maxDistance);
    const src = state.sources && state.sources.get(hit.source_uri);
    const isVideo = src ? src.kind === "SOURCE_KIND_VIDEO" : Number(hit.timestamp_ms) > 0;
    if (f.per_track && isVideo) {  // a track stands for its video's frames: they open below it
      const cell = h("div.hit-cell", card);
      const more = h("button.more", { type: "button", "data-source": hit.source_uri,
                                      onclick: () => moreFromVideo(grid, cell, hit, cross, more) },
                     "more from this video");
      cell.append(more);
      grid.append(cell);
      const opened = results.more && results.more[hit.face_id];
      if (opened) showMore(grid, cell, hit, opened, more);  // Back: as it was left
    } else grid.append(card);
  }
  root.append(grid);
}

// One line under the results saying what the distance numbers mean.
function distanceLegend(maxDistance) {
  return h("p.legend", { id: "legend" },
    h("b", "d"), " = distance between two expressions: 0 the same, ",
    h("span.swatch.near"), " under 0.2 nearly the same, ",
    h("span.swatch.close"), ` up to ${Number.isFinite(maxDistance) ? maxDistance : 0.5} alike (the tag threshold is 0.5), `,
    h("span.swatch.far"), " beyond that greyed; 2 and more, unlike.");
}

// Below a video's card: its other frames close to the query (the same search, in that video only).
async function moreFromVideo(grid, cell, hit, cross, button) {
  const results = state.results;
  const open = grid.querySelector(`.more-row[data-for="${hit.face_id}"]`);
  if (open) {
    open.remove();
    button.textContent = "more from this video";
    if (results.more) delete results.more[hit.face_id];
    return;
  }
  const row = h("div.more-row", { "data-for": hit.face_id }, h("p.muted", `Searching ${base(hit.source_uri)}…`));
  cell.after(row);
  await guarded(async () => {
    const path = cross ? "/v1/Mien/CrossIdentitySearch" : "/v1/Mien/SearchExpression";
    const reply = await api(path, searchRequest(cross, { source: hit.source_uri }));
    row.remove();
    results.more = { ...(results.more || {}), [hit.face_id]: reply };
    showMore(grid, cell, hit, reply, button);
  });
}

function showMore(grid, cell, hit, reply, button) {
  const maxD = Number(state.filters.max_distance);
  cell.after(h("div.more-row", { "data-for": hit.face_id },
    h("p.muted", `${plural(reply.hits.length, "frame")} of ${base(hit.source_uri)}, closest first`),
    h("div.grid.more-grid", reply.hits.map((x) => hitCard(x, x.distance > maxD)))));
  button.textContent = "fewer from this video";
}

function hitCard(hit, isFar) {
  const src = state.sources && state.sources.get(hit.source_uri);
  const video = Number(hit.timestamp_ms) > 0 || (src && src.kind === "SOURCE_KIND_VIDEO");
  const d = hit.distance;
  return h(`a.card.hit-card${isFar ? ".far" : ""}`, { href: `#/hit/${hit.face_id}`, "data-face-id": hit.face_id,
                                                     "data-timestamp-ms": hit.timestamp_ms, title: hit.source_uri,
                                                     "data-source": hit.source_uri, "data-track-id": hit.track_id,
                                                     "data-person-id": hit.person_id },
    h("img", { src: thumbSrc(hit), alt: `face ${hit.face_id}`, loading: "lazy" }),
    h("div.meta",
      h("div", h(`b.dist${d < 0.2 ? ".near" : d <= 0.5 ? ".close" : ""}`, `d ${d.toFixed(3)}`)),
      h("div.person", personLabel(hit.person_id, hit.person_name)),
      h("div.muted.where", base(hit.source_uri)),
      video ? h("div.muted.when", clock(hit.timestamp_ms)) : null,
      // why it matched: the named components query and hit share most (named encoders only)
      hit.agreeing && hit.agreeing.length
        ? h("div.why", { title: "what query and hit share most (↑ both strong, ↓ both the opposite way)" },
            hit.agreeing.slice(0, 2).map((c) => `${shortLabel(c.name)} ${c.query_value < 0 ? "↓" : "↑"}`).join(", "))
        : null));
}

// ------------------------------------------------------------------ one hit

function restoreScroll() {
  const y = state.restoreY || 0;   // read when the page was left for good, before rendering clamped it
  requestAnimationFrame(() => window.scrollTo(0, y));
}

// The box of a face over an <img> or <video> shown smaller than its pixels.
function placeBox(stage, media, bbox, naturalW, naturalH) {
  let box = stage.querySelector(".fbox.face");
  if (!box) { box = h("div.fbox.chosen.face"); stage.append(box); }
  const sx = media.clientWidth / naturalW, sy = media.clientHeight / naturalH;
  Object.assign(box.style, { left: `${bbox.x1 * sx}px`, top: `${bbox.y1 * sy}px`,
                             width: `${(bbox.x2 - bbox.x1) * sx}px`, height: `${(bbox.y2 - bbox.y1) * sy}px` });
  return box;
}

async function hitPage(faceId) {
  const root = view();
  root.replaceChildren(h("p.muted", "Loading…"));
  const rec = await api(`/v1/faces/${faceId}`);
  const srcs = await sources().catch(() => new Map());
  const src = srcs.get(rec.source_uri);
  const isVideo = src ? src.kind === "SOURCE_KIND_VIDEO" : Number(rec.timestamp_ms) > 0;
  const session = await api("/v1/session");
  const stage = h("div.stage", { id: "stage" });
  const uri = encodeURIComponent(rec.source_uri);
  if (!session.allowed_roots) {
    stage.append(h("img", { src: `/v1/faces/${faceId}/thumbnail.jpg` }),
                 h("p.muted", "This server shows no source files (start it with --allow-root DIR)."));
  } else if (isVideo) {
    const start = Number(rec.timestamp_ms) / 1000;
    const video = h("video", { id: "player", controls: true, muted: true, preload: "auto", playsInline: true,
                               src: `/media/play?uri=${uri}`, "data-start": start });
    let seeked = false;
    // the face box while the player shows the hit's frame (a sample period either side)
    const near = () => Math.abs(video.currentTime - start) < 0.3;
    const showBox = () => {
      if (!video.videoWidth) return;
      const box = placeBox(stage, video, rec.bbox, video.videoWidth, video.videoHeight);
      box.hidden = !near();
    };
    video.addEventListener("loadedmetadata", () => { video.currentTime = start; });
    video.addEventListener("seeked", () => {
      showBox();
      if (seeked) return;
      seeked = true;
      video.dataset.seekedAt = String(video.currentTime);  // where the player landed (the tests read it)
      video.play().catch(() => {});
    });
    video.addEventListener("timeupdate", showBox);
    window.addEventListener("resize", showBox);
    video.addEventListener("error", () => flash("The browser cannot play this video."));
    stage.append(video);
  } else {
    const img = h("img", { id: "photo", src: `/media/file?uri=${uri}`, alt: base(rec.source_uri) });
    const show = () => placeBox(stage, img, rec.bbox, img.naturalWidth, img.naturalHeight);
    img.addEventListener("load", show);
    window.addEventListener("resize", () => { if (img.naturalWidth) show(); });
    img.addEventListener("error", () => flash("The server would not show this file."));
    stage.append(img);
  }
  const comps = (rec.components || []).slice().sort((a, b) => Math.abs(b.value) - Math.abs(a.value)).slice(0, 5);
  const side = h("div.panel",
    h("img", { src: `data:image/jpeg;base64,${rec.thumbnail}`, className: "face-thumb", alt: `face ${rec.face_id}` }),
    h("dl.facts",
      h("dt", "face"), h("dd", `#${rec.face_id}`),
      h("dt", "person"), h("dd", Number(rec.person_id) >= 0
        ? h("a", { href: `#/person/${rec.person_id}` }, personLabel(rec.person_id, rec.person_name)) : "unknown"),
      h("dt", "source"), h("dd.path", pathText(rec.source_uri)),
      h("dt", "time"), h("dd", isVideo ? `${clock(rec.timestamp_ms)} (frame ${rec.frame_index})` : "still image"),
      h("dt", "FaceQA"), h("dd", `sharpness ${rec.sharpness.toFixed(1)}, yaw ${rec.yaw.toFixed(0)}°, pitch ${rec.pitch.toFixed(0)}°`),
      comps.length ? h("dt", "expression") : null,
      comps.length ? h("dd", h("ul.components", { id: "components" }, comps.map((c) => h("li",
        h("span.cname", componentLabel(c.name)),
        h("span.cvalue", c.kind === "emotion" ? `${(c.value * 100).toFixed(0)}%` : c.value.toFixed(2)))))) : null),
    h("div.actions",
      h("button", { id: "more-like-this", onclick: () => { state.query = { kind: "face", faceId: rec.face_id, serial: Date.now() }; location.hash = "#/search"; } }, "More like this"),
      Number(rec.person_id) >= 0 ? h("button.secondary", { id: "this-person", onclick: () => { location.hash = `#/person/${rec.person_id}`; } }, "This person") : null,
      h("button.secondary", { id: "tag-face", onclick: () => { location.hash = `#/tags?face=${rec.face_id}`; } }, "Make a tag of this expression")));
  root.replaceChildren(h("div.hit", h("div", hitNav(rec.face_id), stage), side));
}

// Previous / next through the results the hit was opened from (arrow keys too), and back to them.
let hitKeys = null;
function hitNav(faceId) {
  const hits = (state.results && state.results.hits) || [];
  const i = hits.findIndex((x) => String(x.face_id) === String(faceId));
  if (hitKeys) document.removeEventListener("keydown", hitKeys);
  hitKeys = null;
  if (i < 0) return null;
  const prev = hits[i - 1], next = hits[i + 1];
  // replace, not push: Back from any of them returns to the results
  const go = (hit) => { if (hit) location.replace(`#/hit/${hit.face_id}`); };
  hitKeys = (e) => {
    if (!location.hash.startsWith("#/hit/") || e.target.closest("input, textarea, select")) return;
    if (e.key === "ArrowLeft") go(prev);
    if (e.key === "ArrowRight") go(next);
  };
  document.addEventListener("keydown", hitKeys);
  return h("nav.hit-nav", { id: "hit-nav" },
    h("button.secondary", { id: "back-to-results", type: "button", onclick: () => history.back() }, "← Results"),
    h("button.secondary", { id: "prev-hit", type: "button", disabled: !prev, onclick: () => go(prev) }, "‹ Previous"),
    h("span.muted", `${i + 1} of ${hits.length}`),
    h("button.secondary", { id: "next-hit", type: "button", disabled: !next, onclick: () => go(next) }, "Next ›"));
}


// ------------------------------------------------------------------ people (as Immich shows them)

const PEOPLE_PAGE = 48;

// What changed the persons: the figures, the cached list and any results on hand are stale.
function personsChanged() {
  state.persons = null;
  state.results = null;
  refreshStats();
}

async function peoplePage(params) {
  const tab = params.tab || "all";
  const root = view();
  const tabs = h("nav.tabs", { id: "people-tabs" },
    [["all", "People"], ["suggestions", "Same person?"], ["review", "Review"]].map(([key, label]) =>
      h(`a${key === tab ? ".active" : ""}`, { href: `#/people?tab=${key}`, "data-tab": key }, label)));
  const body = h("div", { id: "people-body" }, h("p.muted", "Loading…"));
  root.replaceChildren(h("div.panel", { id: "people" }, tabs, body));
  if (tab === "suggestions") await suggestionsView(body, null);
  else if (tab === "review") await reviewView(body);
  else await peopleGrid(body);
}

function personTile(p, extra = null) {
  return h("div.person-tile", { "data-person-id": p.person_id },
    h("a", { href: `#/person/${p.person_id}` }, coverImg(p),
      h("div.name", personLabel(p.person_id, p.name)), h("div.muted", plural(p.face_count, "face"))),
    extra);
}

async function peopleGrid(body) {
  const search = h("input", { type: "search", id: "people-search", placeholder: "Find a person: name or #id", value: state.peopleQuery || "" });
  const order = h("select", { id: "people-order" },
    h("option", { value: "PERSON_ORDER_FACES" }, "most faces first"), h("option", { value: "PERSON_ORDER_NAME" }, "by name"),
    h("option", { value: "PERSON_ORDER_ID" }, "oldest first"));
  order.value = state.peopleOrder || "PERSON_ORDER_FACES";
  const count = h("p.muted", { id: "people-count" });
  const grid = h("div.people-grid", { id: "people-grid" });
  const more = h("button.secondary", { id: "people-more", hidden: true, type: "button" }, "More people");
  let token = "", seq = 0;
  const load = (reset) => guarded(async () => {
    const mine = ++seq;
    const q = new URLSearchParams({ page_size: String(PEOPLE_PAGE), order: order.value, include_covers: "true" });
    const text = search.value.trim();
    if (text) q.set("query", text);
    if (!reset && token) q.set("page_token", token);
    const page = await api(`/v1/persons?${q}`);
    if (mine !== seq) return;
    if (reset) grid.replaceChildren();
    count.textContent = text ? `${plural(page.total_size, "person", "people")} match “${text}”` : plural(page.total_size, "person", "people");
    grid.append(...page.persons.map((p) => personTile(p)));
    token = page.next_page_token;
    more.hidden = !token;
  });
  let timer = null;
  search.addEventListener("input", () => { state.peopleQuery = search.value; clearTimeout(timer); timer = setTimeout(() => load(true), 200); });
  order.addEventListener("change", () => { state.peopleOrder = order.value; load(true); });
  more.addEventListener("click", () => load(false));
  body.replaceChildren(h("div.actions", search, order), count, grid, more);
  await load(true);
}

// Merge src into dst; a refusal because they share a frame says where, and offers to merge anyway.
async function mergePersons(src, dst, after) {
  const run = async (allow) => {
    const merged = await api("/v1/Mien/MergePersons", { source: { person_id: src.person_id }, target: { person_id: dst.person_id },
                                                       allow_same_frame: allow });
    personsChanged();
    flash(`${personLabel(src.person_id, src.name)} merged into ${personLabel(merged.person_id, merged.name)}: ${plural(merged.face_count, "face")}.`, "info");
    if (after) await after(merged);
  };
  try {
    await run(false);
  } catch (e) {
    if (e.reason !== "SAME_FRAME") throw e;
    const m = e.metadata, more = Number(m.frames || 1) - 1;
    flashAction(`Not merged: ${personLabel(src.person_id, src.name)} and ${personLabel(dst.person_id, dst.name)} are both in ` +
                `${await where(m)}${more > 0 ? ` (and ${plural(more, "more frame")})` : ""}, ` +
                "and two faces in one frame are two people. Merge anyway only if the detector found one face twice there.",
                "Merge anyway", () => run(true));
  }
}

// "t1.jpg" or "interview.mp4 at 0:12.5": the frame a SAME_FRAME refusal names.
async function where(meta) {
  const uri = meta.source_uri || "";
  const src = (await sources().catch(() => new Map())).get(uri);
  const video = src ? src.kind === "SOURCE_KIND_VIDEO" : Number(meta.timestamp_ms) > 0;
  return video ? `${base(uri)} at ${clock(meta.timestamp_ms || 0)}` : base(uri);
}

// The person a suggestion keeps: the named one, else the one with more faces.
const keeper = (a, b) => (a.name && !b.name) || (!!a.name === !!b.name && Number(a.face_count) >= Number(b.face_count)) ? a : b;

async function suggestionsView(body, only) {
  const reply = await api("/v1/Mien/SuggestMerges", only ? { person: { person_id: only }, page_size: 20 } : { page_size: 60 });
  const list = h("div.suggestions", { id: "suggestions" });
  for (const sug of reply.suggestions) {
    const a = sug.person_a, b = sug.person_b;
    const card = h("div.suggestion", { "data-a": a.person_id, "data-b": b.person_id },
      personTile(a), h("div.q", "same person?"), personTile(b),
      h("div.actions",
        h("button.accept", { type: "button", onclick: () => guarded(async () => {
          const dst = keeper(a, b), src = dst === a ? b : a;
          await mergePersons(src, dst, async () => card.remove());
        }) }, "Same person"),
        h("button.secondary.reject", { type: "button", onclick: () => guarded(async () => {
          await api("/v1/Mien/RejectMerge", { person_a: { person_id: a.person_id }, person_b: { person_id: b.person_id } });
          card.remove();
          flash(`Noted: ${personLabel(a.person_id, a.name)} and ${personLabel(b.person_id, b.name)} are two people.`, "info");
        }) }, "Not the same"),
        h("span.muted", `d ${sug.distance.toFixed(2)}`)));
    list.append(card);
  }
  body.replaceChildren(
    h("p.muted", only ? "People who may be this person (their faces are close in the identity model):"
                      : "Pairs of people whose faces the identity model finds close, nearest first. “Same person” merges them; “Not the same” is remembered and not asked again."),
    reply.suggestions.length ? list : h("p.muted", { id: "no-suggestions" }, "No suggestions."));
}

async function reviewView(body) {
  const [unassigned, singles] = await Promise.all([
    api("/v1/Mien/ListPersonFaces", { unassigned: true, page_size: 48, include_thumbnails: true }),
    api(`/v1/persons?max_faces=1&page_size=${PEOPLE_PAGE}&order=PERSON_ORDER_ID&include_covers=true`)]);
  const faces = h("div.grid", { id: "unassigned" }, unassigned.faces.map((f) => {
    const card = hitCard({ ...f, distance: 0 }, false);
    Object.assign(card.querySelector(".meta b"), { textContent: `#${f.face_id}`, className: "" });
    return h("div.hit-cell", { "data-face-id": f.face_id }, card, personPicker(`assign-${f.face_id}`, "", (v, p) => guarded(async () => {
      if (!p) return;
      await api("/v1/Mien/MoveFaces", { face_ids: [f.face_id], target: { person_id: p.person_id } });
      personsChanged();
      flash(`Face #${f.face_id} is now ${personLabel(p.person_id, p.name)}'s.`, "info");
      reviewView(body);
    }), { placeholder: "assign to…" }));
  }));
  const lone = h("div.people-grid", { id: "single-face" }, singles.persons.map((p) => personTile(p,
    personPicker(`same-${p.person_id}`, "", (v, other) => guarded(async () => {
      if (other) await mergePersons(p, other, async () => reviewView(body));
    }), { placeholder: "same person as…", exclude: p.person_id }))));
  body.replaceChildren(
    h("h3", `Faces of nobody (${unassigned.total_size})`),
    unassigned.faces.length ? faces : h("p.muted", "None: every face belongs to a person."),
    h("h3", `People with one face (${singles.total_size})`),
    h("p.muted", "Often a face the indexer could not place for sure: say whose it is, or leave it."),
    singles.persons.length ? lone : h("p.muted", "None."));
}

async function personPage(pid) {
  const root = view();
  root.replaceChildren(h("p.muted", "Loading…"));
  const p = await api(`/v1/persons/${pid}`);
  const grid = h("div.grid", { id: "person-faces" });
  const more = h("button.secondary", { id: "faces-more", type: "button", hidden: true }, "More faces");
  let token = "";
  const loadFaces = async () => {
    const page = await api(`/v1/persons/${pid}/faces?page_size=100&include_thumbnails=true${token ? "&page_token=" + encodeURIComponent(token) : ""}`);
    for (const f of page.faces) {
      const box = h("input", { type: "checkbox", value: f.face_id, className: "pick", onchange: selectionChanged });
      const card = hitCard({ ...f, distance: 0 }, false);
      Object.assign(card.querySelector(".meta b"), { textContent: `#${f.face_id}`, className: "" });
      grid.append(h("div.pick-cell", card, h("label.muted", box, " select")));
    }
    token = page.next_page_token;
    more.hidden = !token;
  };
  more.addEventListener("click", () => guarded(loadFaces));
  const selected = () => [...grid.querySelectorAll("input.pick:checked")].map((b) => b.value);
  const selBar = h("div.actions.selection", { id: "selection", hidden: true });
  function selectionChanged() {
    const ids = selected();
    selBar.hidden = !ids.length;
    $("#selection-count", selBar).textContent = `${plural(ids.length, "face")} selected`;
  }
  const split = () => guarded(async () => {
    const ids = selected();
    if (!ids.length) { flash("Select the faces that are someone else first."); return; }
    const np = await api("/v1/Mien/SplitPerson", { face_ids: ids });
    personsChanged();
    flash(`${plural(ids.length, "face")} moved to new person #${np.person_id}.`, "info");
    location.hash = `#/person/${np.person_id}`;
  });
  const moveTo = (value, target) => guarded(async () => {
    const ids = selected();
    if (!target) { flash("Pick the person from the list as you type."); return; }
    if (!ids.length) { flash("Select the faces to move first."); return; }
    const run = async (allow) => {
      const t = await api("/v1/Mien/MoveFaces", { face_ids: ids, target: { person_id: target.person_id }, allow_same_frame: allow });
      personsChanged();
      flash(`${plural(ids.length, "face")} moved to ${personLabel(t.person_id, t.name)} (now ${plural(t.face_count, "face")}).`, "info");
      await personPage(pid).catch(() => { location.hash = `#/person/${t.person_id}`; });
    };
    try { await run(false); } catch (e) {
      if (e.reason !== "SAME_FRAME") throw e;
      flashAction(`Not moved: ${personLabel(target.person_id, target.name)} already has a face in ${await where(e.metadata)}, ` +
                  "and two faces in one frame are two people.", "Move anyway", () => run(true));
    }
  });
  selBar.append(h("b", { id: "selection-count" }), h("button.secondary", { id: "split", type: "button", onclick: split }, "Split into a new person"),
                h("span.muted", "or move to"), personPicker("move-target", "", moveTo, { placeholder: "another person…", exclude: pid }));
  const nameBox = h("input", { type: "text", id: "person-name", value: p.name || "", placeholder: "Add a name", className: "name-input" });
  const rename = () => guarded(async () => {
    const renamed = await api("/v1/Mien/RenamePerson", { person: { person_id: p.person_id }, name: nameBox.value.trim() });
    personsChanged();
    flash(`Person #${p.person_id} is now “${renamed.name}”.`, "info");
  });
  nameBox.addEventListener("keydown", (e) => { if (e.key === "Enter") rename(); });
  const merge = personPicker("merge-target", "", (value, target) => guarded(async () => {
    if (!target) { flash("Pick the person from the list as you type."); return; }
    if (!confirm(`Merge ${personLabel(p.person_id, p.name)} into ${personLabel(target.person_id, target.name)}? A merge is not undone in one step: a split later moves faces back one by one.`)) return;
    await mergePersons(p, target, async (merged) => { location.hash = `#/person/${merged.person_id}`; });
  }), { placeholder: "merge into…", exclude: p.person_id });
  const del = () => guarded(async () => {
    if (!confirm(`Delete ${personLabel(p.person_id, p.name)}? Its ${plural(p.face_count, "face")} become faces of nobody.`)) return;
    await api("/v1/Mien/DeletePerson", { person: { person_id: p.person_id }, release_faces: true });
    personsChanged();
    flash("Deleted.", "info");
    location.hash = "#/people";
  });
  const suggestions = h("div", { id: "person-suggestions" });
  root.replaceChildren(h("div.panel.person-head",
    h("div.person-title", coverImg(p, "big"),
      h("div", h("div.actions", nameBox, h("button", { id: "rename", className: "rename", type: "button", onclick: rename }, p.name ? "Rename" : "Name")),
        h("p.muted", `#${p.person_id} · ${plural(p.face_count, "face")}`))),
    h("div.actions",
      h("button", { type: "button", onclick: () => { state.target = p.name || `#${p.person_id}`; location.hash = "#/cross"; } }, "Search their faces (cross-identity)"),
      h("button.secondary", { type: "button", onclick: () => { location.hash = `#/tags?summary=${p.person_id}`; } }, "Expression summary"),
      h("button.secondary", { type: "button", onclick: () => { location.hash = `#/tags?person=${p.person_id}`; } }, "Tag their videos"),
      h("span.muted", "Merge into"), merge, h("button.danger", { type: "button", onclick: del }, "Delete"))),
    h("div.gap"),
    h("div.panel", h("h2", "Faces"), h("p.muted", "Select faces to split them off into a new person or to move them to another one."),
      selBar, grid, more),
    h("div.gap"),
    h("div.panel", h("h2", "Same person?"), suggestions));
  await loadFaces();
  guarded(() => suggestionsView(suggestions, pid));
}

// ------------------------------------------------------------------ tags, timeline, summaries

// A cluster's label: its dominant emotion and the action units it shows most.
function clusterLabel(components) {
  const emotions = components.filter((c) => c.kind === "emotion").sort((a, b) => b.value - a.value);
  const aus = components.filter((c) => c.kind !== "emotion" && c.value > 0.3).sort((a, b) => b.value - a.value).slice(0, 2);
  const parts = [];
  if (emotions.length) parts.push(`${shortLabel(emotions[0].name)} ${(emotions[0].value * 100).toFixed(0)}%`);
  if (aus.length) parts.push(aus.map((c) => shortLabel(c.name)).join(", "));
  return parts.join(" · ");
}

function clusterCards(clusters) {
  return h("div.grid", clusters.slice().sort((a, b) => b.size - a.size).map((c) => {
    const card = hitCard(c.representative, false);
    const size = card.querySelector(".meta b");
    size.textContent = `${(c.share * 100).toFixed(0)}% · ${plural(c.size, "face")}`;
    size.className = "";   // a share, not a distance
    const label = clusterLabel(c.components || []);
    if (label) card.querySelector(".meta").prepend(h("div.cluster-label", { title: label }, label));
    return card;
  }));
}

// The pictures a tag was made from: its stored faces and the photos given for it.
function tagPictures(t) {
  return h("div.faces",
    (t.reference_face_ids || []).map((id) => h("a", { href: `#/hit/${id}` }, h("img", { src: `/v1/faces/${id}/thumbnail.jpg`, alt: `face ${id}` }))),
    (t.reference_pictures || []).map((p) => h("img", { src: `data:image/jpeg;base64,${p}`, alt: "reference photo" })));
}

async function tagsPage(params) {
  const root = view();
  root.replaceChildren(h("p.muted", "Loading…"));
  const [tags, srcs] = await Promise.all([api("/v1/tags"), sources(true)]);
  // -- the tags, each with what it was made from and an editable threshold
  const tagList = h("div", { id: "tag-list" });
  for (const t of tags.tags) {
    const thr = h("input", { type: "number", min: "0.05", max: "4", step: "0.05", value: Number(t.threshold).toFixed(2),
                             className: "narrow threshold", "data-tag": t.name });
    const save = () => guarded(async () => {
      const updated = await api("/v1/Analytics/UpdateTag", { name: t.name, threshold: Number(thr.value) });
      flash(`Tag “${t.name}”: threshold ${Number(updated.threshold).toFixed(2)}.`, "info");
    });
    thr.addEventListener("keydown", (e) => { if (e.key === "Enter") save(); });
    tagList.append(h("div.person-row.tag-row", { "data-tag": t.name },
      h("div", h("b", t.name), h("div.muted", "close within"), h("div.actions", thr,
        h("button.secondary.save-threshold", { type: "button", onclick: save }, "Save"))),
      tagPictures(t),
      h("div.actions", h("button.danger", { type: "button", onclick: () => guarded(async () => {
        if (!confirm(`Delete tag ${t.name}?`)) return;
        await api("/v1/Analytics/DeleteTag", { name: t.name });
        refreshStats();
        tagsPage({});
      }) }, "Delete"))));
  }
  if (!tags.tags.length) tagList.append(h("p.muted", "No tags yet: make one below from a photo or a stored face, or from a search hit (“Make a tag of this expression”)."));
  // -- a new tag: from a photo, or a stored face (a hit sends its face here)
  const newName = h("input", { type: "text", id: "new-tag-name", placeholder: "name, e.g. broad-smile" });
  const newThr = h("input", { type: "number", id: "new-tag-threshold", min: "0.05", max: "4", step: "0.05", value: "0.5", className: "narrow" });
  const file = h("input", { type: "file", id: "new-tag-file", accept: "image/*" });
  const faceBox = h("input", { type: "text", id: "new-tag-face", placeholder: "#face id", className: "mid", value: params.face ? `#${params.face}` : "" });
  const preview = h("div.faces", { id: "new-tag-preview" });
  let photo = null;
  const showFace = () => {
    const id = faceBox.value.trim().replace(/^#/, "");
    preview.replaceChildren(/^\d+$/.test(id) ? h("img", { src: `/v1/faces/${id}/thumbnail.jpg`, alt: `face ${id}` }) : "");
    if (/^\d+$/.test(id)) { photo = null; file.value = ""; }
  };
  faceBox.addEventListener("change", showFace);
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (!f) return;
    const url = await readImage(f);
    photo = url.split(",", 2)[1];
    faceBox.value = "";
    preview.replaceChildren(h("img.photo", { src: url, alt: f.name }));
  });
  showFace();
  const create = () => guarded(async () => {
    const name = newName.value.trim();
    const id = faceBox.value.trim().replace(/^#/, "");
    if (!name) { flash("Give the tag a name."); return; }
    const ref = photo ? { image: { data: photo }, face_index: 0 } : /^\d+$/.test(id) ? { face_id: id } : null;
    if (!ref) { flash("Choose a photo or give a stored face (#id) to make the tag from."); return; }
    const t = await api("/v1/Analytics/CreateTag", { name, references: [ref], threshold: Number(newThr.value) || 0.5 });
    flash(`Tag “${t.name}” made.`, "info");
    refreshStats();
    location.hash = "#/tags";
    if (!params.face) tagsPage({});
  });
  // -- run tags on several videos, or on a person's videos
  const videos = [...srcs.values()].filter((s) => s.kind === "SOURCE_KIND_VIDEO");
  const videoList = h("ul.video-list", { id: "tag-videos" }, videos.map((v) =>
    h("li", h("label", h("input", { type: "checkbox", value: v.uri, className: "video-pick" }), " ", h("span", { title: v.uri }, base(v.uri))))));
  const all = h("button.secondary", { type: "button", id: "tag-all-videos", onclick: () => {
    const boxes = [...videoList.querySelectorAll("input")];
    const on = !boxes.every((b) => b.checked);
    boxes.forEach((b) => { b.checked = on; });
  } }, "all / none");
  let forPerson = null;
  const personBox = personPicker("tag-person", "", (value, p) => guarded(async () => {
    forPerson = p;
    if (!p) return;
    const uris = new Set();
    let token = "";
    do {  // the videos the person appears in, from their faces
      const page = await api(`/v1/persons/${p.person_id}/faces?page_size=1000${token ? "&page_token=" + encodeURIComponent(token) : ""}`);
      page.faces.forEach((f) => uris.add(f.source_uri));
      token = page.next_page_token;
    } while (token);
    videoList.querySelectorAll("input").forEach((b) => { b.checked = uris.has(b.value); });
  }), { placeholder: "a person's videos…" });
  const tagSel = h("select", { id: "tag-name" }, h("option", { value: "" }, "every tag"), tags.tags.map((t) => h("option", { value: t.name }, t.name)));
  const timeline = h("div.timeline", { id: "timeline" });
  const run = () => guarded(async () => {
    const chosen = [...videoList.querySelectorAll("input:checked")].map((b) => b.value);
    if (!chosen.length) { flash("Choose at least one video (or a person, whose videos are chosen for you)."); return; }
    timeline.replaceChildren();
    for (const uri of chosen) {
      const block = h("div.tl-video", { "data-source": uri }, h("p.muted", `Tagging ${base(uri)}…`));
      timeline.append(block);
      const rep = await api("/v1/Analytics/TagSource", { source_uri: uri, tags: tagSel.value ? [tagSel.value] : [] });
      if (forPerson) rep.results = rep.results.filter((r) => String(r.person_id) === String(forPerson.person_id));
      drawTimeline(block, rep);
    }
  });
  // -- summaries
  let summaryPerson = params.summary ? { person_id: params.summary } : null;
  const summaryBox = personPicker("summary-person", params.summary ? `#${params.summary}` : "", (value, p) => { summaryPerson = p; },
                                  { placeholder: "whose expressions…" });
  const k = h("input", { type: "number", min: 1, max: 50, value: 8, id: "summary-k", className: "narrow" });
  const method = h("select", { id: "summary-method" }, h("option", { value: "SUMMARY_METHOD_KMEANS" }, "k-means"), h("option", { value: "SUMMARY_METHOD_WARD" }, "Ward"));
  const summary = h("div", { id: "summary" });
  const summarize = () => guarded(async () => {
    if (!summaryPerson) { flash("Pick the person from the list as you type."); return; }
    summary.replaceChildren(h("p.muted", "Clustering…"));
    const rep = await api("/v1/Analytics/Summarize", { person: { person_id: summaryPerson.person_id }, k: Number(k.value), method: method.value, thumbnails: true });
    summary.replaceChildren(h("p.muted", `${plural(rep.k, "expression")} over ${plural(rep.face_count, "face")} of ${personLabel(rep.person.person_id, rep.person.name)} (largest first)`),
      clusterCards(rep.clusters));
  });
  const corpusK = h("input", { type: "number", min: 1, max: 1000, value: 12, id: "corpus-k", className: "narrow" });
  const corpus = h("div", { id: "corpus" });
  const clusterStore = () => guarded(async () => {
    corpus.replaceChildren(h("p.muted", "Clustering…"));
    const rep = await api("/v1/Analytics/ClusterStore", { k: Number(corpusK.value), closest: 1, thumbnails: true });
    corpus.replaceChildren(h("p.muted", `${plural(rep.k, "expression")} over ${plural(rep.face_count, "face")}` +
                                        (Number(rep.sampled_count) < Number(rep.face_count) ? ` (a sample of ${rep.sampled_count})` : "")),
      clusterCards(rep.clusters));
  });
  root.replaceChildren(
    h("div.panel", h("h2", "Tags"), tagList),
    h("div.gap"),
    h("div.panel", { id: "new-tag" }, h("h2", "Make a tag"),
      h("p.muted", "A tag is an expression: the reference face's, and every face within the threshold of it (0.5 is the paper's; smaller is stricter)."),
      h("div.actions", newName, h("label", "within ", newThr)),
      h("div.actions.spaced", h("label", "from a photo ", file), h("span.muted", "or a stored face"), faceBox),
      preview, h("div.actions.spaced", h("button", { id: "create-tag", type: "button", onclick: create }, "Make the tag"))),
    h("div.gap"),
    h("div.panel", h("h2", "Run tags on videos"),
      videos.length ? [h("div.actions", tagSel, all, personBox), videoList,
                       h("div.actions", h("button", { id: "run-tag", type: "button", onclick: run }, "Run"))]
                    : h("p.muted", "No videos in the store."),
      timeline),
    h("div.gap"),
    h("div.panel", h("h2", "A person's dominant expressions"),
      h("div.actions", summaryBox, method, h("label", "k ", k), h("button", { id: "run-summary", type: "button", onclick: summarize }, "Summarize")), summary),
    h("div.gap"),
    h("div.panel", h("h2", "The archive's dominant expressions"),
      h("div.actions", h("label", "k ", corpusK), h("button", { id: "run-corpus", type: "button", onclick: clusterStore }, "Cluster every face")), corpus));
  if (params.summary) summarize();
  if (params.person) {  // from a person's page: their videos chosen
    const p = await api(`/v1/persons/${params.person}`).catch(() => null);
    if (p) { $("#tag-person").value = personLabel(p.person_id, p.name); forPerson = p; }
    if (p) await guarded(async () => {
      const page = await api(`/v1/persons/${p.person_id}/faces?page_size=1000`);
      const uris = new Set(page.faces.map((f) => f.source_uri));
      videoList.querySelectorAll("input").forEach((b) => { b.checked = uris.has(b.value); });
    });
  }
  if (params.face) newName.focus();
}

function drawTimeline(root, rep) {
  root.replaceChildren();
  root.classList.add("tl-done");
  const duration = Math.max(1, Number(rep.duration_ms));
  root.append(h("p.muted", `${base(rep.source_uri)} · ${clock(rep.duration_ms)} · ${plural(rep.face_count, "face")} · tags: ${rep.tags.join(", ") || "none"}`));
  if (!rep.results.length) { root.append(h("p.muted", "No faces of known persons in this source.")); return; }
  for (const r of rep.results) {
    const track = h("div.tl-track");
    for (const s of r.segments) {
      const left = (Number(s.start_ms) / duration) * 100;
      const width = Math.max(0.4, ((Number(s.end_ms) - Number(s.start_ms) + Number(rep.sample_period_ms)) / duration) * 100);
      track.append(h("div.tl-seg", { title: `${clock(s.start_ms)}–${clock(s.end_ms)} · best d ${s.best_distance.toFixed(3)}`,
        style: { left: `${left}%`, width: `${Math.min(width, 100 - left)}%` },
        onclick: () => { location.hash = `#/hit/${s.best_face_id}`; } }));
    }
    const who = Number(r.person_id) >= 0 ? personLabel(r.person_id, r.person_name) : `unknown (track ${r.track_id})`;
    root.append(h("div.tl-row.tl-result", h("div", h("b", r.tag), " · ", who), track, h("div", `${(r.rate * 100).toFixed(0)}%`)));
  }
  root.append(h("div.tl-axis", h("span", "0:00.0"), h("span", clock(duration / 2)), h("span", clock(duration))));
}

// ------------------------------------------------------------------ indexing

async function indexPage() {
  const session = await api("/v1/session");
  const paths = h("textarea", { id: "index-paths", rows: 3, className: "wide", placeholder: "/archive/2024/interviews\n/archive/photos/press.jpg" });
  const fps = h("input", { type: "number", id: "index-fps", min: 0, step: "0.5", value: "", placeholder: "default", className: "mid" });
  const bar = h("progress", { id: "index-progress", max: 1, value: 0 });
  const status = h("p", { id: "index-status" });
  const refused = h("ul.refused", { id: "index-refused" });
  const log = h("pre.log", { id: "index-log" });
  const start = h("button", { id: "index-start" }, "Index");
  const addPath = (p) => {
    const have = paths.value.split("\n").map((x) => x.trim()).filter(Boolean);
    if (!have.includes(p)) paths.value = [...have, p].join("\n");
  };
  start.addEventListener("click", () => guarded(async () => {
    const list = paths.value.split("\n").map((s) => s.trim()).filter(Boolean);
    if (!list.length) { flash("Give at least one path on the server."); return; }
    const relative = list.filter((p) => !p.startsWith("/"));
    if (relative.length === list.length) {
      flash(`Paths on the server are absolute (they start with /): ${relative.join(", ")}`);
      return;
    }
    start.disabled = true;
    log.textContent = "";
    refused.replaceChildren();
    try {
      const r = await fetch("/v1/Mien/IndexPaths", { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
                                                     body: JSON.stringify({ paths: list, fps: Number(fps.value) || 0 }) });
      if (!r.ok) { const body = await r.json().catch(() => null); throw new ApiError(r.status, body); }
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const msg = JSON.parse(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          if (msg.error) throw new ApiError(500, msg);
          showProgress(msg);
        }
      }
      state.sources = null;
      state.persons = null;
      state.results = null;
      refreshStats();
    } finally {
      start.disabled = false;
    }
  }));
  // one progress message: counts, the paths refused (the others run), what was passed over
  function showProgress(msg) {
    bar.max = Math.max(1, Number(msg.files_total));
    bar.value = Number(msg.files_done);
    const skipped = Object.entries(msg.skipped || {});
    const nSkipped = skipped.reduce((n, [, c]) => n + Number(c), 0);
    status.textContent = `${msg.files_done} / ${plural(msg.files_total, "file")} · ${plural(msg.frames, "frame")} · ${plural(msg.faces, "face")}` +
                         (msg.done ? " · done" : msg.current ? ` · ${base(msg.current)}` : "") +
                         (msg.done && msg.failures.length ? ` · ${plural(msg.failures.length, "failure")}` : "") +
                         (nSkipped ? ` · ${nSkipped} skipped (${skipped.map(([why, c]) => `${why}: ${c}`).join(", ")})` : "");
    if ((msg.refused_paths || []).length && !refused.childElementCount) {
      refused.append(...msg.refused_paths.map((p) => h("li.error", `not indexed: ${p}`)));
    }
    if (msg.current && !msg.done) log.textContent += `${msg.current}\n`;
    if (msg.done) for (const f of msg.failures) log.textContent += `failed: ${f}\n`;
  }
  const picker = session.allowed_roots ? folderPicker(addPath) : null;
  view().replaceChildren(h("div.cols",
    h("div.panel", h("h2", "Folders on the server"), picker || h("p.muted", "None: the server indexes nothing.")),
    h("div.panel",
      h("h2", "Index files on the server"),
      session.allowed_roots ? h("p.muted", "Absolute paths of folders or files on the server, one per line, under the folders its operator allowed (--allow-root); pick them under “Folders on the server”. New and changed files are indexed, finished ones skipped; a path that cannot be indexed is named and the others still run.")
                            : h("div.notice", "This server allows no server-side indexing: its operator starts it with --allow-root DIR."),
      paths, h("div.actions.spaced", h("label", "video frames per second ", fps), start),
      h("div.gap"), bar, status, refused, log)));
}

// Browse the folders under the server's allowed roots; "Add" puts one in the list to index.
function folderPicker(onAdd) {
  const box = h("div.picker", { id: "folder-picker" });
  const open = (path) => guarded(async () => {
    const reply = await api("/v1/Mien/ListFolders", { path });
    const rows = reply.folders.map((f) => h("li.folder", { "data-path": f.path },
      h("button.link.open", { type: "button", title: f.path, onclick: () => open(f.path) }, `${f.name}/`),
      h("span.muted", [Number(f.folders) ? plural(f.folders, "folder") : "", Number(f.files) ? plural(f.files, "file") : ""].filter(Boolean).join(", ") || "empty"),
      h("button.secondary.add", { type: "button", onclick: () => onAdd(f.path) }, "Add")));
    box.replaceChildren(...[
      h("div.crumbs", reply.path
        ? [h("button.secondary.up", { type: "button", onclick: () => open(reply.parent) }, reply.parent ? "↑ Up" : "↑ Allowed folders"),
           h("span.path", pathText(reply.path)),
           h("button.secondary.add-here", { type: "button", onclick: () => onAdd(reply.path) }, "Add this folder")]
        : h("span.muted", "The folders this server may index")),
      rows.length ? h("ul.folders", rows) : h("p.muted", reply.path ? `No folders here (${plural(reply.files, "file")}).` : "None."),
      reply.truncated ? h("p.muted", "More folders than one list shows: type a path instead.") : null].filter(Boolean));
  });
  open("");
  return box;
}

// ------------------------------------------------------------------ rating

// FEC's question about three faces; each answer goes to the server's ratings file, which
// `mien train head --store` learns the expression metric from. Keys 1 2 3, 0 = can't tell.
const RATE_MODES = { random: "Random faces", "one-class": "Same emotion (the hard case)",
                     active: "Where mien is least sure" };

async function ratePage() {
  const rater = h("input", { id: "rate-rater", placeholder: "your name", className: "mid",
                             value: localStorage.getItem("mien-rater") || "" });
  const mode = h("select", { id: "rate-mode" },
    Object.entries(RATE_MODES).map(([k, label]) => h("option", { value: k }, label)));
  mode.value = localStorage.getItem("mien-rate-mode") || "random";
  const question = h("p.rate-question", { id: "rate-question" });
  const faces = h("div.rate-faces", { id: "rate-faces" });
  const count = h("p.muted", { id: "rate-count" });
  const buttons = h("div.rate-buttons",
    [1, 2, 3].map((n) => h("button", { type: "button", id: `rate-${n}`, onclick: () => answer(n) }, String(n))),
    h("button.secondary", { type: "button", id: "rate-0", onclick: () => answer(0) }, "Can't tell"));
  let current = null;
  let busy = false;

  async function next() {
    current = null;
    faces.replaceChildren(h("p.muted", "…"));
    const who = rater.value.trim();
    const p = await api("/v1/Analytics/ProposeTriplet", { mode: mode.value, rater: who });
    current = p;
    question.textContent = p.question;
    faces.replaceChildren(...p.face_ids.map((id, i) => h("figure.rate-face",
      h("img", { src: `/v1/faces/${id}/thumbnail.jpg`, alt: `face ${i + 1}` }),
      h("figcaption", String(i + 1)))));
  }

  async function answer(n) {
    const who = rater.value.trim();
    if (!who) { flash("Give your name first: answers are kept per rater."); rater.focus(); return; }
    if (!current || busy) return;
    busy = true;
    try {
      await guarded(async () => {
        const r = await api("/v1/Analytics/RateTriplet", { face_ids: current.face_ids, type: current.type,
                                                           rater: who, answer: n });
        count.textContent = `${plural(r.rater_answers || 0, "answer")} by ${who} so far`;
        await next();
      });
    } finally { busy = false; }
  }

  rater.addEventListener("change", () => localStorage.setItem("mien-rater", rater.value.trim()));
  mode.addEventListener("change", () => { localStorage.setItem("mien-rate-mode", mode.value); guarded(next); });
  const onKey = (e) => {
    if (!location.hash.startsWith("#/rate")) { document.removeEventListener("keydown", onKey); return; }
    if (e.target === rater || e.ctrlKey || e.metaKey || e.altKey) return;
    if (["0", "1", "2", "3"].includes(e.key)) { e.preventDefault(); answer(Number(e.key)); }
  };
  document.addEventListener("keydown", onKey);
  view().replaceChildren(
    h("h1", "Rate expressions"),
    h("p.muted", "Judge the facial expression only — mouth, eyes, brows, how tense or relaxed the face is — " +
      "not who it is, the pose or the lighting. Keys 1, 2, 3; 0 when you can't tell."),
    h("div.panel", h("div.actions", h("label", "Rater ", rater), h("label", "Ask ", mode))),
    question, faces, buttons, count);
  await next();
}

// ------------------------------------------------------------------ router

async function route() {
  const hash = location.hash || "#/search";
  const [path, qs] = hash.slice(1).split("?");
  const params = Object.fromEntries(new URLSearchParams(qs || ""));
  const parts = path.split("/").filter(Boolean);
  const page = parts[0] || "search";
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === page ||
    (a.dataset.nav === "people" && page === "person") || (a.dataset.nav === "search" && page === "hit")));
  if (!$("#flash").classList.contains("info")) flash("");  // a success message outlives the navigation it caused
  await guarded(async () => {
    if (page === "search") searchPage(false);
    else if (page === "cross") searchPage(true);
    else if (page === "hit") await hitPage(parts[1]);
    else if (page === "people") await peoplePage(params);
    else if (page === "person") await personPage(parts[1]);
    else if (page === "tags") await tagsPage(params);
    else if (page === "index") await indexPage();
    else if (page === "rate") await ratePage();
    else view().replaceChildren(h("p", "No such page."));
  });
}

document.addEventListener("paste", (e) => {
  const item = [...(e.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
  if (item && /^#\/(search|cross)?/.test(location.hash || "#/search")) {
    if (!location.hash.startsWith("#/cross")) location.hash = "#/search";
    setImage(item.getAsFile());
  }
});
// Back restores where a page was scrolled (the search's results above all): remember it per page
if ("scrollRestoration" in history) history.scrollRestoration = "manual";
let currentHash = location.hash || "#/search";
window.addEventListener("scroll", () => { state.scroll[currentHash] = window.scrollY; }, { passive: true });
window.addEventListener("hashchange", () => {
  currentHash = location.hash || "#/search";
  state.restoreY = state.scroll[currentHash] || 0;
  if (!/^#\/(search|cross)/.test(currentHash) && location.hash) window.scrollTo(0, 0);
  route();
});
window.addEventListener("DOMContentLoaded", async () => {
  const session = await api("/v1/session").catch(() => null);
  if (session && session.how === "cookie") {
    $("#logout").hidden = false;
    $("#logout").addEventListener("click", async () => {
      await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf() } });
      location.href = "/login";
    });
  }
  refreshStats();
  route();
});
