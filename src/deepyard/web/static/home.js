// Home: filter, sorting, groups (fold, set), sparklines, live run status over SSE, batch compare, abort, delete.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("canvas[data-spark]").forEach((c) => DY.sparkline(c, JSON.parse(c.dataset.spark)));

  const members = (table, group) => [...table.querySelectorAll("tbody tr[data-text]")].filter((tr) => tr.dataset.group === group);
  const filter = document.getElementById("filter");
  filter.addEventListener("input", () => {
    const q = filter.value.toLowerCase();
    document.querySelectorAll("table.filterable").forEach((table) => {
      table.querySelectorAll("tbody tr[data-text]").forEach((tr) => {
        tr.hidden = q !== "" && !tr.dataset.text.toLowerCase().includes(q);
      });
      table.querySelectorAll("tr.group-head").forEach((head) => {  // a group with nothing left to show hides too
        head.hidden = members(table, head.dataset.group).every((tr) => tr.hidden);
      });
    });
  });

  // Groups fold and unfold; the browser remembers which are folded.
  document.querySelectorAll("tr.group-head").forEach((head) => {
    const table = head.closest("table"), button = head.querySelector("button.fold");
    const key = `dy.fold.${table.dataset.kind}.${head.dataset.group}`;
    const label = button.textContent.slice(2);
    const show = (open) => {
      members(table, head.dataset.group).forEach((tr) => tr.classList.toggle("folded", !open));
      button.setAttribute("aria-expanded", String(open));
      button.textContent = (open ? "▾ " : "▸ ") + label;
      if (open) localStorage.removeItem(key); else localStorage.setItem(key, "1");
    };
    show(localStorage.getItem(key) !== "1");
    button.addEventListener("click", () => show(button.getAttribute("aria-expanded") !== "true"));
    head.querySelector("input.pick-group").addEventListener("change", (e) => {
      members(table, head.dataset.group).filter((tr) => !tr.hidden)  // what the filter hides is not picked
        .forEach((tr) => { const box = tr.querySelector("input.pick"); if (box) box.checked = e.target.checked; });  // a build has none
    });
  });

  // Sorting: a click on a column heading sorts the rows within each group (again: the other way); remembered.
  const cellValue = (tr, col, kind) => {
    const td = tr.children[col], raw = td.dataset.value !== undefined ? td.dataset.value : td.textContent.trim();
    if (kind !== "num") return raw.toLowerCase();
    const n = parseFloat(raw);
    return Number.isFinite(n) ? n : null;  // "–": no value, always last
  };
  function sortTable(table, col, dir) {
    const th = table.tHead.rows[0].cells[col], kind = th.dataset.sort, sign = dir === "ascending" ? 1 : -1;
    const segments = [];
    for (const tr of [...table.tBodies[0].rows]) {
      if (tr.classList.contains("group-head") || !segments.length) segments.push([tr.classList.contains("group-head") ? tr : null, []]);
      if (!tr.classList.contains("group-head")) segments[segments.length - 1][1].push(tr);
    }
    const compare = (a, b) => {
      const x = cellValue(a, col, kind), y = cellValue(b, col, kind);
      if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
      return (x < y ? -1 : x > y ? 1 : 0) * sign;
    };
    table.tBodies[0].replaceChildren(...segments.flatMap(([head, rows]) => [...(head ? [head] : []), ...rows.sort(compare)]));
    [...table.tHead.rows[0].cells].forEach((c) => c.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", dir);
    localStorage.setItem(`dy.sort.${table.id}`, `${col}:${dir}`);
  }
  document.querySelectorAll("table.filterable").forEach((table) => {
    table.querySelectorAll("th[data-sort]").forEach((th) => th.addEventListener("click", () => {
      sortTable(table, th.cellIndex, th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending");
    }));
    const saved = (localStorage.getItem(`dy.sort.${table.id}`) || "").split(":");
    if (saved.length === 2 && table.tHead.rows[0].cells[+saved[0]]?.dataset.sort) sortTable(table, +saved[0], saved[1]);
  });

  const picked = (table = "runs") => [...document.querySelectorAll(`#${table} input.pick:checked`)].map((c) => c.value);
  const dialog = document.getElementById("group-dialog");
  document.querySelectorAll("button.group-selected").forEach((button) => button.addEventListener("click", () => {
    const table = button.closest(".batch").dataset.for, ids = picked(table);
    if (!ids.length) { alert("Select the rows to group first."); return; }
    const kind = document.getElementById(table).dataset.kind;
    const groups = new Set(ids.map((id) => document.querySelector(`#${table} input.pick[value="${id}"]`).closest("tr").dataset.group));
    dialog.querySelector("input").value = groups.size === 1 ? [...groups][0] : "";
    dialog.querySelector(".what").textContent = `${ids.length} ${kind}${ids.length === 1 ? "" : "s"}`;
    dialog.onclose = async () => {
      if (dialog.returnValue !== "set") return;
      try {
        await DY.api("PUT", "/api/v1/groups", { kind, ids, group: dialog.querySelector("input").value });
        window.location.reload();
      } catch (err) { alert(err.message); }
    };
    dialog.returnValue = "";  // Esc or Cancel: nothing is sent
    dialog.showModal();
  }));
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
  const deleter = (button, table, noun, url) => button && button.addEventListener("click", async () => {
    const ids = picked(table);
    if (!ids.length || !confirm(`Delete ${ids.length} ${noun}(s) and their files?`)) return;
    const failed = [];
    for (const id of ids) {
      try { await DY.api("DELETE", url(id)); } catch (err) { failed.push(`${id}: ${err.message}`); }
    }
    if (failed.length) alert(failed.join("\n"));
    window.location.reload();
  });
  deleter(document.getElementById("delete-selected"), "runs", "run", (id) => `/api/v1/runs/${id}`);
  deleter(document.getElementById("delete-datasets"), "datasets", "dataset", (id) => `/api/v1/datasets/${id}`);

  const known = new Set([...document.querySelectorAll("tr[data-run]")].map((tr) => tr.dataset.run));
  const jobsBody = document.querySelector("#jobs tbody");
  // A job's row: what it makes (linked), its status (linked to the job's page: progress, error, log), its message;
  // a failed job shows its error instead, linked to the job's page. Resume only where it can help (j.resumable).
  function jobRow(j) {
    const tr = document.createElement("tr"); tr.dataset.job = j.id;
    const what = j.kind === "dataset" ? (j.params.spec && j.params.spec.name) : (j.params.name || j.params.run || j.params.model || j.params.network && (j.params.network.name || j.params.network));
    const made = j.target && (j.kind !== "dataset" || j.status === "done");
    const link = made ? (j.kind === "dataset" ? `/datasets/${j.target}` : `/runs/${j.target}`) : j.kind === "dataset" ? `/jobs/${j.id}/dataset` : null;
    const failed = j.status === "failed" && j.error;
    const cells = [[link, `${what || j.kind}`], [null, j.kind], [`/jobs/${j.id}`, j.status], [null, ""], [failed ? `/jobs/${j.id}` : null, failed ? j.error : j.message || j.error || ""]];
    cells.forEach(([href, txt], i) => {
      const td = document.createElement("td"), el = document.createElement(href ? "a" : i === 3 ? "div" : "span");
      if (href) el.href = href;
      if (i === 2) el.className = "status s-" + j.status;
      if (i === 4 && failed) { el.className = "bad job-reason"; el.title = "the reason and the log"; el.style.textDecoration = "underline"; }
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
    if (j.resumable) button("Resume", "resume");
    if (j.status !== "running") button("Forget", "delete", "DELETE");
    tr.append(td);
    return tr;
  }

  // A dataset being built: its row in the datasets table follows its job; one the page does not have yet reloads it.
  function showBuild(j) {
    const tr = document.querySelector(`tr[data-build="${j.id}"]`);
    if (!tr) return j.status !== "done";
    const st = tr.querySelector('[data-field="status"]');
    st.textContent = j.status === "running" ? "building" : j.status; st.className = "status s-" + j.status;
    const bar = tr.querySelector('[data-field="progress"]');
    bar.hidden = !["queued", "running"].includes(j.status); bar.firstElementChild.style.width = (100 * j.progress).toFixed(1) + "%";
    const msg = tr.querySelector('[data-field="message"]');
    msg.textContent = j.error || j.message; msg.className = j.status === "failed" ? "bad" : "muted";
    return false;
  }

  DY.events("/api/v1/events", {
    hardware: DY.hardware,
    jobs: (list) => {
      const sets = new Set([...document.querySelectorAll("#datasets tbody tr")].map((tr) => tr.dataset.id));
      if (list.some((j) => j.kind === "dataset" && j.status === "done" && j.target && !sets.has(j.target))) {
        window.location.reload(); return;  // a dataset was built: render it with the others
      }
      if (list.filter((j) => j.kind === "dataset").map(showBuild).some(Boolean)) { window.location.reload(); return; }
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
      tr.querySelector('[data-field="train_loss"]').parentElement.dataset.value = r.train_loss ?? "";
      const score = tr.querySelector("td[data-metric]"), h = r.headline || { value: r.val_top1 };  // the task's headline
      const shown = score.dataset.unit === "%" ? DY.fmt.pct(h.value) : DY.fmt.num(h.value);
      if (score.dataset.field === "val_top1") score.textContent = shown;
      else score.replaceChildren(Object.assign(document.createElement("small"), { className: "muted", textContent: score.dataset.label }), ` ${shown}`);
      score.dataset.value = h.value ?? "";
      tr.querySelector('[data-field="progress"]').parentElement.dataset.value = r.progress;
      DY.sparkline(tr.querySelector("canvas.spark"), r.spark);
    }),
  });
});
