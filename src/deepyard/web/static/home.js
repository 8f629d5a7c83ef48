// Home: filter, sparklines, live run status over Server-Sent Events, batch compare and delete.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("canvas[data-spark]").forEach((c) => DY.sparkline(c, JSON.parse(c.dataset.spark)));

  const filter = document.getElementById("filter");
  filter.addEventListener("input", () => {
    const q = filter.value.toLowerCase();
    document.querySelectorAll("table.filterable tbody tr").forEach((tr) => {
      tr.hidden = q !== "" && !tr.dataset.text.toLowerCase().includes(q);
    });
  });

  const picked = () => [...document.querySelectorAll("input.pick:checked")].map((c) => c.value);
  const cmp = document.getElementById("compare-selected");
  if (cmp) cmp.addEventListener("click", () => { window.location = "/compare?runs=" + picked().join(","); });
  const del = document.getElementById("delete-selected");
  if (del) del.addEventListener("click", async () => {
    const ids = picked();
    if (!ids.length || !confirm(`Delete ${ids.length} run(s) and their files?`)) return;
    for (const id of ids) {
      try { await DY.api("DELETE", `/api/v1/runs/${id}`); } catch (err) { alert(`${id}: ${err.message}`); }
    }
    window.location.reload();
  });

  DY.events("/api/v1/events", {
    hardware: DY.hardware,
    runs: (rows) => rows.forEach((r) => {
      const tr = document.querySelector(`tr[data-run="${r.id}"]`);
      if (!tr) return;
      const st = tr.querySelector('[data-field="status"]');
      st.textContent = r.status; st.className = "status s-" + r.status;
      tr.querySelector('[data-field="progress"] > div').style.width = (100 * r.progress).toFixed(1) + "%";
      tr.querySelector('[data-field="train_loss"]').textContent = DY.fmt.num(r.train_loss);
      tr.querySelector('[data-field="val_top1"]').textContent = DY.fmt.pct(r.val_top1);
      DY.sparkline(tr.querySelector("canvas.spark"), r.spark);
    }),
  });
});
