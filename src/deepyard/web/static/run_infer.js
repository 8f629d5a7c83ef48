// Run page, trained-model panels: classify one (top-5, activations, weights, Grad-CAM), classify many (a zip) or
// evaluate (a job: accuracy, confusion matrix, per class, top losses), export (a job) with the parity report and
// downloads; for a text run (a language model, a text classifier) its Evaluate and Export panels, the same jobs.
"use strict";
(() => {
const el = (t, props = {}, ...kids) => { const n = Object.assign(document.createElement(t), props); n.append(...kids); return n; };

// Evaluations and exports are jobs: submitting returns the job; its progress arrives as `tasks` on the run's event
// stream; when it is done the result (pictures, tables, reports) is fetched and shown. After a reload the newest
// job of each kind is shown again. `panels`: {kind: {line, error, show(result)}} (element ids); returns
// submit(kind, url, busy), and `panels[kind].watched = ""` makes a panel stop following its job.
function inferJobs(id, panels) {
  for (const p of Object.values(panels)) Object.assign(p, { watched: null, shown: null });

  function jobLine(p, j) {
    const line = document.getElementById(p.line); line.hidden = false;
    const fill = el("div", { style: `width: ${(100 * (j.progress || 0)).toFixed(1)}%` });
    const word = j.status === "failed" && j.kind === "export" && (j.error || "").includes("PARITY") ? "parity check failed" : j.status;
    line.dataset.job = j.id; line.dataset.status = j.status;
    const active = ["queued", "running"].includes(j.status);
    const abort = el("button", { textContent: "abort", title: "stop this job" });
    abort.addEventListener("click", async () => { abort.disabled = true; try { await DY.api("POST", `/api/v1/jobs/${j.id}/abort`); } catch (err) { DY.showError(p.error, err); } });
    line.replaceChildren(el("span", { className: "status s-" + j.status, textContent: word }),
      ...(active || j.status === "done" ? [el("div", { className: "bar" }, fill)] : []),
      el("span", { className: "muted", textContent: j.status === "failed" ? "" : j.message || "" }), ...(active ? [abort] : []));
  }

  async function follow(kind, j) {
    const p = panels[kind];
    if (p.watched !== j.id) return;
    jobLine(p, j);
    if (p.shown === j.id + j.status) return;
    p.shown = j.id + j.status;
    if (j.status === "done") {
      try { p.show(await DY.api("GET", `/api/v1/runs/${id}/results/${j.id}`)); } catch (err) { DY.showError(p.error, err); }
    } else if (j.status === "failed") {
      DY.showError(p.error, new Error(j.error || "the job failed"));
      document.getElementById(p.error).classList.add("loud");
    } else if (["aborted", "interrupted"].includes(j.status)) {
      DY.showError(p.error, new Error(`the ${kind} job was ${j.status}${j.message ? ": " + j.message : ""}`));
    }
  }

  window.addEventListener("run-tasks", (e) => {
    for (const kind of Object.keys(panels)) {
      const p = panels[kind];
      if (p.watched === null) { const newest = e.detail.find((j) => j.kind === kind); if (newest) p.watched = newest.id; }
      const j = e.detail.find((x) => x.id === p.watched);
      if (j) follow(kind, j);
    }
  });

  return async function submit(kind, url, busy) {
    const p = panels[kind];
    DY.showError(p.error, null); document.getElementById(p.error).classList.remove("loud");
    try {
      const { job } = await DY.api("POST", url);
      p.watched = job.id; p.shown = null;
      busy(); follow(kind, job);
    } catch (err) { DY.showError(p.error, err); }
  };
}

// A text run's panels: evaluate a split (the task's partial: loss, perplexity and bits per character; or the
// confusion matrix and the top losses as texts) and export the task's formats, with a parity line per format.
function textPanels(id) {
  const snapshot = document.getElementById("ti-snapshot"), query = (extra) => {
    const p = new URLSearchParams(extra); if (snapshot.value) p.set("snapshot", snapshot.value); return p;
  };
  const showExport = (r) => {
    const table = document.getElementById("ti-exports"); table.hidden = false;
    table.tBodies[0].replaceChildren(...r.reports.map((x) => el("tr", { className: x.ok ? "" : "bad" },
      el("td", { textContent: x.format }), el("td", { textContent: x.ok ? "passed" : "FAILED", className: x.ok ? "ok-box" : "bad" }),
      el("td", { textContent: x.summary.replace(/^[a-z]+: /, "") }), el("td", { textContent: DY.fmt.bytes(x.size_bytes) }),
      el("td", {}, el("a", { href: x.url, textContent: x.path.split("/").pop(), download: "" })))));
  };
  const submit = inferJobs(id, {
    evaluate: { line: "ti-eval-job", error: "ti-eval-error", show: (r) => { document.getElementById("ti-evaluation").innerHTML = r.html; } },
    export: { line: "ti-export-job", error: "ti-export-error", show: showExport },
  });
  document.getElementById("ti-evaluate").addEventListener("click", () => submit("evaluate",
    `/api/v1/runs/${id}/evaluate?${query({ split: document.getElementById("ti-split").value })}`,
    () => document.getElementById("ti-evaluation").replaceChildren(el("p", { className: "muted", textContent: "evaluating as a job…" }))));
  document.getElementById("ti-export").addEventListener("click", () => {
    const p = query({}); document.querySelectorAll(".ti-format:checked").forEach((c) => p.append("formats", c.value));
    submit("export", `/api/v1/runs/${id}/export?${p}`, () => { document.getElementById("ti-exports").hidden = true; });
  });
}

window.addEventListener("run-ready", (e) => {
  if (document.getElementById("text-infer")) { textPanels(e.detail); return; }
  if (!document.getElementById("infer")) return;  // a task without these panels
  const id = e.detail;
  const snapshot = () => document.getElementById("c1-snapshot").value;
  const q = (extra = {}) => { const p = new URLSearchParams(extra); if (snapshot()) p.set("snapshot", snapshot()); return p; };

  async function classifyOne() {
    const file = document.getElementById("c1-file").files[0];
    DY.showError("c1-error", null);
    if (!file) { DY.showError("c1-error", new Error("choose an image first")); return; }
    const img = document.getElementById("c1-input"); img.src = URL.createObjectURL(file); img.hidden = false;
    try {
      const r = await DY.api("POST", `/api/v1/runs/${id}/classify?${q({ name: file.name })}`, file);
      document.getElementById("c1-result").innerHTML = r.html;  // the task's partial, rendered (escaped) by the server
      const box = document.getElementById("c1-inspect"), card = document.getElementById("c1-inspect-card");
      box.replaceChildren(); card.hidden = !document.getElementById("c1-visualize").checked;
      if (!card.hidden) inspect(file, box);
    } catch (err) { DY.showError("c1-error", err); }
  }

  async function inspect(file, box) {
    box.append(el("p", { className: "muted", textContent: "computing activations, weights and Grad-CAM…" }));
    const r = await DY.api("POST", `/api/v1/runs/${id}/inspect?${q({ name: file.name })}`, file);
    const stats = (s) => `mean ${s.mean.toFixed(3)} · std ${s.std.toFixed(3)}`;
    const rows = (views, kind) => views.map((v) => el("tr", {}, el("td", { textContent: v.name }), el("td", { textContent: v.type || "" }),
      el("td", { textContent: (v.shape || []).join("×") }), el("td", { textContent: v.mean !== undefined ? stats(v) : "" }),
      el("td", { textContent: v.params !== undefined ? Number(v.params).toLocaleString() : "" }),
      el("td", {}, el("img", { src: r.base + v.histogram_file, alt: "histogram" })),
      el("td", {}, v.file ? el("img", { src: r.base + v.file, alt: `${kind} of ${v.name}`, className: "pixelated layer-pic" }) : "")));
    const head = () => el("thead", {}, el("tr", {}, ...["layer", "type", "shape", "statistics", "parameters", "histogram", "picture"].map((h) => el("th", { textContent: h }))));
    box.replaceChildren(
      el("h3", { textContent: `Grad-CAM for ${r.gradcam.class} (${(100 * r.gradcam.probability).toFixed(1)}%, layer ${r.gradcam.layer})` }),
      el("img", { src: r.base + r.gradcam.file, id: "gradcam", alt: "Grad-CAM", className: "preview" }),
      el("h3", { textContent: "Activations" }), el("table", { className: "grid", id: "activations" }, head(), el("tbody", {}, ...rows(r.activations, "activations"))),
      el("h3", { textContent: "Weights" }), el("table", { className: "grid", id: "weights" }, head(), el("tbody", {}, ...rows(r.weights, "weights"))));
  }

  function showEvaluation(r) {
    const box = document.getElementById("cm-result");
    if (r.predictions) {
      box.replaceChildren(el("table", { className: "grid", id: "cm-predictions" }, el("thead", {}, el("tr", {}, el("th", { textContent: "image" }), el("th", { textContent: "prediction" }))),
        el("tbody", {}, ...r.predictions.map((p) => el("tr", {}, el("td", { textContent: p.source.split("/").pop() }),
          el("td", { textContent: p.error || p.summary }),
          ...(p.overlay ? [el("td", {}, el("a", { href: p.overlay, target: "_blank" }, el("img", { src: p.overlay, alt: "overlay", className: "overlay-thumb" })),
            ...(p.mask ? [" ", el("a", { href: p.mask, download: "", textContent: "mask" })] : []))] : []))))));
      return;
    }
    box.innerHTML = r.html;  // the task's evaluation partial, rendered (escaped) by the server
  }

  const panels = {
    evaluate: { line: "eval-job", error: "cm-error", show: (r) => showEvaluation(r) },
    export: { line: "ex-job", error: "ex-error", show: (r) => showExport(r) },
  };
  const submit = inferJobs(id, panels);

  function evaluateVal() {
    submit("evaluate", `/api/v1/runs/${id}/evaluate?${q({ split: "val" })}`,
      () => document.getElementById("cm-result").replaceChildren(el("p", { className: "muted", textContent: "evaluating as a job…" })));
  }

  async function classifyMany() {
    const file = document.getElementById("cm-file").files[0];
    DY.showError("cm-error", null);
    if (!file) { DY.showError("cm-error", new Error("choose a .zip first")); return; }
    panels.evaluate.watched = ""; document.getElementById("eval-job").hidden = true;  // this result replaces it
    try { showEvaluation(await DY.api("POST", `/api/v1/runs/${id}/classify-many?${q()}`, file)); } catch (err) { DY.showError("cm-error", err); }
  }

  function showExport(r) {
    const table = document.getElementById("ex-table"); table.hidden = false;
    table.querySelector("tbody").replaceChildren(...r.reports.map((x) => el("tr", { className: x.ok ? "" : "bad" },
      el("td", { textContent: x.format }), el("td", { textContent: x.ok ? "passed" : "FAILED", className: x.ok ? "ok-box" : "bad" }),
      el("td", { textContent: x.max_abs_diff.toExponential(2) }), el("td", { textContent: `${(100 * x.agreement).toFixed(1)}% ${x.agreement_of}` }),
      el("td", { textContent: Object.entries(x.latency_ms).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ") }),
      el("td", { textContent: DY.fmt.bytes(x.size_bytes) }), el("td", {}, el("a", { href: x.url, textContent: "download", download: "" })))));
  }

  function exportModel() {
    const formats = [...document.querySelectorAll(".ex-format:checked")].map((c) => c.value);
    const p = q(); formats.forEach((f) => p.append("formats", f));
    submit("export", `/api/v1/runs/${id}/export?${p}`, () => { document.getElementById("ex-table").hidden = true; });
  }

  document.getElementById("c1-go")?.addEventListener("click", classifyOne);  // absent: the task's own panel
  document.getElementById("eval-val").addEventListener("click", evaluateVal);
  document.getElementById("cm-go").addEventListener("click", classifyMany);
  document.getElementById("ex-go").addEventListener("click", exportModel);
});
})();
