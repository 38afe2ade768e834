// The workflow draft editor (admin console). The page works without this script: every row
// is a form field with an indexed name, a "Remove" checkbox drops a row, a blank row adds one,
// and the view tabs are links. This adds rows in place (from each list's <template>), removes
// them with a button, switches between the form and the YAML/JSON view without a reload, shows
// only the fields a rule's trigger and an action need, keeps the state-name suggestions current,
// and takes the keyboard to the error summary and from there to each field.
(function () {
  "use strict";
  const root = document.getElementById("wf-editor");
  if (!root) return;
  root.classList.add("wf-js-on");

  let hints = {};
  try { hints = JSON.parse(root.dataset.actionHints || "{}"); } catch (e) { hints = {}; }

  // -- views ----------------------------------------------------------------------------------
  const tabs = Array.from(root.querySelectorAll("[role=tab][data-view-link]"));
  const panels = Array.from(root.querySelectorAll("[data-view-panel]"));

  function showView(view, push) {
    panels.forEach((panel) => { panel.hidden = panel.dataset.viewPanel !== view; });
    tabs.forEach((tab) => tab.setAttribute("aria-selected", String(tab.dataset.viewLink === view)));
    root.dataset.view = view;
    if (push) {
      const url = new URL(window.location.href);
      url.searchParams.set("view", view);
      url.hash = "";
      window.history.replaceState(null, "", url);
    }
  }

  root.addEventListener("click", (event) => {
    const link = event.target.closest("[data-view-link]");
    if (link) {
      event.preventDefault();
      showView(link.dataset.viewLink, true);
      const tab = tabs.find((t) => t.dataset.viewLink === link.dataset.viewLink);
      if (tab) tab.focus();
      return;
    }
    const fieldLink = event.target.closest("[data-field-link]");
    if (fieldLink) {
      const target = document.getElementById(fieldLink.dataset.fieldLink);
      if (!target) return;
      event.preventDefault();
      showView("form", true);
      focusField(target);
      return;
    }
    const add = event.target.closest("[data-add-row]");
    if (add) {
      addRow(document.getElementById(add.dataset.addRow));
      return;
    }
    const remove = event.target.closest("[data-remove-row]");
    if (remove) removeRow(remove.closest("[data-row]"));
  });

  function focusField(target) {
    const input = target.matches("input, select, textarea")
      ? target : target.querySelector("input, select, textarea");
    for (let d = target.closest("details"); d; d = d.parentElement.closest("details")) d.open = true;
    target.scrollIntoView({ block: "center" });
    (input || target).focus({ preventScroll: true });
  }

  // Arrow keys move between the two tabs, as a tablist should.
  tabs.forEach((tab, i) => tab.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const next = tabs[(i + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    showView(next.dataset.viewLink, true);
    next.focus();
  }));

  // -- rows -----------------------------------------------------------------------------------
  function addRow(list) {
    if (!list) return;
    // The list's own template, or the page-wide one its rows share (a rule's conditions and
    // actions), whose __p__ is the list's prefix: dotted in names, dashed in ids ("f-...").
    const template = Array.from(list.children).find((c) => c.tagName === "TEMPLATE")
      || document.getElementById(list.dataset.template);
    const rows = list.querySelector("[data-rows]");
    const index = Number(list.dataset.next || 0);
    list.dataset.next = String(index + 1);
    let html = template.innerHTML;
    const prefix = list.dataset.prefix;
    if (prefix) {
      html = html.split("f-__p__").join("f-" + prefix.replace(/\./g, "-")).split("__p__").join(prefix);
    }
    html = html.split(list.dataset.placeholder).join(String(index));
    const holder = document.createElement("template");
    holder.innerHTML = html;
    const row = holder.content.firstElementChild;
    rows.appendChild(holder.content);
    enhance(row);
    const first = row.querySelector("input[type=text], select");
    if (first) first.focus();
  }

  function removeRow(row) {
    if (!row) return;
    const list = row.closest(".wf-list");
    row.remove();
    const add = list && list.querySelector(":scope > [data-add-row]");
    if (add) add.focus();
    refreshStateNames();
  }

  // -- what each row shows --------------------------------------------------------------------
  function showTrigger(select) {
    const rule = select.closest(".wf-rule-body");
    if (!rule) return;
    const byEvent = select.value !== "after";
    rule.querySelectorAll(":scope > .wf-grid > .wf-trigger-event").forEach((el) => { el.hidden = !byEvent; });
    rule.querySelectorAll(":scope > .wf-trigger-after").forEach((el) => { el.hidden = byEvent; });
  }

  function showActionFields(select) {
    const row = select.closest(".wf-action");
    if (!row) return;
    const value = row.querySelector("[data-action-value]");
    if (value) value.placeholder = hints[select.value] || "";
    // Actions that take no value (raise_priority, ...) have no hint: their field goes away.
    const valueField = value && value.closest(".wf-field");
    if (valueField) valueField.hidden = Boolean(select.value) && !hints[select.value] && !value.value;
    const message = row.querySelector(".wf-message");
    const text = message && message.querySelector("input");
    if (message) message.hidden = select.value !== "notify" && !(text && text.value);
  }

  function enhance(scope) {
    scope.querySelectorAll("[data-trigger]").forEach(showTrigger);
    scope.querySelectorAll("[data-action]").forEach(showActionFields);
  }

  root.addEventListener("change", (event) => {
    if (event.target.matches("[data-trigger]")) showTrigger(event.target);
    if (event.target.matches("[data-action]")) showActionFields(event.target);
  });

  // -- suggestions for "to" and "initial": the states as typed so far --------------------------
  const stateNames = document.getElementById("wf-state-names");
  function refreshStateNames() {
    if (!stateNames) return;
    const names = new Set();
    root.querySelectorAll("[data-state-name]").forEach((input) => {
      if (input.value.trim()) names.add(input.value.trim());
    });
    stateNames.replaceChildren(...Array.from(names).map((name) => {
      const option = document.createElement("option");
      option.value = name;
      return option;
    }));
  }
  root.addEventListener("input", (event) => {
    if (event.target.matches("[data-state-name]")) refreshStateNames();
  });

  enhance(root);
  const summary = document.getElementById("wf-summary");
  if (summary && !window.location.hash) summary.focus();
})();
