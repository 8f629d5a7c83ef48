// A job's page (and the page of a dataset while its build runs): status, progress, message, error and log, polled
// about once a second until the job ends; Abort, Resume (only when it can help) and Forget. A dataset build that
// is done goes on to the dataset's own page.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("job-page"), id = root.dataset.job, forward = root.dataset.forward;
  const $ = (name) => document.getElementById("job-" + name);
  const logBox = $("log");
  let offset = 0, timer = null;

  function show(j) {
    $("status").textContent = forward && j.status === "running" ? "building" : j.status;
    $("status").className = "status s-" + j.status;
    $("progress").hidden = !["queued", "running"].includes(j.status);
    $("progress").firstElementChild.style.width = (100 * j.progress).toFixed(1) + "%";
    $("message").textContent = (j.status === "failed" ? "failed while: " : "") + j.message + (j.eta_s ? ` · about ${DY.fmt.secs(j.eta_s)} left` : "");
    $("error").textContent = j.error || ""; $("error").hidden = !j.error;
    $("permanent").hidden = !j.permanent;
    $("history").textContent = j.history.map(([s, when]) => `${s} ${when}`).join(" → ");
    $("abort").hidden = !["queued", "running"].includes(j.status);
    $("resume").hidden = !j.resumable;
    $("forget").hidden = j.status === "running";
    $("target").hidden = !(j.status === "done" && j.target);
    if (j.target) $("target").href = (j.kind === "dataset" ? "/datasets/" : "/runs/") + j.target;
  }

  async function readLog() {
    const chunk = await DY.api("GET", `/api/v1/jobs/${id}/log?offset=${offset}`);
    if (chunk.offset < offset) logBox.textContent = "";  // a new attempt's log replaced the old tail
    if (chunk.text) { logBox.textContent += chunk.text; logBox.scrollTop = logBox.scrollHeight; }
    offset = chunk.offset;
  }

  async function poll() {
    clearTimeout(timer);
    let j;
    try { j = await DY.api("GET", `/api/v1/jobs/${id}`); await readLog(); }
    catch (err) { $("error").textContent = err.message; $("error").hidden = false; return; }  // forgotten meanwhile
    if (forward && j.status === "done" && j.target) { window.location = `/datasets/${j.target}`; return; }
    show(j);
    if (["queued", "running"].includes(j.status)) timer = setTimeout(poll, 1000);
  }

  const act = (button, method, path, after) => button.addEventListener("click", async () => {
    try { await DY.api(method, `/api/v1/jobs/${id}${path}`); after(); } catch (err) { alert(err.message); }
  });
  act($("abort"), "POST", "/abort", poll);
  act($("resume"), "POST", "/resume", poll);
  act($("forget"), "DELETE", "", () => { window.location = "/"; });
  poll();
});
