// The ganforge explorer page: plain DOM code over the JSON API in server.py; nothing loads from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { run: null, ends: { a: null, b: null }, slider: { busy: false, wanted: null } };

function showError(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = !text;
}

async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

// Runs every action the same way: clears the message, shows any error as one line.
async function act(action) {
  try {
    showError("");
    await action();
  } catch (err) {
    showError(err.message);
  }
}

function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

// ---- run and its condition controls -------------------------------------------------------------
async function loadRuns() {
  const data = await api("/api/runs");
  $("count").max = data.max_count;  // the spinner's bound; typed values still go to the server, which checks them
  $("run-select").replaceChildren(...data.runs.map((r) => el("option", { value: r.id, textContent: r.name })));
  await selectRun(data.runs[0].id);
}

async function selectRun(id) {
  const run = await api(`/api/runs/${encodeURIComponent(id)}`);
  state.run = run;
  state.ends = { a: null, b: null };
  drawEnds();
  $("run-info").textContent = `${run.objective}, ${run.resolution}×${run.resolution}, step ${run.step}` +
    `${run.condition ? `, condition: ${run.condition}` : ", unconditional"}${run.two_stage ? ", two stages" : ""}` +
    `${run.ema ? ", EMA generator" : ""}`;
  for (const kind of ["tags", "class", "text"]) $(`condition-${kind}`).hidden = run.condition !== kind;
  $("tag-names").replaceChildren(...run.names.map((n) => el("option", { value: n })));
  $("tag-list").replaceChildren(...(run.condition === "tags" ? tagSections(run) : []));
  $("class-select").replaceChildren(el("option", { value: "", textContent: "any (like the training data)" }),
    ...(run.condition === "class" ? run.names.map((n) => el("option", { value: n, textContent: n })) : []));
  $("results").replaceChildren();
  $("strip").replaceChildren();
  $("interp-view").replaceChildren();
  $("interp-t").value = 0;
  $("interp-t-value").textContent = "0.00";
  $("nearest").replaceChildren();
  $("focus").replaceChildren(el("p", { className: "hint", textContent: "Click an image to look at it here." }));
  drawLosses(run.losses);
  drawEvals(run.evals);
  setupHistory(run);
  $("projections").hidden = !run.projections.length;
  $("projection-list").replaceChildren(...run.projections.map(projectionCard));
}

// A projection as the server lists it: the picture, what its z draws, and the same A / B / nearest as a sample.
function projectionCard(projection) {
  const { id, name, label } = projection;
  const data = { run: state.run.id, step: state.run.step, request: { projection: id, count: 1, psi: 1 } };
  const image = { png: projection.reconstruction, label, index: 0 };
  return el("div", { className: "card projection" }, [
    el("div", { className: "pics" }, [
      el("img", { src: projection.picture, alt: `picture of projection ${id}`, title: "the picture" }),
      el("img", { src: projection.reconstruction, alt: `reconstruction of projection ${id}`, className: "sample",
                  title: `what its z draws (RMS pixel error ${projection.rms_error})` })]),
    el("div", { className: "label", textContent: `projection ${id} · ${name}${label ? " · " + label : ""}`, title: label }),
    el("div", { className: "actions" }, [
      el("button", { type: "button", textContent: "A", title: "start of the interpolation",
                     ariaLabel: `interpolate from projection ${id}`, onclick: () => setProjectionEnd("a", projection) }),
      el("button", { type: "button", textContent: "B", title: "end of the interpolation",
                     ariaLabel: `interpolate to projection ${id}`, onclick: () => setProjectionEnd("b", projection) }),
      el("button", { type: "button", textContent: "nearest", title: "nearest training images", className: "nearest-button",
                     ariaLabel: `nearest training images of projection ${id}`,
                     onclick: () => act(() => showNearest(data, image)) }),
    ])]);
}

// One section per one-of group (ticking a tag there unticks the others; a group left unticked follows the
// training data), then the free tags.
function tagSections(run) {
  const grouped = new Set(Object.values(run.groups).flat());
  const section = (title, names, exclusive) => {
    const rows = names.map((n) => tagRow(n, false));
    if (exclusive) {
      for (const row of rows) {
        row.querySelector(".tag-check").addEventListener("change", (event) => {
          if (event.target.checked) rows.filter((r) => r !== row).forEach((r) => { r.querySelector(".tag-check").checked = false; });
        });
      }
    }
    return el("fieldset", { className: "tag-group" }, [el("legend", { textContent: title }), ...rows]);
  };
  const free = run.names.filter((n) => !grouped.has(n));
  const groups = Object.entries(run.groups).map(([name, tags]) => section(`${name} (one of; none ticked: like the data)`, tags, true));
  if (!groups.length) return free.map((n) => tagRow(n, false));
  return [...groups, ...(free.length ? [section("other tags", free, false)] : [])];
}

