// Compare: pick runs, overlay their validation curves, toggle the settings table.
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
});
