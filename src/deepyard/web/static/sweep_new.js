// New sweep: the form as a POST /api/v1/sweeps body; every change is checked by /api/v1/sweeps/check, so a bad
// key or value (named with the valid ones) shows before anything is queued. Fixed settings are YAML key: value
// lines, sent as text for the server to parse with the space.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const dataset = $("sw-dataset"), network = $("sw-network"), objective = $("sw-objective");

  function monitors() {  // the chosen dataset's task decides what can be the objective, and its recipe
    const opt = dataset.selectedOptions[0], keep = objective.value;
    const names = opt ? JSON.parse(opt.dataset.monitors) : ["val_loss"];
    objective.replaceChildren(...names.map((n) => new Option(n, n)));
    if (names.includes(keep)) objective.value = keep;
    const recipe = Object.entries(JSON.parse(opt?.dataset.recipe || "{}")).map(([k, v]) => `${k}: ${v}`);
    $("sw-recipe").textContent = `Under them, the task's recipe: ${recipe.join(", ")} (the fixed settings win)`;
    $("sw-recipe").hidden = !recipe.length;
  }

  function body() {
    const minutes = parseFloat($("sw-minutes").value), trials = parseInt($("sw-trials").value, 10);
    const b = { dataset: dataset.value, space_text: $("sw-space").value, objective: objective.value,
      sampler: $("sw-sampler").value, prune: $("sw-prune").value, config_text: $("sw-config").value };
    if (!isNaN(trials)) b.trials = trials;
    if (!isNaN(minutes) && minutes > 0) b.max_seconds = minutes * 60;
    if ($("sw-name").value.trim()) b.name = $("sw-name").value.trim();
    if ($("sw-group").value.trim()) b.group = $("sw-group").value.trim();
    if (network.value === "spec") b.network_spec = $("sw-spec").value;
    else if (network.value) b.networks = [network.value];
    return b;
  }

  const check = DY.debounce(async () => {
    try {
      const { space, direction } = await DY.api("POST", "/api/v1/sweeps/check", body());
      DY.showError("sweep-error", null);
      $("sweep-ok").textContent = `${Object.keys(space).length} setting(s) searched, ${direction} ${objective.value}`;
      $("sweep-ok").hidden = false;
    } catch (err) { $("sweep-ok").hidden = true; DY.showError("sweep-error", err); }
  }, 300);

  network.addEventListener("change", () => { $("sw-spec-wrap").hidden = network.value !== "spec"; });
  dataset.addEventListener("change", monitors);
  $("sweep-form").addEventListener("input", check);
  $("sweep-form").addEventListener("change", check);
  $("sweep-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const created = await DY.api("POST", "/api/v1/sweeps", body());
      window.location = `/sweeps/${created.id}`;
    } catch (err) { DY.showError("sweep-error", err); }
  });
  monitors();
  check();
});
