// Detection and segmentation panels. Dataset page: boxes and images per class, the box-size histogram with COCO's
// bands, a gallery with the boxes drawn (SVG over the stored image) and a class filter; a mask gallery with the
// dataset's colours laid over the images, an opacity slider and a class filter. Run page: Detect one (every box
// above a low floor is fetched once; the threshold slider shows and hides them without a new request) and Segment
// one (the mask in colours over the image, an opacity slider, the area of each class, the mask PNG to download).
"use strict";
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const el = (t, props = {}, ...kids) => { const n = Object.assign(document.createElement(t), props); n.append(...kids); return n; };
  const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  const pct = (x) => `${(100 * x).toFixed(1)}%`;

  // Boxes ([x1, y1, x2, y2] in a width x height picture) as SVG rectangles with labels, over an image shown
  // `shown` screen pixels on its long side (lines and labels keep their screen size).
  function boxLayer(width, height, boxes, colours, label, shown) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.classList.add("box-layer");
    const unit = Math.max(width, height) / shown, line = 2 * unit, size = (shown > 200 ? 12 : 10) * unit;
    for (const b of boxes) {
      const [x1, y1, x2, y2] = b.box, colour = rgb(colours[b.class % colours.length] || [255, 255, 0]);
      const g = document.createElementNS(SVG, "g"), rect = document.createElementNS(SVG, "rect");
      Object.entries({ x: x1, y: y1, width: Math.max(x2 - x1, 0), height: Math.max(y2 - y1, 0), stroke: colour,
        "stroke-width": line, fill: "none" }).forEach(([k, v]) => rect.setAttribute(k, v));
      rect.classList.add("box"); rect.dataset.class = b.class; if (b.crowd) rect.setAttribute("stroke-dasharray", `${2 * line}`);
      const text = document.createElementNS(SVG, "text");
      Object.entries({ x: x1 + line, y: Math.max(y1 - line, size), fill: colour, "font-size": size, stroke: "#000",
        "stroke-width": size / 12, "paint-order": "stroke" }).forEach(([k, v]) => text.setAttribute(k, v));
      text.textContent = label(b);
      g.append(rect, text); svg.append(g);
    }
    return svg;
  }

  // Show a [w, h] picture at most 400 px on its long side (small images enlarged), keeping its aspect.
  function fit(img, [w, h], side = 400) {
    const s = side / Math.max(w, h); img.style.width = `${Math.round(w * s)}px`; img.style.height = `${Math.round(h * s)}px`;
  }

  function pager(prefix, size, load) {
    const state = { offset: 0, total: 0 };
    document.getElementById(`${prefix}-prev`).addEventListener("click", () => { if (state.offset > 0) { state.offset = Math.max(0, state.offset - size); load(); } });
    document.getElementById(`${prefix}-next`).addEventListener("click", () => { if (state.offset + size < state.total) { state.offset += size; load(); } });
    state.info = (n) => { state.total = n; document.getElementById(`${prefix}-info`).textContent = n ? `${state.offset + 1}–${Math.min(state.offset + size, n)} of ${n}` : "no images"; };
    return state;
  }

  // ---- dataset page, detection
  async function boxDataset(card) {
    const id = card.dataset.dataset, stats = await DY.api("GET", `/api/v1/datasets/${id}/box-stats`);
    const splits = Object.keys(stats.splits), head = (...h) => el("thead", {}, el("tr", {}, ...h.map((t) => el("th", { textContent: t }))));
    const cells = (f) => splits.map((s) => el("td", { className: "num", textContent: f(stats.splits[s]) }));
    document.getElementById("box-classes").replaceChildren(
      head("class", ...splits.map((s) => `${s} boxes`), ...splits.map((s) => `${s} images`), "small", "medium", "large"),
      el("tbody", {}, ...stats.classes.map((name, i) => el("tr", {},
        el("td", {}, el("span", { className: "swatch", style: `background: ${rgb(stats.colours[i])}` }), name),
        ...cells((x) => x.per_class[i].boxes), ...cells((x) => x.per_class[i].images),
        ...["small", "medium", "large"].map((b) => el("td", { className: "num", textContent: stats.splits.train.per_class[i].bands[b] })))),
        el("tr", { className: "total" }, el("td", { textContent: "all (images without a box)" }), ...cells((x) => x.boxes),
          ...cells((x) => `${x.images} (${x.negatives})`), ...["small", "medium", "large"].map((b) => el("td", { className: "num", textContent: stats.splits.train.bands[b] })))));
    const h = stats.splits.train.histogram, top = Math.max(...h.counts, 1);
    document.getElementById("box-sizes").replaceChildren(el("table", { className: "vhist", id: "box-hist" }, el("tbody", {},
      el("tr", {}, ...h.counts.map((n, i) => el("td", { className: "vbin", title: `${n} boxes of √area ${h.edges[i]}–${h.edges[i + 1]} px (${h.bands[i]})` },
        el("small", { textContent: n }), el("div", { className: `vbar band-${h.bands[i]}`, style: `height: ${(100 * n / top).toFixed(1)}px` })))),
      el("tr", {}, ...h.counts.map((_, i) => el("td", { className: "vlabel", textContent: `${h.edges[i]}–${h.edges[i + 1]}` }))))));
    const size = 24, split = document.getElementById("bx-split"), cls = document.getElementById("bx-class");
    const gallery = document.getElementById("box-gallery"), page = pager("bx", size, load);
    async function load() {
      const q = new URLSearchParams({ split: split.value, offset: page.offset, limit: size });
      if (cls.value !== "") q.set("label", cls.value);
      const r = await DY.api("GET", `/api/v1/datasets/${id}/boxes?${q}`);
      gallery.replaceChildren(...r.items.map((it) => el("figure", { className: "boxed" },
        el("div", { className: "stack-view" }, el("img", { src: `/api/v1/datasets/${id}/images/${split.value}/${it.index}.png`, alt: `image ${it.index}` }),
          boxLayer(r.width, r.height, it.boxes, r.colours, (b) => r.classes[b.class], 144)),
        el("figcaption", { textContent: it.boxes.length ? it.boxes.map((b) => r.classes[b.class]).join(", ") : "(no object)" }))));
      page.info(r.total);
    }
    split.addEventListener("change", () => { page.offset = 0; load(); });
    cls.addEventListener("change", () => { page.offset = 0; load(); });
    load();
  }

  // ---- dataset page, segmentation
  function maskDataset(card) {
    const id = card.dataset.dataset, size = 24, split = document.getElementById("mk-split"), cls = document.getElementById("mk-class");
    const clear = document.getElementById("mk-clear"), opacity = document.getElementById("mk-opacity"), gallery = document.getElementById("mask-gallery"), page = pager("mk", size, load);
    const setOpacity = () => { gallery.style.setProperty("--mask-opacity", opacity.value); document.getElementById("mk-opacity-value").textContent = pct(opacity.value); };
    async function load() {
      const q = new URLSearchParams({ split: split.value, offset: page.offset, limit: size });
      if (cls.value !== "") q.set("label", cls.value);
      const r = await DY.api("GET", `/api/v1/datasets/${id}/samples?${q}`);
      gallery.replaceChildren(...r.items.map((it) => el("figure", { className: "boxed" },
        el("div", { className: "stack-view" }, el("img", { src: `/api/v1/datasets/${id}/images/${split.value}/${it.index}.png`, alt: `image ${it.index}` }),
          el("img", { className: "mask-layer", src: `/api/v1/datasets/${id}/masks/${split.value}/${it.index}.png${clear.checked ? "?clear=0" : ""}`, alt: `mask ${it.index}` })),
        el("figcaption", { textContent: it.class }))));
      page.info(r.total);
    }
    opacity.addEventListener("input", setOpacity); setOpacity();
    split.addEventListener("change", () => { page.offset = 0; load(); });
    cls.addEventListener("change", () => { page.offset = 0; load(); });
    clear.addEventListener("change", load);
    load();
  }

  // ---- run page
  const snapshotQuery = (extra) => { const p = new URLSearchParams(extra), s = document.getElementById("c1-snapshot").value; if (s) p.set("snapshot", s); return p; };

  function detectOne(card) {
    const id = card.dataset.run, slider = document.getElementById("d1-threshold");
    let result = null;
    function show() {
      const t = Number(slider.value), kept = result.boxes.filter((b) => b.score >= t);
      document.getElementById("d1-threshold-value").textContent = t.toFixed(2);
      document.getElementById("d1-count").textContent = `${kept.length} of ${result.boxes.length} boxes scoring ${result.floor} or more`;
      const [w, h] = result.size, view = document.getElementById("d1-view");
      view.querySelector("svg")?.remove();
      view.append(boxLayer(w, h, kept.map((b) => ({ ...b, class: b.index })), result.colours, (b) => `${b.class_name} ${b.score.toFixed(2)}`, 400));
      document.querySelector("#d1-table tbody").replaceChildren(...(kept.length ? kept.map((b) => el("tr", {},
        el("td", {}, el("span", { className: "swatch", style: `background: ${rgb(result.colours[b.index % result.colours.length])}` }), b.class_name),
        el("td", { className: "num", textContent: b.score.toFixed(3) }), ...b.box.map((v) => el("td", { className: "num", textContent: v.toFixed(1) }))))
        : [el("tr", {}, el("td", { colSpan: 6, className: "muted", textContent: `no box scores ${t.toFixed(2)} or more` }))]));
    }
    async function go() {
      const file = document.getElementById("d1-file").files[0];
      DY.showError("d1-error", null);
      if (!file) { DY.showError("d1-error", new Error("choose an image first")); return; }
      try {
        const r = await DY.api("POST", `/api/v1/runs/${id}/detect?${snapshotQuery({ name: file.name, floor: 0.05 })}`, file);
        r.boxes.forEach((b) => { b.class_name = b.class; });
        result = r;
        const cuts = Object.values(r.thresholds), start = Math.max(r.floor, Math.min(...cuts));
        slider.min = r.floor; slider.value = start.toFixed(2);
        document.getElementById("d1-calibrated").textContent = "calibrated: " + Object.entries(r.thresholds).map(([c, v]) => `${c} ${v.toFixed(2)}`).join(", ");
        const img = document.getElementById("d1-image");
        img.onload = () => { fit(img, r.size); document.getElementById("d1-result").hidden = false; show(); };
        img.src = URL.createObjectURL(file);
      } catch (err) { DY.showError("d1-error", err); }
    }
    slider.addEventListener("input", () => { if (result) show(); });
    document.getElementById("d1-go").addEventListener("click", go);
  }

  function segmentOne(card) {
    const id = card.dataset.run, opacity = document.getElementById("s1-opacity");
    const setOpacity = () => { document.getElementById("s1-view").style.setProperty("--mask-opacity", opacity.value); document.getElementById("s1-opacity-value").textContent = pct(opacity.value); };
    async function go() {
      const file = document.getElementById("s1-file").files[0];
      DY.showError("s1-error", null);
      if (!file) { DY.showError("s1-error", new Error("choose an image first")); return; }
      try {
        const r = await DY.api("POST", `/api/v1/runs/${id}/segment?${snapshotQuery({ name: file.name })}`, file);
        const img = document.getElementById("s1-image"); fit(img, r.size); img.src = URL.createObjectURL(file);
        document.getElementById("s1-mask").src = r.colour;
        const link = document.getElementById("s1-download"); link.href = r.mask; link.download = `${file.name.replace(/\.[^.]*$/, "")}_mask.png`;
        const total = r.areas.reduce((a, x) => a + x.pixels, 0) || 1;
        document.querySelector("#s1-areas tbody").replaceChildren(...r.areas.map((a, i) => el("tr", { className: a.pixels ? "" : "muted" },
          el("td", {}, el("span", { className: "swatch", style: `background: ${rgb(r.colours[i] || [0, 0, 0])}` }), a.class),
          el("td", { className: "num", textContent: a.pixels.toLocaleString() }), el("td", { className: "num", textContent: pct(a.pixels / total) }))));
        document.getElementById("s1-summary").textContent = `${r.size[0]}×${r.size[1]} pixels, at the image's own size`;
        document.getElementById("s1-result").hidden = false;
      } catch (err) { DY.showError("s1-error", err); }
    }
    opacity.addEventListener("input", setOpacity); setOpacity();
    document.getElementById("s1-go").addEventListener("click", go);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const panels = { "box-dataset": boxDataset, "mask-dataset": maskDataset, "det-one": detectOne, "seg-one": segmentOne };
    for (const [id, start] of Object.entries(panels)) { const card = document.getElementById(id); if (card) start(card); }
  });
})();
