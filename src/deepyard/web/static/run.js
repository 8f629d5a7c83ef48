// Run page: live loss/accuracy and learning-rate charts, progress, snapshots, status history, log and hardware
// over Server-Sent Events; actions. A queued training job's page (no run folder yet) waits for the run instead.
"use strict";

// The page of a run that a queued job will create: follow the job, then become the run's own page.
async function followPendingRun(jobId) {
  const st = document.getElementById("run-status"), log = document.getElementById("run-log");
  document.getElementById("abort-job").addEventListener("click", async () => {
    try { await DY.api("POST", `/api/v1/jobs/${jobId}/abort`); } catch (err) { alert(err.message); }
  });
  for (;;) {
    let job;
    try { job = await DY.api("GET", `/api/v1/jobs/${jobId}`); } catch (err) { document.getElementById("job-status").textContent = err.message; return; }
    if (job.target) { window.location.replace(`/runs/${job.target}`); return; }
    st.textContent = job.status; st.className = "status s-" + job.status;
    document.getElementById("job-status").textContent = `${job.status}${job.message ? ": " + job.message : ""}`;
    if (job.error) document.getElementById("job-error").textContent = job.error;
    if (!["queued", "running"].includes(job.status)) {
      document.getElementById("abort-job").disabled = true;
      document.getElementById("pending-note").textContent = `The job ended ${job.status} before the run started.`;
      if (log) log.textContent = (await DY.api("GET", `/api/v1/jobs/${jobId}/log`)).text;
      return;
    }
    await new Promise((done) => setTimeout(done, 1000));
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const actions = document.getElementById("run-actions");
  if (actions.dataset.job) { followPendingRun(actions.dataset.job); return; }
  const id = actions.dataset.run;
  const cols = { x: [], train: [], val: [], top1: [] }, lr = { x: [], y: [] };
  let loss = null, lrChart = null, offset = 0;
  const lossEl = document.getElementById("chart-loss"), lrEl = document.getElementById("chart-lr");
  const headline = lossEl.dataset.headline;  // the task's headline metric: val_top1, val_map, val_r2, ...

  function add(points, reset) {
    if (reset) { for (const k in cols) cols[k].length = 0; lr.x.length = 0; lr.y.length = 0; }
    for (const p of points) {
      cols.x.push(p.epoch);
      cols.train.push(p.train_loss ?? null);
      cols.val.push(p.val_loss ?? null);
      cols.top1.push(p[headline] === undefined ? null : p[headline]);
      if (p.lr !== undefined) { lr.x.push(p.epoch); lr.y.push(p.lr); }
    }
    const data = [cols.x, cols.train, cols.val, cols.top1];
    if (!loss) {
      loss = DY.chart(lossEl, [
        { label: "train loss", color: "#2563eb" }, { label: "val loss", color: "#dc2626", points: true },
        { label: lossEl.dataset.headlineLabel, color: "#16a34a", scale: lossEl.dataset.headlineUnit === "%" ? "acc" : "metric", points: true }], data, { ylabel: "loss" });
      drawLr();
    } else { loss.setData(data); lrChart.setData([lr.x, lr.y]); }
    lossEl.dataset.points = String(cols.x.length);
  }

  // The learning rate on a linear or a log scale (a step or exponential schedule spans decades).
  const lrLog = document.getElementById("lr-log");
  function drawLr() {
    if (lrChart) { lrChart.destroy(); lrEl.replaceChildren(); }
    lrChart = DY.chart(lrEl, [{ label: "learning rate", color: "#9333ea" }], [lr.x, lr.y], { ylabel: "lr", height: 200, log: lrLog.checked });
    lrEl.uplot = lrChart;
  }
  lrLog.addEventListener("change", () => { if (lrChart) drawLr(); });

  // Name and notes (DIGITS' job name and notes): saved into run.json, even while it trains.
  document.getElementById("rename-run").addEventListener("click", async () => {
    const name = prompt("New name of this run", document.getElementById("run-name").textContent);
    if (name === null || !name.trim()) return;
    try {
      const r = await DY.api("PATCH", `/api/v1/runs/${id}`, { name });
      document.getElementById("run-name").textContent = r.name; document.title = r.name;
    } catch (err) { alert(err.message); }
  });
  const notes = document.getElementById("run-notes"), notesState = document.getElementById("notes-state");
  notes.addEventListener("input", () => { notesState.textContent = "not saved"; });
  document.getElementById("save-notes").addEventListener("click", async () => {
    try { await DY.api("PATCH", `/api/v1/runs/${id}`, { notes: notes.value }); notesState.textContent = "saved"; }
    catch (err) { notesState.textContent = err.message; }
  });

  const first = await DY.api("GET", `/api/v1/runs/${id}/metrics`);
  add(first.points, false); offset = first.offset;

  const text = (elId, v) => { const el = document.getElementById(elId); if (el) el.textContent = v; };
  function status(s) {
    const st = document.getElementById("run-status"); st.textContent = s.status; st.className = "status s-" + s.status;
    document.getElementById("run-progress").style.width = (100 * s.progress).toFixed(1) + "%";
    text("run-epoch", `${s.epoch.toFixed(2)} / ${s.epochs}`); text("run-elapsed", DY.fmt.secs(s.elapsed));
    text("run-eta", DY.fmt.secs(s.eta)); text("run-train-loss", DY.fmt.num(s.train_loss));
    text("run-val-loss", DY.fmt.num(s.val_loss));
    const advice = document.getElementById("run-advice");
    if (advice && (s.advice || []).length !== advice.children.length) {
      advice.replaceChildren(...s.advice.map((a) => { const p = document.createElement("p"); p.className = "warn-box"; p.textContent = a; return p; }));
    }
    for (const el of document.querySelectorAll("[data-metric]")) {
      const v = (s.last_val || {})[el.dataset.metric];
      el.textContent = el.dataset.unit === "%" ? DY.fmt.pct(v) : DY.fmt.num(v);
    }
  }
  // Snapshots and the status history, as the run folder has them now.
  function files(f) {
    const snaps = document.getElementById("snapshots");
    snaps.replaceChildren(...f.snapshots.map((sn) => {
      const li = document.createElement("li"), code = document.createElement("code"), size = document.createElement("small");
      code.textContent = sn.file; size.className = "muted"; size.textContent = `${(sn.bytes / 1e6).toFixed(1)} MB`;
      li.append(code, sn.step === null ? " " : ` step ${sn.step} `, size); return li;
    }));
    document.getElementById("snapshots-empty").hidden = f.snapshots.length > 0;
    const hist = document.getElementById("history");
    hist.replaceChildren(...f.history.map(([st, at]) => {
      const li = document.createElement("li"), small = document.createElement("small");
      small.className = "muted"; small.append(DY.timeElement(at)); li.append(st + " ", small); return li;
    }));
    document.getElementById("history-empty").hidden = f.history.length > 0;
    const select = document.getElementById("c1-snapshot");  // the snapshots the classify panel offers
    if (select) {
      const have = new Set([...select.options].map((o) => o.value));
      for (const sn of f.snapshots) if (sn.step !== null && !have.has(String(sn.step))) select.append(new Option(`step ${sn.step}`, String(sn.step)));
    }
  }
  function hardware(h) {
    DY.hardware(h);
    const rows = [["CPU", h.cpu_percent.toFixed(0) + "%"], ["memory", `${DY.fmt.bytes(h.memory_used)} / ${DY.fmt.bytes(h.memory_total)}`]];
    if (h.process) rows.push(["job process", `pid ${h.process.pid} · ${h.process.processes} process(es)`],
      ["job CPU", h.process.cpu_percent.toFixed(0) + "%"], ["job memory", DY.fmt.bytes(h.process.memory_bytes)]);
    for (const g of h.gpus || []) rows.push([`GPU ${g.index}`, `${g.name}: ${g.utilization_percent.toFixed(0)}% · `
      + `${DY.fmt.bytes(g.memory_used_bytes)} / ${DY.fmt.bytes(g.memory_total_bytes)} · ${g.temperature_c.toFixed(0)} °C`]);
    const dl = document.getElementById("hardware");
    dl.replaceChildren(...rows.flatMap(([k, v]) => { const dt = document.createElement("dt"), dd = document.createElement("dd"); dt.textContent = k; dd.textContent = v; return [dt, dd]; }));
  }
  // While the job trains, the progress bar, the epoch and the time left follow the job's own report (its step,
  // written about once a second), not the last metric point, so the progress line and the job line agree.
  let lastStatus = null, lastJob = null;
  function agree() {
    if (!lastJob || lastJob.status !== "running" || !lastStatus || lastJob.progress === null || lastJob.progress === undefined) return;
    const p = lastJob.progress;
    document.getElementById("run-progress").style.width = (100 * p).toFixed(1) + "%";
    text("run-epoch", `${(p * lastStatus.epochs).toFixed(2)} / ${lastStatus.epochs}`);
    if (lastJob.eta_s !== null && lastJob.eta_s !== undefined) text("run-eta", DY.fmt.secs(lastJob.eta_s));
  }
  DY.events(`/api/v1/events?run=${id}&offset=${offset}`, {
    metrics: (m) => { add(m.points, m.reset); },
    status: (s) => { lastStatus = s; status(s); agree(); }, hardware, files,
    job: (j) => {
      lastJob = j; agree();
      text("job-status", `${j.status}${j.message ? ": " + j.message : ""}`);
      const abort = document.getElementById("abort-run"), resume = document.getElementById("resume-run");
      if (abort) abort.disabled = !["queued", "running"].includes(j.status);
      if (resume) resume.disabled = !["interrupted", "aborted", "failed"].includes(j.status);
      if (j.error) text("job-error", j.error);
    },
    tasks: (list) => window.dispatchEvent(new CustomEvent("run-tasks", { detail: list })),
    log: (l) => { const el = document.getElementById("run-log"); if (el) { el.textContent += l.text; el.scrollTop = el.scrollHeight; } },
  });

  const action = (elId, verb) => { const b = document.getElementById(elId); if (b) b.addEventListener("click", async () => {
    try { await DY.api("POST", `/api/v1/runs/${id}/${verb}`); } catch (err) { alert(err.message); }
  }); };
  action("abort-run", "abort"); action("resume-run", "resume");
  document.getElementById("delete-run").addEventListener("click", async () => {
    if (!confirm("Delete this run and its files?")) return;
    try { await DY.api("DELETE", `/api/v1/runs/${id}`); window.location = "/"; } catch (err) { alert(err.message); }
  });
  window.dispatchEvent(new CustomEvent("run-ready", { detail: id }));
});
