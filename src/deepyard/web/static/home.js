// Home: filter, sparklines, live run status over Server-Sent Events, batch compare, abort and delete.
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
  const abort = document.getElementById("abort-selected");
  if (abort) abort.addEventListener("click", async () => {
    const ids = picked();
    if (!ids.length || !confirm(`Abort ${ids.length} run(s)? Each finishes its step and writes a checkpoint.`)) return;
    const failed = [];
    for (const id of ids) {
      try { await DY.api("POST", `/api/v1/runs/${id}/abort`); } catch (err) { failed.push(`${id}: ${err.message}`); }
    }
    if (failed.length) alert(failed.join("\n"));
  });
  const del = document.getElementById("delete-selected");
  if (del) del.addEventListener("click", async () => {
    const ids = picked();
    if (!ids.length || !confirm(`Delete ${ids.length} run(s) and their files?`)) return;
    for (const id of ids) {
      try { await DY.api("DELETE", `/api/v1/runs/${id}`); } catch (err) { alert(`${id}: ${err.message}`); }
    }
    window.location.reload();
  });

  const known = new Set([...document.querySelectorAll("tr[data-run]")].map((tr) => tr.dataset.run));
  const jobsBody = document.querySelector("#jobs tbody");
  function jobRow(j) {
    const tr = document.createElement("tr"); tr.dataset.job = j.id;
    const what = j.kind === "dataset" ? (j.params.spec && j.params.spec.name) : (j.params.name || j.params.run || j.params.model || j.params.network && (j.params.network.name || j.params.network));
    const link = j.target ? (j.kind === "dataset" ? `/datasets/${j.target}` : `/runs/${j.target}`) : null;
    const cells = [[link ? "a" : "span", `${what || j.kind}`], ["span", j.kind], ["span", j.status], ["div", ""], ["span", j.message || j.error || ""]];
    cells.forEach(([tag, txt], i) => {
      const td = document.createElement("td"), el = document.createElement(tag);
      if (tag === "a") el.href = link;
      if (i === 2) el.className = "status s-" + j.status;
      if (i === 3) { el.className = "bar"; const fill = document.createElement("div"); fill.style.width = (100 * j.progress).toFixed(1) + "%"; el.append(fill); }
      else el.textContent = txt;
      td.append(el); tr.append(td);
    });
    const td = document.createElement("td");
    const button = (label, verb, method = "POST") => {
      const b = document.createElement("button"); b.textContent = label; b.className = "job-" + verb;
      b.addEventListener("click", async () => {
        try { await DY.api(method, `/api/v1/jobs/${j.id}${verb === "delete" ? "" : "/" + verb}`); } catch (err) { alert(err.message); }
      });
      td.append(b);
    };
    if (["queued", "running"].includes(j.status)) button("Abort", "abort");
    if (["interrupted", "aborted", "failed"].includes(j.status)) button("Resume", "resume");
    if (j.status !== "running") button("Forget", "delete", "DELETE");
    tr.append(td);
    return tr;
  }

  DY.events("/api/v1/events", {
    hardware: DY.hardware,
    jobs: (list) => {
      const sets = new Set([...document.querySelectorAll("#datasets tbody tr")].map((tr) => tr.dataset.id));
      if (list.some((j) => j.kind === "dataset" && j.status === "done" && j.target && !sets.has(j.target))) {
        window.location.reload(); return;  // a dataset was built: render it with the others
      }
      if (!jobsBody) return;
      jobsBody.replaceChildren(...list.map(jobRow));
      const busy = list.filter((j) => j.status === "running").length, queued = list.filter((j) => j.status === "queued").length;
      document.getElementById("slots").textContent = `${busy} running, ${queued} queued`;
    },
    runs: (rows) => rows.forEach((r) => {
      if (!known.has(r.id)) { window.location.reload(); return; }  // a new run: render it with the others
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
