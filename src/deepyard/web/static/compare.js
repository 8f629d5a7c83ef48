// Compare: pick runs, overlay their validation curves, toggle the settings table, and the predictions table
// (images by runs: each run's prediction and confidence for uploaded images or images of a dataset split).
"use strict";
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#db2777"];
document.addEventListener("DOMContentLoaded", async () => {
  const form = document.getElementById("compare-form");
  form.addEventListener("submit", () => {
    document.getElementById("cmp-runs").value = [...document.querySelectorAll(".cmp-pick:checked")].map((c) => c.value).join(",");
  });
  const only = document.getElementById("only-differences");
  if (only) only.addEventListener("change", () => document.getElementById("compare-table").classList.toggle("show-all", !only.checked));
  const listEl = document.getElementById("compare-runs");
  if (!listEl) return;
  const ids = JSON.parse(listEl.textContent);
  const runs = await Promise.all(ids.map((id) => Promise.all([DY.api("GET", `/api/v1/runs/${id}`), DY.api("GET", `/api/v1/runs/${id}/metrics`)])));
  // Validation loss, then each run's task headline (val_top1, val_map, val_r2: a % axis or a plain one).
  const headlines = runs.map(([r]) => r.summary.headline || { name: "val_top1", label: "val top-1", unit: "%" });
  for (const [keyOf, el] of [[() => "val_loss", "cmp-val-loss"], [(i) => headlines[i].name, "cmp-val-top1"]]) {
    const loss = el === "cmp-val-loss", keys = runs.map((_, i) => keyOf(i));
    const xs = [...new Set(runs.flatMap(([, m], i) => m.points.filter((p) => keys[i] in p).map((p) => p.epoch)))].sort((a, b) => a - b);
    const cols = runs.map(([, m], i) => {
      const by = new Map(m.points.filter((p) => keys[i] in p).map((p) => [p.epoch, p[keys[i]]]));
      return xs.map((x) => (by.has(x) ? by.get(x) : null));
    });
    const scale = (i) => (loss ? "y" : headlines[i].unit === "%" ? "acc" : "metric");
    const label = (r, i) => (loss || headlines[i].name === "val_top1" ? r.name : `${r.name} (${headlines[i].label.replace("val ", "")})`);
    DY.chart(document.getElementById(el), runs.map(([r], i) => ({ label: label(r, i), color: COLORS[i % COLORS.length], scale: scale(i), points: true })),
      [xs, ...cols], { ylabel: loss ? "loss" : "" });
  }
  predictionsPanel(ids, runs.map(([r]) => r)).catch((e) => DY.showError("cmp-error", e));
});

// An element with attributes and children (text is never parsed as HTML).
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, v);
  el.append(...children.filter((c) => c !== null && c !== undefined));
  return el;
}

const base64 = (file) => new Promise((resolve, reject) => {
  const reader = new FileReader();
  reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
  reader.onerror = () => reject(reader.error);
  reader.readAsDataURL(file);
});

async function predictionsPanel(ids, runs) {
  const $ = (id) => document.getElementById(id);
  const dsel = $("cmp-dataset"), ssel = $("cmp-split"), files = $("cmp-files");
  const datasets = (await DY.api("GET", "/api/v1/datasets")).filter((d) => d.status !== "damaged" && d.counts);
  for (const d of datasets) dsel.add(new Option(d.name, d.id));
  if (datasets.some((d) => d.id === runs[0].dataset)) dsel.value = runs[0].dataset;  // the first run's dataset
  const fillSplits = () => {
    const d = datasets.find((x) => x.id === dsel.value);
    const splits = Object.entries(d ? d.counts : {}).filter(([, n]) => n > 0);
    ssel.replaceChildren(...splits.map(([name, n]) => new Option(`${name} (${n})`, name)));
    if (splits.some(([name]) => name === "val")) ssel.value = "val";
  };
  dsel.addEventListener("change", fillSplits);
  fillSplits();
  let body = null;
  $("cmp-predict").addEventListener("click", async () => {
    DY.showError("cmp-error", null);
    try {
      const uploads = [...files.files];
      body = { runs: ids, images: await Promise.all(uploads.map(async (f) => ({ name: f.name, data: await base64(f) }))) };
      if (dsel.value) {
        const indices = $("cmp-indices").value.trim();
        Object.assign(body, { dataset: dsel.value, split: ssel.value },
          indices ? { indices: indices.split(/[\s,]+/).filter(Boolean).map(Number) } : { count: Number($("cmp-count").value) });
      }
      renderPredictions($("cmp-pred-table"), await DY.api("POST", "/api/v1/compare/predictions", body), uploads);
      $("cmp-csv").disabled = false;
    } catch (e) { DY.showError("cmp-error", e); }
  });
  $("cmp-csv").addEventListener("click", async () => {  // the server's CSV of the same request
    try {
      const res = await DY.api("POST", "/api/v1/compare/predictions?format=csv", body, true);
      const link = h("a", { href: URL.createObjectURL(await res.blob()), download: "predictions.csv" });
      document.body.append(link); link.click(); link.remove();
    } catch (e) { DY.showError("cmp-error", e); }
  });
}

// Rows are images (uploads first, in the order picked, then the split's), columns the runs.
function renderPredictions(table, doc, uploads) {
  const head = h("tr", {}, h("th", {}, "image"), h("th", {}, "true"), ...doc.columns.map((c) => h("th", {},
    h("a", { href: `/runs/${c.run}` }, c.title), h("br"),
    h("small", { class: "muted" }, `${c.headline.label} ${c.headline.text}` + (c.labelled ? ` · right on ${c.right} of ${c.labelled}` : "")))));
  const rows = doc.rows.map((row, i) => {
    const o = row.origin;
    const src = o ? `/api/v1/datasets/${o.dataset}/images/${o.split}/${o.index}.png` : URL.createObjectURL(uploads[i]);
    const cells = row.cells.map((cell) => h("td", { class: cell.correct === null ? null : cell.correct ? "right" : "wrong", title: cell.summary },
      cell.error ? h("span", { class: "bad" }, cell.text) : cell.text,
      cell.confidence === null ? null : h("span", { class: "conf", style: `width:${(100 * cell.confidence).toFixed(0)}%` })));
    return h("tr", {}, h("td", {}, h("img", { src, alt: row.image }), h("br"), h("small", { class: "muted" }, row.image)),
      h("td", {}, row.label ?? "–"), ...cells);
  });
  table.replaceChildren(h("thead", {}, head), h("tbody", {}, ...rows));
  table.hidden = false;
}
