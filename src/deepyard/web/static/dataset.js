// Dataset page: a paged gallery by split and class (or label; regression has no filter), and delete.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const gallery = document.getElementById("gallery");
  if (gallery) showGallery(gallery);  // a text dataset has its own panel (textclass.js) instead

  document.getElementById("delete-dataset").addEventListener("click", async (e) => {
    if (!confirm("Delete this dataset and its files?")) return;
    try { await DY.api("DELETE", `/api/v1/datasets/${e.target.dataset.id}`); window.location = "/"; }
    catch (err) { alert(err.message); }
  });
});

function showGallery(gallery) {
  const id = gallery.dataset.dataset;
  const split = document.getElementById("g-split"), cls = document.getElementById("g-class");
  const info = document.getElementById("g-info"), size = 48;
  let offset = 0, total = 0;

  async function load() {
    const q = new URLSearchParams({ split: split.value, offset, limit: size });
    if (cls && cls.value !== "") q.set("label", cls.value);
    const page = await DY.api("GET", `/api/v1/datasets/${id}/samples?${q}`);
    total = page.total;
    gallery.replaceChildren(...page.items.map((it) => {
      const fig = document.createElement("figure"), img = document.createElement("img"), cap = document.createElement("figcaption");
      img.src = `/api/v1/datasets/${id}/images/${split.value}/${it.index}.png`; img.alt = it.class; img.loading = "lazy"; img.title = it.class;
      cap.textContent = it.class; fig.append(img, cap); return fig;
    }));
    info.textContent = total ? `${offset + 1}–${Math.min(offset + size, total)} of ${total}` : "no images";
  }
  split.addEventListener("change", () => { offset = 0; load(); });
  if (cls) cls.addEventListener("change", () => { offset = 0; load(); });
  document.getElementById("g-prev").addEventListener("click", () => { if (offset > 0) { offset = Math.max(0, offset - size); load(); } });
  document.getElementById("g-next").addEventListener("click", () => { if (offset + size < total) { offset += size; load(); } });
  load();
}