function tagRow(name, unknown) {
  const box = el("input", { type: "checkbox", className: "tag-check", ariaLabel: `use tag ${name}` });
  const slider = el("input", { type: "range", min: 0, max: 100, step: 5, value: 100, className: "tag-weight",
                               ariaLabel: `weight of ${name}` });
  const shown = el("output", { textContent: "100%" });
  slider.addEventListener("input", () => { shown.textContent = `${slider.value}%`; box.checked = true; });
  const row = el("div", { className: "tag-row" + (unknown ? " unknown" : "") },
    [box, el("span", { className: "tag-name", textContent: name }), slider, shown]);
  row.dataset.tag = name;
  return row;
}

function addTag() {
  const name = $("tag-filter").value.trim();
  if (!name) return;
  let row = [...$("tag-list").querySelectorAll(".tag-row")].find((r) => r.dataset.tag === name);
  if (!row) {  // not in the vocabulary: sent as typed, so the server can say which names are close
    row = tagRow(name, true);
    $("tag-list").prepend(row);
  }
  row.querySelector(".tag-check").checked = true;
  row.scrollIntoView({ block: "nearest" });
  $("tag-filter").value = "";
}

function formCondition() {
  const kind = state.run.condition;
  if (kind === "tags") {
    const tags = {};
    for (const row of $("tag-list").querySelectorAll(".tag-row")) {
      if (row.querySelector(".tag-check").checked) tags[row.dataset.tag] = Number(row.querySelector(".tag-weight").value) / 100;
    }
    return Object.keys(tags).length ? { tags } : null;
  }
  if (kind === "class") return $("class-select").value ? { class: $("class-select").value } : null;
  if (kind === "text") return $("text-prompt").value.trim() ? { text: $("text-prompt").value.trim() } : null;
  return null;
}

// Inputs go to the server as typed: it checks them and says what is wrong.
const asNumber = (text) => (text.trim() === "" || Number.isNaN(Number(text)) ? text : Number(text));

// ---- generating ---------------------------------------------------------------------------------
async function generate(seed) {
  const request = { run: state.run.id, seed: asNumber(String(seed ?? $("seed").value)), count: asNumber($("count").value),
                    psi: Number($("psi").value), condition: formCondition() };
  const data = await api("/api/generate", request);
  $("timing").textContent = `${data.images.length} images in ${(data.seconds * 1000).toFixed(0)} ms`;
  $("results").replaceChildren(...data.images.map((image) => card(data, image)));
}

function imageSeed(request, index) {
  return request.interpolate ? null : request.seed + index;
}

function fileName(data, image, stage) {
  const seed = imageSeed(data.request, image.index);
  return `ganforge-${data.run}-step${data.step}-${seed === null ? `interp${image.index}` : `seed${seed}`}${stage === 1 ? "-stage1" : ""}.png`;
}

function card(data, image) {
  const seed = imageSeed(data.request, image.index);
  const pics = el("div", { className: "pics" });
  if (image.stage1) pics.append(el("img", { src: image.stage1, alt: "stage 1", title: "stage 1", className: "stage1" }));
  pics.append(el("img", { src: image.png, alt: `seed ${seed}`, title: image.stage1 ? "stage 2" : `seed ${seed}`, className: "sample" }));
  const download = el("a", { href: image.png, download: fileName(data, image, 2), textContent: "⤓ png", className: "download",
                             title: "PNG with its recipe: ganforge sample --recipe FILE.png regenerates it" });
  const stage1 = image.stage1 ? [el("a", { href: image.stage1, download: fileName(data, image, 1), textContent: "⤓ stage 1",
                                            title: "stage 1 as a PNG with its recipe" })] : [];
  const node = el("div", { className: "card" }, [pics,
    el("div", { className: "label", textContent: `seed ${seed}${image.label ? " · " + image.label : ""}`, title: image.label }),
    el("div", { className: "actions" }, [
      download,
      ...stage1,
      el("button", { type: "button", textContent: "↻", title: "re-roll this image with a new seed", className: "reroll",
                     ariaLabel: `re-roll seed ${seed}`,
                     onclick: () => act(() => reroll(node, data)) }),
      el("button", { type: "button", textContent: "A", title: "start of the interpolation",
                     ariaLabel: `interpolate from seed ${seed}`, onclick: () => setEnd("a", data, image) }),
      el("button", { type: "button", textContent: "B", title: "end of the interpolation",
                     ariaLabel: `interpolate to seed ${seed}`, onclick: () => setEnd("b", data, image) }),
      el("button", { type: "button", textContent: "nearest", title: "nearest training images", className: "nearest-button",
                     onclick: () => act(() => showNearest(data, image)) }),
    ])]);
  pics.addEventListener("click", () => focusOn(node, data, image));
  return node;
}

