// New dataset: the task, source tabs (folder, zip, list files, CSV), the folder picker (inside the allowed roots
// only), zip upload, live resize preview.
"use strict";
const NewDataset = (() => {
  const form = () => document.getElementById("dataset-form");
  let source = "folder";

  function options() {
    const out = {};
    form().querySelectorAll(".fields [data-kind]").forEach((el) => {
      if (el.dataset.kind === "checkbox") out[el.name] = el.checked;
      else if (el.dataset.kind === "int" || el.dataset.kind === "float") { if (el.value !== "") out[el.name] = Number(el.value); else if (el.dataset.optional) out[el.name] = null; }
      else out[el.name] = el.value;
    });
    out.channels = Number(out.channels);
    return out;
  }

  const val = (n) => (form().elements[n].value.trim() || null);
  function spec() {
    let src;
    if (source === "list") src = { kind: "list", train: val("list.train"), labels: val("list.labels"), val: val("list.val"), test: val("list.test"), base: val("list.base") };
    else if (source === "csv") {
      const columns = (val("csv.target_columns") || "").split(",").map((c) => c.trim()).filter(Boolean);
      src = { kind: "csv", train: val("csv.train"), val: val("csv.val"), test: val("csv.test"), base: val("csv.base"),
        image_column: val("csv.image_column"), target_columns: columns.length ? columns : null };
    } else if (source === "texts") {
      const length = val("texts.max_length");
      src = { kind: "labelled-text", train: val("texts.train"), val: val("texts.val"), tokenizer: val("texts.tokenizer"),
        vocab_size: Number(val("texts.vocab_size") || 1024), max_length: length ? Number(length) : null };
    } else src = { kind: "folder", train: val("source.train"), val: val("source.val"), test: val("source.test") };
    return { name: form().elements.name.value.trim(), task: form().elements.task.value, source: src, ...options() };
  }

  // The folder the preview takes its first image from: the train folder, or a list's or CSV's base (else its folder).
  function previewFolder() {
    if (source === "list" || source === "csv") {
      const file = val(`${source}.train`);
      return val(`${source}.base`) || (file && file.includes("/") ? file.replace(/\/[^/]*$/, "") || "/" : null);
    }
    return val("source.train");
  }

  function showTask() {
    const opt = document.getElementById("ds-task").selectedOptions[0];
    document.getElementById("task-help").textContent = `${opt.dataset.targets}. Sources: ${opt.dataset.sources}`;
  }

  async function preview() {
    const o = options(), img = document.getElementById("resize-preview");
    const body = { width: o.width, height: o.height, channels: o.channels, resize_mode: o.resize_mode, fill: o.fill, fill_value: o.fill_value,
      folder: previewFolder() };
    try {
      const res = await DY.api("POST", "/api/v1/datasets/resize-preview", body, true);
      img.src = URL.createObjectURL(await res.blob()); DY.showError("preview-error", null);
    } catch (err) { DY.showError("preview-error", err); }
  }

  // The folder picker: lists sub-folders through /api/v1/folders (which refuses anything outside the roots).
  let pickTarget = null, here = null, parent = null;
  async function browse(path) {
    const r = await DY.api("GET", "/api/v1/folders" + (path ? "?path=" + encodeURIComponent(path) : ""));
    here = r.path; parent = r.parent;
    document.getElementById("picker-path").textContent = here || "allowed folders";
    document.getElementById("picker-images").textContent = here ? `${r.images} image(s) here` : "";
    document.getElementById("picker-list").replaceChildren(...r.folders.map((f) => {
      const li = document.createElement("li"), a = document.createElement("a");
      a.href = "#"; a.textContent = f.name + "/"; a.addEventListener("click", (e) => { e.preventDefault(); browse(f.path); });
      li.append(a); return li;
    }));
  }

  // MNIST from its IDX files (POST /api/v1/datasets/mnist): the folder, and the Images settings as the spec.
  function importMnist(group) {
    const { source: _, ...fields } = spec();
    return DY.api("POST", "/api/v1/datasets/mnist", { folder: val("mnist.folder"), spec: fields, group });
  }

  // MNIST's own geometry when its tab is chosen: 28x28 grey.
  function mnistDefaults() {
    const set = (name, v) => { const el = form().elements[name]; if (el) el.value = v; };
    set("width", "28"); set("height", "28"); set("channels", "1");
    if (!form().elements.name.value.trim()) form().elements.name.value = "mnist";
  }

  async function upload() {
    const file = document.getElementById("zip-file").files[0], status = document.getElementById("zip-status");
    if (!file) { status.textContent = "choose a .zip first"; return; }
    status.textContent = "uploading…";
    try {
      const r = await DY.api("POST", "/api/v1/datasets/uploads", file);
      form().elements["source.train"].value = r.path;
      status.textContent = `uploaded: ${r.classes.length} classes in ${r.path}`;
      document.querySelector('.tab[data-tab="folder"]').click();
      preview();
    } catch (err) { status.textContent = err.message; }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelector(".tabs").addEventListener("tabchange", (e) => {
      if (e.detail === "mnist") mnistDefaults();
      if (e.detail === "texts") { document.getElementById("ds-task").value = "text-classification"; showTask(); }
      if (e.detail !== "upload") {  // texts: no preview, and of these settings only the split's and the caps apply
        document.getElementById("preview-card").hidden = e.detail === "texts";
        document.getElementById("options-title").textContent = e.detail === "texts" ? "Split (the image settings do not apply to texts)" : "Images";
      }
      if (e.detail !== "upload") { source = e.detail; preview(); }
    });
    document.getElementById("ds-task").addEventListener("change", showTask);
    document.querySelectorAll(".pick-folder").forEach((b) => b.addEventListener("click", async () => {
      pickTarget = document.getElementById(b.dataset.target);
      await browse(pickTarget.value.trim() || null).catch(() => browse(null));
      document.getElementById("picker").showModal();
    }));
    document.getElementById("picker-up").addEventListener("click", () => browse(parent));
    document.getElementById("picker-cancel").addEventListener("click", () => document.getElementById("picker").close());
    document.getElementById("picker-choose").addEventListener("click", () => {
      if (here) { pickTarget.value = here; preview(); }
      document.getElementById("picker").close();
    });
    document.getElementById("zip-upload").addEventListener("click", upload);
    form().addEventListener("input", DY.debounce(preview, 300));
    form().addEventListener("change", DY.debounce(preview, 300));
    form().addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const group = form().elements.group.value.trim() || null;
        const r = source === "mnist" ? await importMnist(group)
          : await DY.api("POST", "/api/v1/datasets", { spec: spec(), group });
        window.location = `/jobs/${r.job.id}/dataset`;  // the dataset's page at once: the build's progress, then the dataset
      } catch (err) { DY.showError("form-error", err); }
    });
    preview();
  });
  return { spec };
})();
