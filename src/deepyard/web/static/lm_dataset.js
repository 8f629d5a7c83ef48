// Dataset page of a language model: passages from each split, the vocabulary and the undecodable bytes replaced,
// from GET /api/v1/datasets/ID/text.
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const box = document.getElementById("lm-dataset"); if (!box) return;
  const el = (tag, props, ...kids) => { const e = Object.assign(document.createElement(tag), props); e.append(...kids); return e; };
  try {
    const doc = await DY.api("GET", `/api/v1/datasets/${box.dataset.dataset}/text`);
    document.getElementById("lm-passages").replaceChildren(...Object.entries(doc.passages).map(([split, found]) =>
      el("div", { className: "lm-split" }, el("h3", { textContent: split }),
        ...found.map((p) => el("div", { className: "lm-passage" },
          el("div", { className: "muted", textContent: `token ${p.offset.toLocaleString()}` }),
          el("pre", { className: "log", textContent: p.text }))))));
    const vocab = doc.vocabulary;
    document.getElementById("lm-vocab-size").textContent = vocab.shown.length < vocab.size
      ? `the first ${vocab.shown.length} of ${vocab.size.toLocaleString()} tokens` : `${vocab.size} tokens`;
    document.getElementById("lm-vocab").replaceChildren(...vocab.shown.flatMap((t) => [el("code", { textContent: t }), " "]));
    if (doc.replaced.length) {
      const note = document.getElementById("lm-replaced"); note.hidden = false;
      note.textContent = "Bytes that were not UTF-8, replaced by U+FFFD: " +
        doc.replaced.map((r) => `${r.path} (${r.bytes})`).join(", ");
    }
  } catch (err) { document.getElementById("lm-passages").replaceChildren(el("p", { className: "error-box", textContent: err.message })); }
});