async function reroll(node, data) {
  const seed = Math.floor(Math.random() * 2 ** 31);
  const fresh = await api("/api/generate", { ...data.request, run: data.run, seed, count: 1 });
  node.replaceWith(card(fresh, fresh.images[0]));
}

function focusOn(node, data, image) {
  document.querySelectorAll(".card.selected").forEach((c) => c.classList.remove("selected"));
  node.classList.add("selected");
  const seed = imageSeed(data.request, image.index);
  $("focus").replaceChildren(el("img", { src: image.png, alt: "selected image" }),
    el("p", { textContent: `seed ${seed} · ψ ${data.request.psi} · ${image.label || "unconditional"} · run ${data.run} step ${data.step}` }));
}

// ---- interpolation ------------------------------------------------------------------------------
function setEnd(which, data, image) {
  state.ends[which] = { seed: imageSeed(data.request, image.index), condition: data.request.condition, png: image.png, label: image.label };
  drawEnds();
}

function setProjectionEnd(which, projection) {
  state.ends[which] = { projection: projection.id, png: projection.reconstruction, label: projection.label };
  drawEnds();
}

function drawEnds() {
  for (const which of ["a", "b"]) {
    const end = state.ends[which];
    const named = end && (end.projection === undefined ? ` seed ${end.seed}` : ` projection ${end.projection}`);
    $(`end-${which}`).querySelector("span").replaceChildren(
      ...(end ? [el("img", { src: end.png, alt: which }), named] : ["none"]));
  }
}

// An end of a walk as the server takes it: a projection replaces the seed and the condition.
const endFields = (end) => (end.projection === undefined ? { seed: end.seed, condition: end.condition }
  : { projection: end.projection });

function between(ts) {
  const { a, b } = state.ends;
  if (!a || !b) throw new Error("pick A and B first: the A and B buttons under two generated images or projections");
  return { run: state.run.id, ...endFields(a), psi: Number($("psi").value), interpolate: { ...endFields(b), ts } };
}

async function interpolate() {
  const steps = asNumber($("steps").value);
  if (!Number.isInteger(steps) || steps < 2) throw new Error(`steps must be a whole number of at least 2, got ${$("steps").value}`);
  const ts = Array.from({ length: steps }, (_, i) => i / (steps - 1));
  const data = await api("/api/generate", between(ts));
  $("strip").replaceChildren(...data.images.map((image) => el("a", { href: image.png, download: fileName(data, image, 2) },
    [el("img", { src: image.png, alt: `t ${data.request.interpolate.ts[image.index].toFixed(2)}`, title: image.label })])));
}

// Dragging asks for one image at a time; the newest position wins, older ones are skipped.
async function slide() {
  const t = Number($("interp-t").value);
  $("interp-t-value").textContent = t.toFixed(2);
  state.slider.wanted = t;
  if (state.slider.busy) return;
  state.slider.busy = true;
  try {
    while (state.slider.wanted !== null) {
      const asked = state.slider.wanted;
      state.slider.wanted = null;
      const data = await api("/api/generate", between([asked]));
      const image = data.images[0];
      $("interp-view").replaceChildren(el("img", { src: image.png, alt: `interpolation at t ${asked.toFixed(2)}` }),
        el("p", { textContent: `t ${asked.toFixed(2)} · ${image.label}` }));
    }
  } finally {
    state.slider.busy = false;
  }
}

