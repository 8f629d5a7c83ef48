// Run page of a language model: the validation samples (polled while the run trains) and the Generate box.
"use strict";
(() => {
  const box = document.getElementById("lm"); if (!box) return;
  const run = box.dataset.run, list = document.getElementById("lm-samples"), out = document.getElementById("lm-output");
  let shown = -1;

  function render(samples) {
    if (!samples.length || samples.length === shown) return;
    shown = samples.length;
    list.replaceChildren(...samples.slice().reverse().map((s) => {
      const item = document.createElement("div"); item.className = "lm-sample";
      const head = document.createElement("div"); head.className = "muted";
      head.textContent = "step " + s.step + (s.val_loss == null ? "" : " · val loss " + DY.fmt.num(s.val_loss));
      const text = document.createElement("pre"); text.className = "log";
      const prompt = document.createElement("b"); prompt.textContent = s.prompt;
      text.append(prompt, document.createTextNode(s.text));
      item.append(head, text); return item;
    }));
  }

  async function poll() {
    try { render((await DY.api("GET", "/api/v1/runs/" + run + "/samples")).samples); } catch (_) { /* next time */ }
  }
  poll(); setInterval(poll, 5000);

  // The Generate box: POST .../generate with stream: NDJSON lines read as they arrive ({model, prompt}, then
  // {text} pieces, then {done} or {error}), so the text grows in the page as it is made. A new request, or leaving
  // the page, aborts the one before (the server stops generating when its client has gone).
  let current = null;
  async function generate(body) {
    if (current) current.abort();
    const ctrl = new AbortController(); current = ctrl;
    const res = await DY.api("POST", "/api/v1/runs/" + run + "/generate", { ...body, stream: true }, true, ctrl.signal);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const text = document.createTextNode("");
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const lines = (rest + value).split("\n"); rest = lines.pop();
      for (const line of lines.filter(Boolean)) {
        const doc = JSON.parse(line);
        if (doc.prompt !== undefined) {
          const prompt = document.createElement("b"); prompt.textContent = doc.prompt;
          out.replaceChildren(prompt, text);
        } else if (doc.text !== undefined) text.appendData(doc.text);
        else if (doc.error !== undefined) throw new Error(doc.error);
        else if (doc.done) { out.dataset.done = "1"; out.title = `${doc.tokens_per_s} tokens/s`; }
      }
    }
  }

  document.getElementById("lm-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const val = (id) => document.getElementById(id).value;
    const body = { length: Number(val("lm-length")), temperature: Number(val("lm-temperature")), seed: Number(val("lm-seed")) };
    if (val("lm-prompt")) body.prompt = val("lm-prompt");
    if (val("lm-topk")) body.top_k = Number(val("lm-topk"));
    out.textContent = "generating…"; out.classList.remove("error"); delete out.dataset.done;
    try { await generate(body); } catch (err) {
      if (err.name !== "AbortError") { out.textContent = err.message; out.classList.add("error"); }
    }
  });
})();
