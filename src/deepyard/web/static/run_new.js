// New run: network source (standard / previous / custom spec with live validation and Visualize), the LR-schedule
// chart, and the form turned into TrainConfig data (several LR or batch-size values: one run per combination).
"use strict";
const NewRun = (() => {
  const form = () => document.getElementById("run-form");
  let netTab = "standard";

  function values(text, kind) {
    const out = text.split(/[\s,;]+/).filter(Boolean).map(Number);
    if (!out.length || out.some((v) => !Number.isFinite(v) || (kind === "int" && !Number.isInteger(v))))
      throw new Error(`'${text}' is not a list of ${kind === "int" ? "whole numbers" : "numbers"}`);
    return out;
  }

  // Every named config field → nested data, typed by its data-kind.
  function config() {
    const cfg = { solver: {}, schedule: {}, augment: {}, finetune: {} };
    form().querySelectorAll("[data-kind]").forEach((el) => {
      let v;
      switch (el.dataset.kind) {
        case "checkbox": v = el.checked; break;
        case "int": case "float":
          if (el.value === "") { if (el.dataset.optional) v = null; else return; }
          else v = Number(el.value);
          break;
        case "list": v = el.value.split(/[\s,;]+/).filter(Boolean).map(Number); break;
        case "globs": v = el.value.split(/[\s,;]+/).filter(Boolean); break;
        default: v = el.value;
      }
      const [a, b] = el.name.split(".");
      if (b === undefined) cfg[a] = v; else cfg[a][b] = v;
    });
    cfg.device = form().elements.device.value || "auto";
    return cfg;
  }

  function shape() {
    const opt = document.getElementById("run-dataset").selectedOptions[0];
    if (!opt) return { input: null, classes: 10 };
    const [h, w, c] = JSON.parse(opt.dataset.shape);
    return { input: [c, h, w], classes: Number(opt.dataset.classes) };
  }

  // The starting weights: none, or a `--from` reference (the network then comes from the source).
  function source() {
    const kind = document.getElementById("source-kind").value;
    if (kind === "run") {
      const snap = document.getElementById("source-snapshot").value.trim();
      return `run:${document.getElementById("source-run").value}${snap ? "@" + snap : ""}`;
    }
    if (kind === "store") return `store:${document.getElementById("source-store").value}`;
    if (kind === "file") return document.getElementById("source-file").value.trim() || null;
    if (kind === "pretrained") {
      const name = document.getElementById("source-pretrained").value.trim();
      return name.startsWith("timm:") ? name : `pretrained:${name}`;
    }
    return null;
  }

  function showSource() {
    const kind = document.getElementById("source-kind").value;
    document.querySelectorAll(".source-pane").forEach((el) => {
      el.hidden = !(el.dataset.source === kind || (el.dataset.source === "any" && kind));
    });
  }

  // The network to send: none for "task default" (the server lets the dataset's task pick, as `deepyard train`
  // does); `visual` names that default instead, for Visualize.
  function network(visual = false) {
    const kind = document.getElementById("source-kind").value;
    if (source() && kind !== "file") return { source: source() };
    const from = kind === "file" && source() ? { source: source() } : {};  // weights only: the network is chosen here
    const chosen = chooseNetwork(visual);
    return { ...chosen, ...from };
  }

  function chooseNetwork(visual) {
    if (netTab === "custom") return { spec: document.getElementById("spec-editor").value };
    const checked = form().querySelector('input[name="standard"]:checked');
    if (checked && checked.value) return { network: checked.value };
    const opt = document.getElementById("run-dataset").selectedOptions[0];
    return visual ? { network: opt ? opt.dataset.defaultNetwork : "lenet" } : {};
  }

  // What the chosen dataset's task allows: its losses (auto first), its metrics to monitor, its default network.
  function taskChoices() {
    const opt = document.getElementById("run-dataset").selectedOptions[0];
    if (!opt) return;
    const losses = JSON.parse(opt.dataset.losses), monitors = JSON.parse(opt.dataset.monitors);
    const loss = form().elements.loss;
    [...loss.options].forEach((o) => { o.hidden = o.disabled = !losses.includes(o.value); });
    if (!losses.includes(loss.value)) loss.value = "auto";
    const monitor = document.getElementById("run-monitor"), keep = monitor.value || monitor.dataset.value;
    monitor.replaceChildren(...monitors.map((m) => Object.assign(document.createElement("option"), { value: m, textContent: m })));
    monitor.value = monitors.includes(keep) ? keep : monitors[0];
    // only the standard networks whose output the task takes (class or per-pixel logits); a chosen one hidden goes
    document.querySelectorAll("#standard-networks tr[data-output]").forEach((row) => {
      row.hidden = row.dataset.output !== opt.dataset.networkOutput;
      const radio = row.querySelector("input[type=radio]");
      if (row.hidden && radio.checked) { radio.checked = false; document.getElementById("net-auto").checked = true; }
    });
    // the box-aware augmentations (IoU crop, zoom-out) only for a task with boxes; hidden, they go back to off
    const boxes = Boolean(opt.dataset.boxAugment), defaults = flatten(presetData().defaults);
    JSON.parse(document.getElementById("grp-augment").dataset.boxFields).forEach((name) => {
      const input = form().elements[name];
      input.closest("label").hidden = !boxes;
      if (!boxes) input.value = String(defaults[name]);
    });
    document.getElementById("net-auto-why").textContent = `${opt.dataset.defaultNetwork}: ${opt.dataset.defaultWhy}`;
    document.getElementById("run-task").textContent = `task ${opt.dataset.task}: loss auto = ${losses[1]}; monitor ${monitors.join(", ")}`;
  }

  async function check() {
    const status = document.getElementById("spec-status");
    const text = document.getElementById("spec-editor").value;
    if (!text.trim()) { status.textContent = ""; return; }
    try {
      const r = await DY.api("POST", "/api/v1/networks/check", { spec: text, ...shape() });
      status.className = "ok-box";
      status.textContent = `ok: ${r.layers.length} layers, ${r.params.toLocaleString()} parameters, output ${r.output.join("×")}`;
    } catch (err) { status.className = "error-box"; status.textContent = err.message; }
  }

  async function visualize() {
    const view = document.getElementById("network-view");
    try {
      const res = await DY.api("POST", "/api/v1/networks/view", { ...network(true), ...shape() }, true);
      const img = document.createElement("img");
      img.src = URL.createObjectURL(await res.blob()); img.alt = "network graph"; img.id = "network-svg";
      view.replaceChildren(img);
    } catch (err) { view.replaceChildren(Object.assign(document.createElement("p"), { className: "error-box", textContent: err.message })); }
  }

  async function loadSpec(name) {
    const r = await DY.api("GET", `/api/v1/networks/${name}/spec`);
    setSpec(r.yaml);
  }

  function setSpec(text) {
    document.getElementById("spec-editor").value = text;
    document.querySelector('.tab[data-tab="custom"]').click();
    check();
  }

  // Only the schedule settings the chosen policy reads (their help texts say which); warm-up applies to all.
  const POLICY_FIELDS = { fixed: [], step: ["step_size", "gamma"], multistep: ["steps", "gamma"], exp: ["gamma"],
    inv: ["gamma", "power"], poly: ["power"], sigmoid: ["gamma", "sigmoid_step"], cosine: ["min_lr"],
    onecycle: ["pct_start", "div_factor", "final_div_factor"] };
  function showPolicyFields() {
    const policy = form().elements["schedule.policy"].value, used = POLICY_FIELDS[policy];
    document.querySelectorAll("#schedule-fields [name^='schedule.']").forEach((el) => {
      const name = el.name.slice(9);
      el.closest(".field").hidden = used !== undefined && !["policy", "warmup_pct", ...used].includes(name);
    });
  }

  const presetData = () => JSON.parse(document.getElementById("preset-data").textContent);
  function flatten(obj, prefix = "", out = {}) {
    for (const [k, v] of Object.entries(obj)) {
      if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, prefix + k + ".", out); else out[prefix + k] = v;
    }
    return out;
  }
  function setFields(flat) {  // dotted TrainConfig keys → the form's fields
    for (const [key, v] of Object.entries(flat)) {
      const el = key === "solver.lr" ? document.getElementById("lr-values") : key === "batch_size"
        ? document.getElementById("bs-values") : form().elements[key];
      if (!el || v === undefined) continue;
      if (el.type === "checkbox") el.checked = Boolean(v);
      else el.value = v === null ? "" : Array.isArray(v) ? v.join(", ") : String(v);  // null: an optional one unset
    }
    showPolicyFields(); schedule();
  }
  const recipe = () => JSON.parse(document.getElementById("run-dataset").selectedOptions[0]?.dataset.recipe || "{}");

  // A preset (GET /api/v1/presets): every field back to its default, then the dataset's task's recipe, then the
  // preset's settings on top (the order the server layers them in).
  function applyPreset(name) {
    const data = presetData(), preset = data.presets.find((p) => p.name === name);
    setFields({ ...flatten({ solver: data.defaults.solver, schedule: data.defaults.schedule, epochs: data.defaults.epochs }),
      ...recipe(), ...preset.settings });
    document.getElementById("preset-note").textContent = preset.description;
  }

  // The chosen dataset's task's recipe (Task.recipe) in the fields: a dataset of another task puts the settings
  // the previous recipe set back to their defaults first, then shows its own; the fields are what is sent.
  let shownRecipe = {};
  function applyRecipe() {
    const next = recipe(), defaults = flatten(presetData().defaults);
    if (JSON.stringify(next) === JSON.stringify(shownRecipe)) return;
    const flat = Object.fromEntries(Object.keys(shownRecipe).map((k) => [k, defaults[k]]));
    setFields({ ...flat, ...next });
    shownRecipe = next;
    const keys = Object.entries(next).map(([k, v]) => `${k} ${v}`).join(", ");
    document.getElementById("preset-note").textContent = keys ? `the task's recipe: ${keys}` : "";
  }

  // The LR range test or the batch-size finder (POST /api/v1/runs/find): a job on this form's data, network and
  // settings; its result fills the field (the request only queues it, so the server never waits on training).
  async function find(button) {
    const what = button.dataset.what, field = document.getElementById(what === "lr" ? "lr-values" : "bs-values");
    const note = document.getElementById(what === "lr" ? "find-lr-note" : "find-bs-note");
    button.disabled = true; note.className = "muted"; note.textContent = "queued…";
    try {
      const cfg = config();
      const { job } = await DY.api("POST", "/api/v1/runs/find", { what, dataset: form().elements.dataset.value, ...network(), config: cfg });
      let j = job;
      while (!["done", "failed", "aborted", "interrupted"].includes(j.status)) {
        await new Promise((ok) => setTimeout(ok, 500));
        j = await DY.api("GET", `/api/v1/jobs/${job.id}`);
        note.textContent = j.status === "running" ? (j.message || "running…") : j.status + "…";
      }
      if (j.status !== "done") throw new Error(j.error || j.message || j.status);
      const value = what === "lr" ? Number(j.result.suggestion.toPrecision(2)) : j.result.batch_size;
      field.value = String(value);
      note.className = "ok-box";
      note.textContent = what === "lr" ? `suggested ${value} (loss falls fastest; ${j.result.lrs.length} steps swept)` : `${value} fits in memory`;
      field.dispatchEvent(new Event("input", { bubbles: true }));
    } catch (err) { note.className = "bad"; note.textContent = err.message; }
    finally { button.disabled = false; }
  }

  // Weights files: browse the data roots (GET /api/v1/folders lists their weights files and archives), upload
  // one (POST /api/v1/uploads/weights), or import a model archive into the store (POST /api/v1/models/import).
  async function browseWeights(path) {
    const r = await DY.api("GET", "/api/v1/folders" + (path ? "?path=" + encodeURIComponent(path) : ""));
    document.getElementById("wpick-path").textContent = r.path || "allowed folders";
    const up = document.getElementById("wpick-up");
    up.disabled = !r.parent && !r.path; up.onclick = () => browseWeights(r.parent);
    const item = (text, onclick) => { const li = document.createElement("li"), a = document.createElement("a");
      a.href = "#"; a.textContent = text; a.addEventListener("click", (e) => { e.preventDefault(); onclick(); }); li.append(a); return li; };
    const weights = (r.files || []).filter((f) => !f.name.toLowerCase().endsWith(".zip"));
    document.getElementById("wpick-list").replaceChildren(
      ...r.folders.map((f) => item(f.name + "/", () => browseWeights(f.path))),
      ...weights.map((f) => item(`${f.name} (${(f.bytes / 1048576).toFixed(1)} MiB)`, () => {
        document.getElementById("source-file").value = f.path; document.getElementById("weights-picker").close(); })));
  }

  async function upload(input, url, note) {
    const file = input.files[0];
    if (!file) return null;
    note.className = "muted"; note.textContent = `uploading ${file.name}…`;
    try {
      const body = await DY.api("POST", url(file), file);
      note.className = "ok-box"; return body;
    } catch (err) { note.className = "bad"; note.textContent = err.message; return null; }
    finally { input.value = ""; }
  }

  async function uploadWeights() {
    const note = document.getElementById("weights-note");
    const r = await upload(document.getElementById("weights-upload"), (f) => `/api/v1/uploads/weights?name=${encodeURIComponent(f.name)}`, note);
    if (!r) return;
    document.getElementById("source-file").value = r.path;
    note.textContent = `uploaded: ${r.tensors} tensors, ${(r.bytes / 1048576).toFixed(1)} MiB`;
  }

  async function importArchive() {
    const note = document.getElementById("archive-note");
    const r = await upload(document.getElementById("archive-upload"), (f) => `/api/v1/models/import?name=${encodeURIComponent(f.name.replace(/\.zip$/i, ""))}`, note);
    if (!r) return;
    const select = document.getElementById("source-store");
    [...select.options].forEach((o) => { if (!o.value || o.value === r.name) o.remove(); });
    select.append(Object.assign(document.createElement("option"), { value: r.name, textContent: `${r.name} (${r.network}, ${r.classes} classes)` }));
    select.value = r.name;
    note.textContent = `imported as store:${r.name}`;
  }

  let lrChart = null;
  async function schedule() {
    try {
      const cfg = config();
      const lrs = values(document.getElementById("lr-values").value, "float");
      const r = await DY.api("POST", "/api/v1/schedule/preview", { schedule: cfg.schedule, lr: lrs, epochs: cfg.epochs || 30, points: 200 });
      const xs = r.series[0].points.map((p) => p[0]);
      const data = [xs, ...r.series.map((s) => s.points.map((p) => p[1]))];
      const el = document.getElementById("lr-chart");
      if (lrChart) lrChart.destroy();
      el.replaceChildren();
      lrChart = DY.chart(el, r.series.map((s, i) => ({ label: `lr ${s.lr}`, color: ["#9333ea", "#2563eb", "#dc2626", "#16a34a"][i % 4] })), data, { ylabel: "learning rate" });
      el.dataset.series = String(r.series.length);
      DY.showError("lr-error", null);
    } catch (err) { DY.showError("lr-error", err); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const prefill = JSON.parse(document.getElementById("prefill").textContent);
    document.querySelector(".tabs").addEventListener("tabchange", (e) => { netTab = e.detail; });
    if (prefill && prefill.spec) setSpec(prefill.spec);
    const editor = document.getElementById("spec-editor");
    editor.addEventListener("input", DY.debounce(check, 400));
    document.getElementById("run-dataset").addEventListener("change", () => { taskChoices(); applyRecipe(); check(); });
    taskChoices();
    if (prefill) shownRecipe = recipe(); else applyRecipe();  // a clone's fields are its run's settings already
    document.getElementById("visualize").addEventListener("click", visualize);
    document.querySelectorAll("button.customize").forEach((b) => b.addEventListener("click", () => loadSpec(b.dataset.name)));
    document.getElementById("previous-run").addEventListener("change", async (e) => {
      if (!e.target.value) return;
      const c = await DY.api("POST", `/api/v1/runs/${e.target.value}/clone`);
      if (c.spec) setSpec(c.spec); else { const r = document.getElementById("net-" + c.network); if (r) { r.checked = true; document.querySelector('.tab[data-tab="standard"]').click(); } }
    });
    document.getElementById("source-kind").addEventListener("change", showSource);
    document.getElementById("browse-weights").addEventListener("click", async () => {
      const here = document.getElementById("source-file").value.trim();
      await browseWeights(here ? here.replace(/\/[^/]*$/, "") : null).catch(() => browseWeights(null));
      document.getElementById("weights-picker").showModal();
    });
    document.getElementById("wpick-cancel").addEventListener("click", () => document.getElementById("weights-picker").close());
    document.getElementById("weights-upload").addEventListener("change", uploadWeights);
    document.getElementById("archive-upload").addEventListener("change", importArchive);
    form().elements["schedule.policy"].addEventListener("change", showPolicyFields);
    document.querySelectorAll("button.preset").forEach((b) => b.addEventListener("click", () => applyPreset(b.dataset.preset)));
    document.querySelectorAll("button.finder").forEach((b) => b.addEventListener("click", () => find(b)));
    showPolicyFields();
    form().addEventListener("input", DY.debounce((e) => { if (e.target.id !== "spec-editor") schedule(); }, 300));
    form().addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const cfg = config(), net = network(), name = form().elements.name.value.trim();
        const { jobs } = await DY.api("POST", "/api/v1/runs", { dataset: form().elements.dataset.value, ...net, config: cfg, name: name || null,
          group: form().elements.group.value.trim() || null,
          lr: values(document.getElementById("lr-values").value, "float"), batch_size: values(document.getElementById("bs-values").value, "int") });
        // One run: its page at once (queued until a slot is free). A grid of runs: the home page, where they are
        // listed together (under their group when one was given), to compare when they are done.
        window.location = jobs.length === 1 ? `/jobs/${jobs[0].id}/run` : "/";
      } catch (err) { DY.showError("form-error", err); }
    });
    schedule();
  });
  return { config, network };
})();
