// A sweep's page: the live trial table (polled every 2 s while the sweep runs) and, whenever a trial finishes, the
// plots from /api/v1/sweeps/ID/plots drawn with uPlot: history, importance (fANOVA), parallel coordinates, slices.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("sweep-page"), id = root.dataset.sweep;
  const $ = (x) => document.getElementById(x);
  let finished = -1, timer = null;

  function cell(...children) { const td = document.createElement("td"); td.append(...children); return td; }
  function link(href, text) { const a = document.createElement("a"); a.href = href; a.textContent = text; return a; }
  const num = (v) => (v === null || v === undefined ? "–" : typeof v === "number" ? Number(v.toPrecision(4)).toString() : String(v));

  function table(s) {
    const keys = Object.keys(s.space).sort();
    const head = document.createElement("tr");
    for (const k of ["#", "state", ...keys, s.objective, "validations", "to best", "images", "run"]) {
      const th = document.createElement("th"); th.textContent = k; head.append(th);
    }
    $("sweep-trials").tHead.replaceChildren(head);
    $("sweep-trials").tBodies[0].replaceChildren(...s.trials.map((t) => {
      const tr = document.createElement("tr"), last = t.milestones[t.milestones.length - 1];
      tr.dataset.state = t.state;
      const state = document.createElement("span"); state.className = `status s-${t.state}`; state.textContent = t.state;
      if (t.state === "running" && t.progress !== null) state.textContent += ` ${(t.progress * 100).toFixed(0)}%`;
      tr.append(cell(String(t.number)), cell(state), ...keys.map((k) => cell(num(t.params[k]))),
        cell(num(t.value)), cell(String(Object.keys(t.values).length)), cell(last ? DY.fmt.secs(last.wall) : "–"),
        cell(last ? last.images.toLocaleString() : "–"), cell(t.run ? link(`/runs/${t.run}`, t.run) : "–"));
      if (s.best && s.best.number === t.number) tr.classList.add("best");
      return tr;
    }));
  }

  function header(s) {
    $("sweep-status").textContent = s.status; $("sweep-status").className = `status s-${s.status}`;
    $("sweep-stop").hidden = s.status !== "running"; $("sweep-resume").hidden = s.status !== "stopped";
    $("sweep-counts").textContent = `${s.total}${s.planned ? " of " + s.planned : ""}: ${s.counts.complete} complete, `
      + `${s.counts.pruned} pruned, ${s.counts.running} running, ${s.counts.fail} failed`;
    $("sweep-elapsed").textContent = DY.fmt.secs(s.elapsed_s);
    if (s.best) { $("sweep-best").href = `/runs/${s.best.run}`; $("sweep-best").hidden = !s.best.run; }
    DY.showError("sweep-error", s.error ? new Error(s.error) : null);
  }

  const width = (el) => Math.max(320, el.clientWidth || 600);
  const ramp = (f) => `hsl(${220 - 200 * f}, 75%, ${62 - 28 * f}%)`;  // light (worse) to dark (better)

  function plots(p) {
    const hist = $("plot-history"); hist.replaceChildren();
    if (p.history.length) {
      DY.chart(hist, [{ label: p.objective, color: "#93c5fd", points: true }, { label: "best so far", color: "#2563eb" }],
        [p.history.map((r) => r[0]), p.history.map((r) => r[1]), p.history.map((r) => r[2])], { xlabel: "trial", ylabel: p.objective });
    } else hist.textContent = "no finished trial yet";
    importance(p); parallel(p); slices(p);
  }

  function importance(p) {
    const el = $("plot-importance"), names = Object.keys(p.importance); el.replaceChildren();
    if (!names.length) { el.textContent = p.importance_note; return; }
    new uPlot({ width: width(el), height: 220, scales: { x: { time: false, range: [-0.5, names.length - 0.5] }, y: { range: [0, 1] } },
      axes: [{ splits: () => names.map((_, i) => i), values: () => names }, { label: "importance" }],
      legend: { show: false }, cursor: { show: false },
      series: [{}, { label: "importance", fill: "#2563eb", stroke: "#1d4ed8", paths: uPlot.paths.bars({ size: [0.6] }) }],
    }, [names.map((_, i) => i), names.map((n) => p.importance[n])], el);
  }

  // Each axis scaled to 0..1 over the finished trials (log axes on a log scale); each trial one line.
  function parallel(p) {
    const el = $("plot-parallel"), keys = p.parallel.keys, rows = p.parallel.rows; el.replaceChildren();
    if (!rows.length) { el.textContent = "no finished trial yet"; return; }
    const cols = keys.map((k, j) => {
      const log = p.parallel.log.includes(k), vals = rows.map((r) => (r[j] === null ? null : log ? Math.log10(r[j]) : r[j]));
      const lo = Math.min(...vals.filter((v) => v !== null)), hi = Math.max(...vals.filter((v) => v !== null));
      return vals.map((v) => (v === null ? null : hi > lo ? (v - lo) / (hi - lo) : 0.5));
    });
    const obj = rows.map((r) => r[r.length - 1]), lo = Math.min(...obj), hi = Math.max(...obj);
    const good = (v) => (hi > lo ? (p.direction === "maximize" ? (v - lo) / (hi - lo) : (hi - v) / (hi - lo)) : 1);
    const label = (k, j) => { const vs = rows.map((r) => r[j]); const lab = p.parallel.labels[k];
      return lab ? k : `${k} ${num(Math.min(...vs))}–${num(Math.max(...vs))}`; };
    new uPlot({ width: width(el), height: 280, scales: { x: { time: false, range: [-0.1, keys.length - 0.9] }, y: { range: [-0.05, 1.05] } },
      axes: [{ splits: () => keys.map((_, i) => i), values: () => keys.map(label), grid: { show: true } }, { label: "scaled" }],
      legend: { show: false },
      series: [{}, ...rows.map((_, i) => ({ label: `trial`, stroke: ramp(good(obj[i])), width: 2, points: { show: true, size: 5 } }))],
    }, [keys.map((_, i) => i), ...rows.map((_, i) => cols.map((c) => c[i]))], el);
  }

  function slices(p) {
    const el = $("plot-slices"); el.replaceChildren();
    for (const [key, pts] of Object.entries(p.slices)) {
      const box = document.createElement("div"); box.className = "slice"; box.dataset.key = key; el.append(box);
      if (!pts.length) continue;
      const sorted = pts.filter((r) => r[0] !== null).sort((a, b) => a[0] - b[0]), lab = p.parallel.labels[key];
      const log = p.parallel.log.includes(key);
      const xAxis = { label: key };
      if (lab) { xAxis.splits = () => lab.map((_, i) => i); xAxis.values = () => lab; }
      new uPlot({ width: Math.max(280, Math.floor((el.clientWidth || 900) / 2) - 16), height: 200,
        scales: { x: { time: false, distr: log ? 3 : 1, range: lab ? [-0.5, lab.length - 0.5] : undefined } },
        axes: [xAxis, { label: p.objective }], legend: { show: false },
        series: [{}, { label: p.objective, stroke: "#2563eb", paths: () => null, points: { show: true, size: 8, fill: "#2563eb" } }],
      }, [sorted.map((r) => r[0]), sorted.map((r) => r[1])], box);
    }
  }

  let busy = false;
  async function refresh() {  // one at a time: a slow answer must never overwrite a newer one
    if (busy) return;
    busy = true;
    try {
      const s = await DY.api("GET", `/api/v1/sweeps/${id}`);
      header(s); table(s);
      const done = s.counts.complete + s.counts.pruned + s.counts.fail;
      if (done !== finished) { finished = done; plots(await DY.api("GET", `/api/v1/sweeps/${id}/plots`)); }
      const live = s.status === "running" || s.counts.running > 0;
      root.dataset.live = live ? "1" : "0";
      if (!live && timer) { clearInterval(timer); timer = null; }
    } catch (err) { DY.showError("sweep-error", err); } finally { busy = false; }
  }

  $("sweep-stop").addEventListener("click", async () => { await DY.api("POST", `/api/v1/sweeps/${id}/stop`); refresh(); });
  $("sweep-resume").addEventListener("click", async () => {
    await DY.api("POST", `/api/v1/sweeps/${id}/resume`); refresh(); if (!timer) timer = setInterval(refresh, 2000);
  });
  refresh();
  timer = setInterval(refresh, 2000);
});
