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
  for (const [key, el, scale] of [["val_loss", "cmp-val-loss", "y"], ["val_top1", "cmp-val-top1", "acc"]]) {
    const xs = [...new Set(runs.flatMap(([, m]) => m.points.filter((p) => key in p).map((p) => p.epoch)))].sort((a, b) => a - b);
    const cols = runs.map(([, m]) => {
      const by = new Map(m.points.filter((p) => key in p).map((p) => [p.epoch, p[key]]));
      return xs.map((x) => (by.has(x) ? by.get(x) : null));
    });
    DY.chart(document.getElementById(el), runs.map(([r], i) => ({ label: r.name, color: COLORS[i % COLORS.length], scale, points: true })),
      [xs, ...cols], { ylabel: key === "val_loss" ? "loss" : "" });
  }
});
