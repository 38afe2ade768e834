// The agent's ticket queue: live rows from `ticket_updated` events, SLA countdowns, bulk
// selection (bulk actions offer only the transitions every selected ticket can take), keyboard
// navigation (j/k/x/Enter, ? for help), the views drawer, filters applied on change, and the
// sidebar's live counts.
// Rows always come from the server (/agent/rows renders the same partial as the page), so the
// filters decide in one place which tickets belong here.
(function () {
  "use strict";
  const root = document.getElementById("queue");
  if (!root || !window.AutoCRM) return;
  const tbody = document.getElementById("queue-rows");
  const empty = document.getElementById("queue-empty");
  const live = document.getElementById("queue-live");
  const rowsUrl = root.dataset.rowsUrl;
  const query = root.dataset.query || "";
  const firstPage = root.dataset.firstPage === "1";
  const rooms = JSON.parse(root.dataset.rooms || "[]");

  // -- SLA countdowns ---------------------------------------------------------------------------

  function spanText(seconds) {
    const span = Math.abs(seconds);
    const d = Math.floor(span / 86400), h = Math.floor((span % 86400) / 3600);
    const m = Math.floor((span % 3600) / 60), s = span % 60;
    const text = d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${s}s`;
    return seconds < 0 ? `${text} overdue` : `${text} left`;
  }

  function tickSla() {
    const now = Date.now();
    document.querySelectorAll(".sla[data-due]").forEach((badge) => {
      const due = Date.parse(badge.dataset.due);
      if (Number.isNaN(due)) return;
      const warnAt = badge.dataset.warn ? Date.parse(badge.dataset.warn) : due - 3600 * 1000;
      const state = due <= now ? "breached" : warnAt <= now ? "due_soon" : "on_track";
      badge.classList.remove("sla-breached", "sla-due_soon", "sla-on_track");
      badge.classList.add(`sla-${state}`);
      const text = badge.querySelector(".sla-text");
      if (text) text.textContent = spanText(Math.round((due - now) / 1000));
    });
  }

  // -- selection and the bulk form -------------------------------------------------------------

  const selectAll = document.getElementById("select-all");
  const count = document.getElementById("selected-count");
  const boxes = () => Array.from(tbody.querySelectorAll('input[name="ticket_ids"]'));

  const transitionHint = document.getElementById("transition-hint");
  // The transitions offered: those every selected row can take now (each row lists its own).
  function offerTransitions(selected) {
    const value = document.getElementById("bulk-value");
    if (!value) return;
    let common = null;
    selected.forEach((box) => {
      const row = box.closest("tr[data-ticket-id]");
      const names = new Set(((row && row.dataset.transitions) || "").split(" ").filter(Boolean));
      common = common === null ? names : new Set([...common].filter((n) => names.has(n)));
    });
    value.querySelectorAll("option[data-transition]").forEach((option) => {
      const offered = common === null || common.has(option.dataset.transition);
      option.hidden = !offered;
      option.disabled = !offered;
      if (!offered && option.selected) value.value = "";
    });
    if (transitionHint) transitionHint.hidden = common === null;
  }

  function updateSelection() {
    const all = boxes();
    const selected = all.filter((b) => b.checked);
    const checked = selected.length;
    offerTransitions(selected);
    if (count) count.textContent = checked ? `${checked} selected` : "";
    if (selectAll) {
      selectAll.checked = all.length > 0 && checked === all.length;
      selectAll.indeterminate = checked > 0 && checked < all.length;
    }
  }
  if (selectAll) {
    selectAll.addEventListener("change", () => {
      boxes().forEach((b) => { b.checked = selectAll.checked; });
      updateSelection();
    });
  }
  tbody.addEventListener("change", (event) => {
    if (event.target.name === "ticket_ids") updateSelection();
  });

  const action = document.getElementById("bulk-action");
  const value = document.getElementById("bulk-value");
  function matchValuesToAction() {
    if (!action || !value) return;
    value.querySelectorAll("optgroup").forEach((group) => {
      const match = !action.value || group.dataset.action === action.value;
      group.hidden = !match;
      group.disabled = !match;
    });
    const selected = value.selectedOptions[0];
    if (selected && selected.parentElement.disabled) value.value = "";
  }
  if (action) action.addEventListener("change", matchValuesToAction);
  matchValuesToAction();

  function busyOnSubmit(formId, buttonId) {
    const form = document.getElementById(formId);
    const button = document.getElementById(buttonId);
    if (form && button) {
      form.addEventListener("submit", () => { button.setAttribute("aria-busy", "true"); });
    }
  }
  busyOnSubmit("filter-form", "apply-filters");
  busyOnSubmit("bulk-form", "bulk-submit");
  const bulkForm = document.getElementById("bulk-form");
  if (bulkForm) {
    bulkForm.addEventListener("submit", (event) => {
      if (!boxes().some((b) => b.checked)) {
        event.preventDefault();
        document.getElementById("bulk-submit").removeAttribute("aria-busy");
        if (count) count.textContent = "Select at least one ticket.";
        announce("Select at least one ticket.");
      }
    });
  }

  // -- keyboard navigation ---------------------------------------------------------------------

  let current = null;
  const rows = () => Array.from(tbody.querySelectorAll("tr[data-ticket-id]"));

  function setCurrent(row) {
    if (current) current.classList.remove("is-current");
    current = row;
    if (!row) return;
    row.classList.add("is-current");
    row.tabIndex = -1;
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    const all = rows();
    if (!all.length) return;
    const at = all.indexOf(current);
    const next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
    setCurrent(all[next]);
  }

  const help = document.getElementById("shortcuts");
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    const target = event.target;
    if (target.closest && target.closest("input, select, textarea, [contenteditable]")) return;
    if (event.key === "j") { move(1); event.preventDefault(); }
    else if (event.key === "k") { move(-1); event.preventDefault(); }
    else if (event.key === "x" && current) {
      const box = current.querySelector('input[name="ticket_ids"]');
      if (box) { box.checked = !box.checked; updateSelection(); }
      event.preventDefault();
    } else if (event.key === "Enter" && current && target === current) {
      const link = current.querySelector("a.ticket-link");
      if (link) window.location.assign(link.href);
    } else if (event.key === "?") {
      if (help) { help.open = !help.open; if (help.open) help.querySelector("summary").focus(); }
      event.preventDefault();
    } else if (event.key === "/") {
      const search = document.getElementById("f-q");
      if (search) { search.focus(); event.preventDefault(); }
    }
  });
  tbody.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-ticket-id]");
    if (row && current !== row) { if (current) current.classList.remove("is-current"); current = row; row.classList.add("is-current"); }
  });

  // -- the views drawer and the filters --------------------------------------------------------

  // On a wide screen the views sidebar is always open; on a phone it is a drawer (<details>).
  const drawer = document.getElementById("views-drawer");
  const wide = window.matchMedia("(min-width: 768px)");
  function fitDrawer() { if (drawer && wide.matches) drawer.open = true; }
  fitDrawer();
  wide.addEventListener("change", fitDrawer);

  // Filters apply as soon as one changes (the Apply button is there for pages without JS).
  const filterForm = document.getElementById("filter-form");
  const applyButton = document.getElementById("apply-filters");
  if (filterForm && applyButton) {
    applyButton.hidden = true;
    filterForm.addEventListener("change", (event) => {
      if (event.target.matches("select, input[name=tag], input[name^='field.'], input[name=columns]")) filterForm.requestSubmit();
    });
  }

  // Sidebar counts: refreshed a moment after tickets change.
  const countsUrl = root.dataset.countsUrl;
  let countsTimer = null;
  async function refreshCounts() {
    countsTimer = null;
    try {
      const response = await fetch(countsUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const counts = await response.json();
      document.querySelectorAll("[data-count-for]").forEach((badge) => {
        const value = counts[badge.dataset.countFor];
        const number = badge.childNodes[1];
        // A number, or "1000+" for a search view that stops counting.
        if ((typeof value === "number" || typeof value === "string") && number) number.textContent = String(value);
      });
    } catch (error) {
      // Counts catch up on the next change.
    }
  }
  function scheduleCounts() { if (countsUrl && !countsTimer) countsTimer = window.setTimeout(refreshCounts, 1500); }

  // -- live updates ----------------------------------------------------------------------------

  function announce(text) {
    if (!live) return;
    live.textContent = "";
    window.setTimeout(() => { live.textContent = text; }, 50);
  }

  function updateEmpty() {
    if (empty && !document.getElementById("filter-errors")) empty.hidden = rows().length > 0;
  }

  function parseRows(html) {
    const template = document.createElement("template");
    template.innerHTML = `<table><tbody>${html}</tbody></table>`;
    const found = new Map();
    template.content.querySelectorAll("tr[data-ticket-id]").forEach((tr) => found.set(tr.dataset.ticketId, tr));
    return found;
  }

  function keepRowState(from, to) {
    const oldBox = from.querySelector('input[name="ticket_ids"]');
    const newBox = to.querySelector('input[name="ticket_ids"]');
    if (oldBox && newBox) newBox.checked = oldBox.checked;
    if (from === current) {
      current = to;
      to.classList.add("is-current");
      to.tabIndex = -1;
      if (document.activeElement === from) to.focus({ preventScroll: true });
    }
  }

  function applyRows(ids, found) {
    ids.forEach((id) => {
      const existing = tbody.querySelector(`tr[data-ticket-id="${id}"]`);
      const row = found.get(String(id));
      if (row && existing) {
        keepRowState(existing, row);
        existing.replaceWith(row);
      } else if (row && firstPage) {
        row.classList.add("is-new");
        tbody.prepend(row);
        const subject = row.querySelector(".ticket-link");
        announce(`New ticket #${id}${subject ? `: ${subject.textContent}` : ""}`);
      } else if (!row && existing) {
        if (existing === current) setCurrent(null);
        existing.remove();
      }
    });
    window.AutoCRMTime.renderAll(tbody); // the page's one time formatter (js/time.js)
    tickSla();
    updateSelection();
    updateEmpty();
  }

  async function fetchRows(params) {
    const url = `${rowsUrl}?${[params, query].filter(Boolean).join("&")}`;
    const response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`rows: ${response.status}`);
    return parseRows(await response.text());
  }

  const pending = new Set();
  let timer = null;
  async function flush() {
    timer = null;
    const ids = Array.from(pending).slice(0, 50);
    ids.forEach((id) => pending.delete(id));
    if (!ids.length) return;
    try {
      applyRows(ids, await fetchRows(`ids=${ids.join(",")}`));
    } catch (error) {
      ids.forEach((id) => pending.add(id));  // tried again on the next event or reconnect
      return;
    }
    if (pending.size) schedule();
  }
  function schedule() { if (!timer) timer = window.setTimeout(flush, 250); }

  // After a reconnect, events may have been missed: redraw what is on the page.
  async function resync() {
    root.setAttribute("aria-busy", "true");
    try {
      if (firstPage) {
        const found = await fetchRows("");
        const onPage = rows().map((r) => r.dataset.ticketId);
        const ids = Array.from(new Set([...found.keys(), ...onPage]));
        // Rows are replaced, kept, removed; new ones go on top in the server's order.
        ids.reverse().forEach((id) => applyRows([id], found));
      } else {
        const ids = rows().map((r) => r.dataset.ticketId);
        if (ids.length) applyRows(ids, await fetchRows(`ids=${ids.join(",")}`));
      }
    } catch (error) {
      // The banner shows the connection state; the next reconnect tries again.
    } finally {
      root.removeAttribute("aria-busy");
    }
  }

  let connections = 0;
  window.AutoCRM.onConnect(() => {
    rooms.forEach((teamId) => window.AutoCRM.emit("join_queue", { team_id: teamId }));
    connections += 1;
    if (connections > 1) { resync(); scheduleCounts(); }
    else if (pending.size) schedule();
  });
  window.AutoCRM.socket.on("ticket_updated", (data) => {
    if (!data || typeof data.id !== "number") return;
    pending.add(data.id);
    schedule();
    scheduleCounts();
  });

  tickSla();
  updateSelection();
  window.setInterval(tickSla, 1000);
})();
