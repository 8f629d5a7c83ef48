// Text classification: the run page's Classify text box (its Evaluate and Export panels are run_infer.js'), and the
// dataset page's texts per class and length histogram. The server renders the results (the task's partials,
// autoescaped); texts we draw here go in as textContent, never as HTML.
"use strict";
(() => {
  const run = document.getElementById("tc");
  if (run) {
    const id = run.dataset.run, form = document.getElementById("tc-form"), result = document.getElementById("tc-result");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const text = document.getElementById("tc-text").value;
      try {
        const doc = await DY.api("POST", "/api/v1/runs/" + id + "/classify-text", { text, k: 5 });
        result.innerHTML = doc.predictions[0].html;  // the task's predict.html: class names escaped by Jinja
        document.getElementById("tc-model").textContent = "snapshot " + doc.model.snapshot + (doc.model.step == null ? "" : ", step " + doc.model.step);
        DY.showError("tc-error", null);
      } catch (err) { DY.showError("tc-error", err); }
    });
  }

  const ds = document.getElementById("tc-dataset");
  if (!ds) return;
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; };

  function samples(doc) {
    const box = document.getElementById("tc-samples");
    box.replaceChildren(...doc.classes.map((c) => {
      const part = el("div", "tc-class");
      const head = el("h3", null, `${c.name} `); head.append(el("small", "muted", `${c.count} texts in ${doc.split}`));
      part.append(head);
      const list = el("ul", "tc-list");
      for (const e of c.examples) {
        const li = el("li"); li.title = e.source;
        li.append(el("span", "tc-text", e.text), el("small", "muted", ` · ${e.tokens} tokens`));
        list.append(li);
      }
      part.append(list); return part;
    }));
  }

  function lengths(doc) {
    const h = doc.lengths, box = document.getElementById("tc-lengths");
    if (!h || !h.edges) { box.textContent = "no histogram in the build report"; return; }
    let used = 1;  // the bins up to the last one any class fills
    for (const c of Object.values(h.per_class)) if (c.train) c.train.counts.forEach((n, i) => { if (n) used = Math.max(used, i + 1); });
    const labels = h.edges.slice(0, used).map((e, i) => (i + 1 < h.edges.length ? `${e}–${h.edges[i + 1] - 1}` : `${e}+`));
    const table = el("table", "grid tc-hist"); table.id = "tc-hist";
    const head = el("tr"); head.append(el("th", null, "class"), ...labels.map((l) => el("th", null, l)), el("th", null, "min / median / max"));
    table.append(head);
    let top = 1;
    for (const c of Object.values(h.per_class)) if (c.train) top = Math.max(top, ...c.train.counts);
    for (const [name, c] of Object.entries(h.per_class)) {
      const row = el("tr"); row.append(el("td", null, name));
      const counts = (c.train ? c.train.counts : labels.map(() => 0)).slice(0, used);
      for (const n of counts) {
        const cell = el("td", "tc-bin"); const bar = el("div", "tc-vbar"); bar.style.height = `${Math.round(40 * n / top)}px`;
        cell.append(bar, el("small", null, String(n))); row.append(cell);
      }
      row.append(el("td", "muted", c.train ? `${c.train.min} / ${c.train.median} / ${c.train.max}` : "–"));
      table.append(row);
    }
    box.replaceChildren(table);
  }

  async function load() {
    const split = document.getElementById("tc-split").value;
    try {
      const doc = await DY.api("GET", `/api/v1/datasets/${ds.dataset.dataset}/texts?split=${encodeURIComponent(split)}&per_class=3`);
      samples(doc); lengths(doc);
    } catch (err) { document.getElementById("tc-samples").textContent = String(err.message || err); }
  }
  document.getElementById("tc-split").addEventListener("change", load);
  load();
})();