// ---- trust --------------------------------------------------------------------------------------
async function showNearest(data, image) {
  const found = await api("/api/nearest", { run: data.run, request: data.request, index: image.index, k: 6 });
  const closest = found.distances[0];
  const verdict = closest < 0.5 * found.yardstick ? "much closer than training images are to each other: may be memorised"
    : "no closer than training images are to each other";
  $("nearest").replaceChildren(
    el("h3", { textContent: `Nearest training images (${found.features === "pixels" ? "RMS pixel distance" : `distance in ${found.features} features`})` }),
    el("p", { className: "hint", textContent: `nearest ${closest.toFixed(1)}; training images' own nearest neighbours: median ${found.yardstick.toFixed(1)} — ${verdict}` }),
    el("div", { className: "nearest" }, [el("figure", {}, [el("img", { src: image.png, alt: "generated" }), el("figcaption", { textContent: "generated" })]),
      ...found.images.map((src, i) => el("figure", {}, [el("img", { src, alt: `training image ${i + 1}` }),
        el("figcaption", { textContent: found.distances[i].toFixed(1) })]))]));
}

function drawLosses(rows) {
  const svg = $("loss-svg");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  if (!rows.length) { add("text", { x: 10, y: 20 }, "no logged losses"); return; }
  const [W, H, L, B] = [420, 180, 40, 20];
  const values = rows.flatMap((r) => [r.d_loss, r.g_loss]).filter(Number.isFinite);
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const [s0, s1] = [rows[0].step, rows[rows.length - 1].step];
  const x = (s) => L + (W - L - 5) * (s1 > s0 ? (s - s0) / (s1 - s0) : 0.5);
  const y = (v) => 5 + (H - B - 5) * (hi > lo ? (hi - v) / (hi - lo) : 0.5);
  add("line", { x1: L, y1: H - B, x2: W - 5, y2: H - B, stroke: "#999" });
  add("line", { x1: L, y1: 5, x2: L, y2: H - B, stroke: "#999" });
  add("text", { x: 2, y: 14, "font-size": 10 }, hi.toFixed(2));
  add("text", { x: 2, y: H - B, "font-size": 10 }, lo.toFixed(2));
  add("text", { x: L, y: H - 4, "font-size": 10 }, `step ${s0}`);
  add("text", { x: W - 70, y: H - 4, "font-size": 10 }, `step ${s1}`);
  for (const [key, colour] of [["d_loss", "#2f6fbd"], ["g_loss", "#d9480f"]]) {
    add("polyline", { fill: "none", stroke: colour, "stroke-width": 1.2,
                      points: rows.map((r) => `${x(r.step).toFixed(1)},${y(r[key]).toFixed(1)}`).join(" ") });
    add("text", { x: key === "d_loss" ? W - 130 : W - 65, y: 14, "font-size": 10, fill: colour }, key);
  }
}

function drawEvals(rows) {
  const table = $("evals");
  if (!rows.length) { table.replaceChildren(el("caption", { textContent: "no evaluations logged (ganforge eval, or eval.every)" })); return; }
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => k !== "step");
  const cell = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v ?? ""));
  table.replaceChildren(el("tr", {}, ["step", ...keys].map((k) => el("th", { textContent: k }))),
    ...rows.map((r) => el("tr", {}, [r.step, ...keys.map((k) => r[k])].map((v) => el("td", { textContent: cell(v) })))));
}

function setupHistory(run) {
  const slider = $("history-step");
  const steps = run.sample_steps;
  slider.max = Math.max(0, steps.length - 1);
  slider.value = slider.max;
  slider.disabled = !steps.length;
  const show = () => {
    const step = steps[Number(slider.value)];
    $("history-label").textContent = step === undefined ? "no sample grids" : `step ${step}`;
    if (step !== undefined) $("history-img").src = `/api/runs/${encodeURIComponent(run.id)}/samples/${step}`;
  };
  slider.oninput = show;
  show();
}

// ---- wiring -------------------------------------------------------------------------------------
$("run-select").addEventListener("change", (e) => act(() => selectRun(e.target.value)));
$("generate").addEventListener("click", () => act(() => generate()));
$("seed-random").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 2 ** 31); });
$("page-next").addEventListener("click", () => act(() => {
  $("seed").value = Number($("seed").value) + Number($("count").value);
  return generate();
}));
$("page-prev").addEventListener("click", () => act(() => {
  $("seed").value = Math.max(0, Number($("seed").value) - Number($("count").value));
  return generate();
}));
$("psi").addEventListener("input", () => { $("psi-value").textContent = Number($("psi").value).toFixed(2); });
$("tag-add").addEventListener("click", addTag);
$("tag-filter").addEventListener("keydown", (e) => { if (e.key === "Enter") addTag(); });
$("tag-clear").addEventListener("click", () => { document.querySelectorAll(".tag-check").forEach((b) => { b.checked = false; }); });
$("interpolate").addEventListener("click", () => act(interpolate));
$("interp-t").addEventListener("input", () => act(slide));
act(loadRuns);
