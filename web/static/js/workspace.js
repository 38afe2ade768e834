// The agent's ticket workspace, live: the conversation over Socket.IO (with an HTTP fallback),
// retry that keeps the typed text, catching up on missed messages after a reconnect, typing and
// presence warnings, macros previewed in place (a text-only one's reply inserted at the cursor),
// knowledge-base article links inserted at the cursor,
// SLA countdowns, and the header, status, details, SLA and history panels redrawn from the
// `ticket_updated` and `trail` events (complete payloads: nothing is fetched for them). Without
// this script the page still works through its forms.
(function () {
  "use strict";
  const root = document.getElementById("workspace");
  if (!root || !window.AutoCRM) return;
  const app = window.AutoCRM;
  const ticketId = Number(root.dataset.ticketId);
  const userId = Number(root.dataset.userId);
  const requesterId = Number(root.dataset.requesterId);
  const userRole = root.dataset.userRole;
  const people = JSON.parse(root.dataset.people || "{}");
  const metricLabels = JSON.parse(root.dataset.metricLabels || "{}");
  let ticket = JSON.parse(root.dataset.ticket);

  const list = document.getElementById("ws-messages");
  const template = document.getElementById("ws-message-template");
  const form = document.getElementById("ws-reply");
  const body = document.getElementById("ws-body");
  const bodyLabel = document.getElementById("ws-body-label");
  const sendButton = document.getElementById("ws-send");
  const retryButton = document.getElementById("ws-retry");
  const errorBox = document.getElementById("ws-send-error");
  const stateBox = document.getElementById("ws-send-state");
  const typingBox = document.getElementById("ws-typing");
  const presenceBox = document.getElementById("ws-presence");
  const staleBox = document.getElementById("ws-stale");
  const draftKey = `autocrm:draft:${ticketId}`;

  const nameOf = (id) => people[String(id)] || `User #${id}`;
  const isInternal = () => form.querySelector('input[name="visibility"]:checked')?.value === "internal";

  // -- the conversation ------------------------------------------------------------------------

  function lastMessageId() {
    let last = 0;
    list.querySelectorAll("[data-message-id]").forEach((node) => {
      last = Math.max(last, Number(node.dataset.messageId));
    });
    return last;
  }

  function appendMessage(message) {
    if (!message || message.ticket_id !== ticketId) return;
    if (document.getElementById(`message-${message.id}`)) return; // seen already (ack + event)
    const node = template.content.firstElementChild.cloneNode(true);
    node.id = `message-${message.id}`;
    node.dataset.messageId = String(message.id);
    node.classList.toggle("ws-msg-internal", Boolean(message.internal));
    node.classList.toggle("ws-msg-mine", message.author_id === userId);
    node.classList.add("ws-msg-new");
    node.querySelector(".ws-author").textContent = message.author_name || nameOf(message.author_id);
    node.querySelector(".ws-msg-kind").textContent = message.internal
      ? "Internal note"
      : message.author_id === requesterId ? "Customer" : "Reply";
    node.querySelector("time").replaceWith(window.AutoCRMTime.element(message.created_at));
    // body_html is rendered and sanitized on the server (autocrm.markdown: nh3 allow-list).
    node.querySelector(".ws-msg-body").innerHTML = message.body_html || "";
    // The door it came in by; an email's links to the email as it arrived.
    node.querySelector(".ws-msg-channel")?.remove();
    const channel = document.createElement(message.inbound_email_id ? "a" : "span");
    channel.className = "ws-msg-channel";
    channel.textContent = `via ${message.channel || "web"}`;
    if (message.inbound_email_id) {
      channel.href = `/agent/emails/${message.inbound_email_id}`;
      channel.title = "The email as it arrived";
    }
    node.querySelector(".ws-msg-head").append(channel);
    const oldFiles = node.querySelector(".files");
    if (oldFiles) oldFiles.remove();
    if (message.attachments && message.attachments.length && window.AutoCRMFiles) {
      node.querySelector(".ws-msg-body").after(window.AutoCRMFiles.fileList(message.attachments));
    }
    const later = Array.from(list.children).find((li) => Number(li.dataset.messageId) > message.id);
    list.insertBefore(node, later || null);
    typers.delete(message.author_id);
    renderTyping();
  }

  let catchingUp = Promise.resolve();
  function catchUp() {
    // One catch-up at a time: a second reconnect waits for the first to finish.
    catchingUp = catchingUp.then(async () => {
      for (let page = 0; page < 50; page += 1) {
        const response = await fetch(`${root.dataset.messagesUrl}?after=${lastMessageId()}`, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (!response.ok) return;
        const data = await response.json();
        data.items.forEach(appendMessage);
        if (!data.has_more || !data.items.length) return;
      }
    }).catch(() => {});
    return catchingUp;
  }

  app.onConnect(async () => {
    const ack = await app.emit("join_ticket", { ticket_id: ticketId });
    if (!ack || !ack.ok) {
      showStale((ack && ack.error) || "Could not follow this ticket live; reload the page.");
      return;
    }
    await catchUp();
  });
  app.socket.on("message", appendMessage);

  // -- sending, with retry ---------------------------------------------------------------------

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  async function postFallback(text, internal, move) {
    const response = await app.post(root.dataset.sendUrl, {
      body: text,
      internal,
      visibility: internal ? "internal" : "public",
      ...(move ? { transition: move } : {}),
    });
    let data = {};
    try { data = await response.json(); } catch (_) { data = {}; }
    if (response.ok && data.ok) return data;
    return { ok: false, error: data.error || `The server answered ${response.status}; try again.` };
  }

  let sending = false;
  let lastMove = null; // the "Send and set <state>" transition of the last attempt, for Retry
  const moveButtons = () => Array.from(form.querySelectorAll("[data-reply-move]"));
  async function send(move) {
    lastMove = move || null;
    const text = body.value;
    if (!text.trim()) {
      showError("Write a message first.");
      body.focus();
      return;
    }
    if (sending) return;
    sending = true;
    sendButton.disabled = true;
    moveButtons().forEach((button) => { button.disabled = true; });
    sendButton.setAttribute("aria-busy", "true");
    retryButton.hidden = true;
    showError("");
    stateBox.textContent = "Sending…";
    const internal = isInternal();
    let result;
    try {
      // A reply with a move goes over HTTP: the reply and the transition are one transaction.
      result = app.socket.connected && !move
        ? await app.emit("send_message", { ticket_id: ticketId, body: text, internal })
        : await postFallback(text, internal, move);
    } catch (_) {
      result = { ok: false, error: "Could not reach the server; check your connection." };
    }
    sending = false;
    sendButton.disabled = false;
    moveButtons().forEach((button) => { button.disabled = false; });
    sendButton.removeAttribute("aria-busy");
    if (result && result.ok) {
      appendMessage(result.message);
      if (body.value === text) body.value = "";
      saveDraft();
      stopTyping();
      stateBox.textContent = (internal ? "Internal note added" : "Reply sent") + (move ? " and status set." : ".");
      return;
    }
    // The text stays in the box (and in the saved draft): nothing typed is lost.
    stateBox.textContent = "";
    showError(`Not sent: ${((result && result.error) || "unknown error").replace(/\.$/, "")}. Your text is kept.`);
    retryButton.hidden = false;
    retryButton.focus();
  }

  form.addEventListener("submit", (event) => {
    // With files the form posts itself (multipart); a refusal comes back with the text kept.
    if (window.AutoCRMFiles && window.AutoCRMFiles.hasFiles(form)) {
      try { sessionStorage.removeItem(draftKey); } catch (_) { /* no storage */ }
      return;
    }
    event.preventDefault();
    const submitter = event.submitter;
    send(submitter && submitter.name === "transition" ? submitter.value : null);
  });
  retryButton.addEventListener("click", () => send(lastMove));

  function updateVisibility() {
    const internal = isInternal();
    form.classList.toggle("is-internal", internal);
    bodyLabel.textContent = internal ? "Internal note" : bodyLabel.dataset.publicLabel;
    sendButton.textContent = internal ? "Add internal note" : "Send reply";
  }
  form.querySelectorAll('input[name="visibility"]').forEach((radio) => {
    radio.addEventListener("change", () => { updateVisibility(); saveDraft(); });
  });

  // A draft survives a reload, a failed send and a transition button's page load.
  function saveDraft() {
    try {
      if (body.value) {
        sessionStorage.setItem(draftKey, JSON.stringify({ body: body.value, internal: isInternal() }));
      } else {
        sessionStorage.removeItem(draftKey);
      }
    } catch (_) { /* storage disabled: the draft lives in the page only */ }
  }
  function restoreDraft() {
    let saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(draftKey) || "null"); } catch (_) { saved = null; }
    if (saved && !body.value) {
      body.value = saved.body || "";
      const radio = form.querySelector(`input[name="visibility"][value="${saved.internal ? "internal" : "public"}"]`);
      if (radio) radio.checked = true;
    }
    updateVisibility();
  }
  restoreDraft();

  // -- typing and presence ---------------------------------------------------------------------

  let typingSent = false;
  let typingTimer = null;
  function emitTyping(typing) {
    if (app.socket.connected) app.emit("typing", { ticket_id: ticketId, typing });
  }
  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingSent) {
      typingSent = false;
      emitTyping(false);
    }
  }
  body.addEventListener("input", () => {
    saveDraft();
    if (!body.value.trim()) {
      stopTyping();
      return;
    }
    if (!typingSent) {
      typingSent = true;
      emitTyping(true);
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 3000);
  });
  body.addEventListener("blur", stopTyping);

  const typers = new Map(); // user id -> { name, timer }
  let viewers = [];

  function joinNames(names) {
    if (names.length <= 1) return names.join("");
    return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
  }

  function renderTyping() {
    const names = Array.from(typers.values()).map((t) => t.name);
    typingBox.textContent = names.length
      ? `${joinNames(names)} ${names.length === 1 ? "is" : "are"} typing…`
      : "";
    renderPresence();
  }

  function renderPresence() {
    const staffTyping = Array.from(typers.entries())
      .filter(([id]) => id !== requesterId)
      .map(([, t]) => t.name);
    const viewing = viewers.map(nameOf);
    let text = "";
    if (staffTyping.length) {
      text = `${joinNames(staffTyping)} ${staffTyping.length === 1 ? "is" : "are"} typing on this ticket right now.`;
    } else if (viewing.length) {
      text = `${joinNames(viewing)} ${viewing.length === 1 ? "is" : "are"} also viewing this ticket.`;
    }
    presenceBox.textContent = text;
    presenceBox.hidden = !text;
  }

  app.socket.on("typing", (event) => {
    if (event.ticket_id !== ticketId || event.user_id === userId) return;
    const current = typers.get(event.user_id);
    if (current) clearTimeout(current.timer);
    if (event.typing) {
      // A lost "stopped typing" must not leave the indicator on forever.
      const timer = setTimeout(() => { typers.delete(event.user_id); renderTyping(); }, 8000);
      typers.set(event.user_id, { name: event.name || nameOf(event.user_id), timer });
    } else {
      typers.delete(event.user_id);
    }
    renderTyping();
  });

  app.socket.on("presence", (event) => {
    if (event.ticket_id !== ticketId) return;
    viewers = (event.viewer_ids || []).filter((id) => id !== userId);
    renderPresence();
  });

  // -- macros ----------------------------------------------------------------------------------

  // Choosing a macro fetches its preview (the server renders it: reply text, changes, and an
  // Apply form with the ticket's version); a text-only macro's reply goes in at the cursor.
  const macroForm = document.getElementById("ws-macro-form");
  const macroPreview = document.getElementById("ws-macro-preview");

  function insertAtCursor(text) {
    const start = body.selectionStart ?? body.value.length;
    const end = body.selectionEnd ?? start;
    body.setRangeText(text, start, end, "end");
    body.focus();
    body.dispatchEvent(new Event("input"));
  }

  if (macroForm && macroPreview) {
    macroForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const id = macroForm.elements.macro.value;
      if (!id) return;
      const url = root.dataset.macroUrl.replace(/\/0\/preview$/, `/${encodeURIComponent(id)}/preview`);
      let html = null;
      try {
        const response = await fetch(url, { headers: { Accept: "text/html" } });
        html = await response.text();
      } catch (_) {
        html = null;
      }
      if (html === null) {
        showError("Could not load the macro; try again.");
        return;
      }
      showError("");
      macroPreview.innerHTML = html;
      const insert = document.getElementById("ws-macro-insert");
      if (insert) {
        insertAtCursor(insert.dataset.body);
        insert.hidden = false;
        insert.addEventListener("click", () => insertAtCursor(insert.dataset.body));
      }
      const apply = document.getElementById("ws-macro-apply-form");
      // The Apply form carries the version the preview was made for: a change made since is a 409.
      document.getElementById("ws-macro-apply")?.focus();
    });
  }

  // -- knowledge base --------------------------------------------------------------------------

  // Search as the agent types; each result offers its link for the kind of reply being written
  // (the server decides: an internal article gets no link for a public reply, only a warning).
  const kbForm = document.getElementById("ws-kb-form");
  const kbInput = document.getElementById("ws-kb-q");
  const kbResults = document.getElementById("ws-kb-results");
  const kbState = document.getElementById("ws-kb-state");
  let kbRequest = 0;
  let kbTimer = null;

  function kbItem(item) {
    const li = document.createElement("li");
    li.className = "ws-kb-item";
    li.classList.toggle("is-internal", item.visibility === "internal");
    const head = document.createElement("div");
    head.className = "ws-kb-item-head";
    const title = document.createElement("a");
    title.className = "ws-kb-title";
    title.href = item.edit_url;
    title.target = "_blank";
    title.rel = "noopener";
    title.textContent = item.title;
    head.append(title);
    const badge = (text, kind) => {
      const span = document.createElement("span");
      span.className = `ws-kb-badge ${kind}`;
      span.textContent = text;
      head.append(span);
    };
    if (item.visibility === "internal") badge("Internal", "ws-kb-internal");
    if (item.status !== "published") badge("Draft", "ws-kb-draft");
    li.append(head);
    if (item.snippet) {
      const snippet = document.createElement("p");
      snippet.className = "ws-kb-snippet";
      // Escaped on the server; only the <mark> highlights are markup.
      snippet.innerHTML = item.snippet;
      li.append(snippet);
    }
    if (item.warning) {
      const warning = document.createElement("p");
      warning.className = "ws-kb-warning";
      warning.textContent = item.warning;
      li.append(warning);
    }
    if (item.insert) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary outline small";
      button.textContent = "Insert link";
      const hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = ` to ${item.title}`;
      button.append(hidden);
      button.addEventListener("click", () => insertAtCursor(item.insert));
      li.append(button);
    }
    return li;
  }

  function insertAtCursor(text) {
    const start = body.selectionStart ?? body.value.length;
    const end = body.selectionEnd ?? start;
    body.setRangeText(text, start, end, "end");
    body.focus();
    body.dispatchEvent(new Event("input"));
  }

  async function searchKb() {
    const q = kbInput.value.trim();
    const seq = ++kbRequest;
    if (!q) {
      kbResults.replaceChildren();
      kbState.textContent = "";
      return;
    }
    const reply = isInternal() ? "internal" : "public";
    let data;
    try {
      const url = `${root.dataset.kbUrl}?q=${encodeURIComponent(q)}&reply=${reply}`;
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      data = await response.json();
    } catch (_) {
      data = { ok: false, error: "Could not search; try again." };
    }
    if (seq !== kbRequest) return; // a newer search is under way
    if (!data || !data.ok) {
      kbState.textContent = (data && data.error) || "Could not search; try again.";
      return;
    }
    kbResults.replaceChildren(...data.items.map(kbItem));
    const n = data.items.length;
    kbState.textContent = n
      ? `${n} article${n === 1 ? "" : "s"} found${reply === "public" ? " (for a public reply)" : " (for an internal note)"}.`
      : `No articles match “${q}”.`;
  }

  if (kbForm) {
    kbForm.addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(kbTimer);
      searchKb();
    });
    kbInput.addEventListener("input", () => {
      clearTimeout(kbTimer);
      kbTimer = setTimeout(searchKb, 300);
    });
    form.querySelectorAll('input[name="visibility"]').forEach((radio) => {
      radio.addEventListener("change", () => { if (kbInput.value.trim()) searchKb(); });
    });
    if (kbInput.value.trim()) searchKb(); // the page came from a search without script
  }

  // -- SLA countdowns --------------------------------------------------------------------------

  function duration(ms) {
    const minutes = Math.floor(ms / 60000);
    const days = Math.floor(minutes / 1440);
    const hours = Math.floor((minutes % 1440) / 60);
    const mins = minutes % 60;
    if (days) return `${days}d ${hours}h`;
    if (hours) return `${hours}h ${mins}m`;
    return `${mins}m`;
  }
  function tick() {
    root.querySelectorAll(".ws-clock[data-due]").forEach((clock) => {
      const left = Date.parse(clock.dataset.due) - Date.now();
      if (Number.isNaN(left)) return;
      const out = clock.querySelector(".ws-countdown");
      clock.classList.toggle("is-overdue", left < 0);
      if (out) out.textContent = left >= 0 ? `(${duration(left)} left)` : `(${duration(-left)} overdue)`;
      if (left < 0) clock.querySelector(".ws-clock-state").textContent = "Overdue";
    });
  }
  tick();
  setInterval(tick, 30000);

  // -- someone changed the ticket: redraw from the event --------------------------------------

  let fieldsDirty = false;
  const fieldsForm = document.getElementById("ws-fields");
  if (fieldsForm) fieldsForm.addEventListener("input", () => { fieldsDirty = true; });

  function showStale(text) {
    document.getElementById("ws-stale-text").textContent = text;
    staleBox.hidden = false;
  }

  const capitalize = (text) => text.charAt(0).toUpperCase() + text.slice(1);
  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  // The page's one time formatter (js/time.js), as for every time the server renders.
  const timeNode = (iso) => window.AutoCRMTime.element(iso);
  function hidden(name, value) {
    const input = element("input");
    input.type = "hidden";
    input.name = name;
    input.value = String(value);
    return input;
  }

  function drawHeader() {
    root.querySelectorAll("[data-ws-status]").forEach((badge) => {
      badge.className = `status status-${ticket.category}`;
      badge.textContent = ticket.status_label;
    });
    const priority = document.getElementById("ws-priority-text");
    priority.className = `priority-${ticket.priority}`;
    priority.textContent = `${capitalize(ticket.priority)} priority`;
    document.getElementById("ws-team-text").textContent = ticket.team_name || "none (triage)";
    document.getElementById("ws-assignee-text").textContent = ticket.assignee_name || "nobody";
  }

  // The reply box's "Send and set <state>" buttons, as workspace.reply_moves draws them.
  function drawReplyMoves() {
    const box = document.getElementById("ws-reply-moves");
    if (!box) return;
    const labels = JSON.parse(box.dataset.stateLabels || "{}");
    const seen = new Set();
    const buttons = [];
    ticket.transitions.filter((t) => t.roles.includes(userRole) &&
      (!t.assignee_only || ticket.assignee_id === userId)).forEach((t) => {
      if (t.to === ticket.status || seen.has(t.to)) return;
      seen.add(t.to);
      const label = labels[t.to] || t.to;
      const button = element("button", "secondary", `Send and set ${label}`);
      button.type = "submit";
      button.name = "transition";
      button.value = t.name;
      button.title = `Send, then move the ticket to ${label}`;
      button.dataset.replyMove = "";
      button.disabled = sending;
      buttons.push(button);
    });
    box.replaceChildren(...buttons);
  }

  // My buttons: what my role may fire, and an assignee-only one only when I am the assignee.
  function drawTransitions() {
    const mine = ticket.transitions.filter((t) => t.roles.includes(userRole) &&
      (!t.assignee_only || ticket.assignee_id === userId));
    const forms = mine.map((t) => {
      const form = element("form", "inline-form");
      form.method = "post";
      form.action = root.dataset.transitionUrl;
      const button = element("button", "outline small", t.label || t.name);
      button.type = "submit";
      button.title = `${ticket.status} → ${t.to}`;
      form.append(hidden("csrf_token", app.csrf), hidden("name", t.name), hidden("version", ticket.version), button);
      return form;
    });
    document.getElementById("ws-transitions").replaceChildren(...forms);
    document.getElementById("ws-no-transitions").hidden = forms.length > 0;
  }

  // -- the details save as they change: the version goes with them; a 409 keeps the choice ----

  let savingFields = false;
  let fieldsConflict = false;
  let savedVersion = 0; // the version my last save made: its ticket_updated is no news
  const fieldsState = document.getElementById("ws-fields-state");
  const fieldsError = document.getElementById("ws-fields-error");
  function showFieldsError(text, reload) {
    document.getElementById("ws-fields-error-text").textContent = text;
    document.getElementById("ws-fields-reload").hidden = !reload;
    fieldsError.hidden = !text;
  }
  async function saveFields() {
    if (savingFields || fieldsConflict) return;
    savingFields = true;
    showFieldsError("", false);
    fieldsState.textContent = "Saving…";
    const values = Object.fromEntries(new FormData(fieldsForm).entries());
    delete values.csrf_token;
    let response = null;
    let data = {};
    try {
      response = await app.post(fieldsForm.action, values);
      data = await response.json();
    } catch (_) {
      data = { ok: false, error: "Could not reach the server; your choice is kept: try again." };
    }
    savingFields = false;
    if (response && response.ok && data.ok) {
      fieldsState.textContent = data.changed ? "Saved." : "";
      fieldsDirty = false;
      savedVersion = data.ticket.version;
      if (data.ticket.version >= ticket.version) ticket = data.ticket;
      root.dataset.version = String(ticket.version);
      drawHeader();
      drawTransitions();
      drawReplyMoves();
      drawFields(true);
      return;
    }
    fieldsState.textContent = "";
    if (response && response.status === 409) {
      fieldsConflict = true; // every later save would be refused the same way
      showFieldsError("Someone else changed this ticket — reload to see it. Your choice is kept here, not saved.", true);
    } else {
      showFieldsError(`Not saved: ${data.error || "the server refused it"}`, false);
    }
  }
  if (fieldsForm) {
    document.getElementById("ws-fields-save").hidden = true;
    fieldsForm.addEventListener("change", saveFields);
    fieldsForm.addEventListener("submit", (event) => { event.preventDefault(); saveFields(); });
  }

  // Tag autocomplete: tags in use that start like the last one typed, offered as the whole
  // field's value (the list the agent typed, then the tag), so the browser's datalist fits.
  const tagsInput = document.getElementById("ws-tags");
  const tagList = document.getElementById("ws-tag-suggestions");
  let tagTimer = null;
  async function suggestTags() {
    const parts = tagsInput.value.split(",");
    const typed = parts.pop().trim().toLowerCase();
    const chosen = parts.map((t) => t.trim()).filter(Boolean);
    const head = chosen.length ? `${chosen.join(", ")}, ` : "";
    let items = [];
    try {
      const response = await fetch(`${tagsInput.dataset.tagsUrl}?q=${encodeURIComponent(typed)}`, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (!response.ok) return;
      items = (await response.json()).items || [];
    } catch (_) { return; }
    tagList.replaceChildren(...items.filter((item) => !chosen.includes(item.tag)).map((item) => {
      const option = element("option");
      option.value = head + item.tag;
      return option;
    }));
  }
  if (tagsInput && tagList) {
    tagsInput.addEventListener("input", () => {
      clearTimeout(tagTimer);
      tagTimer = setTimeout(suggestTags, 150);
    });
  }

  // The details form follows the ticket unless the agent is editing it: then their input stays
  // and so does the version they edited, so saving tells them what changed meanwhile (409).
  function drawFields(mine) {
    if (!fieldsForm || savingFields) return;
    if (fieldsConflict) return; // the agent's choice stays visible until they reload
    const own = mine || ticket.version === savedVersion;
    if (!own && (fieldsDirty || fieldsForm.contains(document.activeElement))) {
      showStale(`Someone else changed this ticket (now ${ticket.status_label}, priority ${ticket.priority}). Your edits are kept.`);
      return;
    }
    fieldsForm.elements.priority.value = ticket.priority;
    fieldsForm.elements.team_id.value = ticket.team_id === null ? "" : String(ticket.team_id);
    fieldsForm.elements.assignee_id.value = ticket.assignee_id === null ? "" : String(ticket.assignee_id);
    fieldsForm.elements.tags.value = ticket.tags.join(", ");
    fieldsForm.elements.version.value = String(ticket.version);
  }

  const CLOCK_STATES = { breached: "Breached", met: "Met", paused: "Paused", warning: "Due soon", running: "Running" };
  function drawClocks() {
    const items = ticket.sla_clocks.map((clock) => {
      const li = element("li", `ws-clock ws-clock-${clock.state}`);
      li.dataset.metric = clock.metric;
      if (clock.due_at && ["running", "warning"].includes(clock.state)) li.dataset.due = clock.due_at;
      li.append(element("span", "ws-clock-label", metricLabels[clock.metric] || clock.metric), " ",
        element("span", "ws-clock-state", CLOCK_STATES[clock.state]));
      const [word, at] = clock.due_at ? ["due", clock.due_at]
        : clock.breached_at ? ["breached", clock.breached_at]
          : clock.stopped_at ? ["stopped", clock.stopped_at] : [null, null];
      if (word) {
        const due = element("span", "ws-clock-due", `${word} `);
        due.append(timeNode(at));
        if (clock.due_at) {
          const countdown = element("span", "ws-countdown");
          countdown.setAttribute("aria-label", "time left");
          due.append(" ", countdown);
        }
        li.append(" ", due);
      }
      return li;
    });
    document.getElementById("ws-clocks").replaceChildren(...items);
    document.getElementById("ws-clocks").hidden = items.length === 0;
    document.getElementById("ws-no-clocks").hidden = items.length > 0;
    tick();
  }

  app.socket.on("ticket_updated", (update) => {
    // Events of one ticket arrive in order; a lower version is an older change.
    if (update.id !== ticketId || update.version < ticket.version) return;
    ticket = update;
    root.dataset.version = String(ticket.version);
    drawHeader();
    drawTransitions();
    drawReplyMoves();
    drawFields();
    drawClocks();
  });

  // -- the history: each entry's summary and why, in the words of autocrm/tickets/history.py --

  const trailList = document.getElementById("ws-trail");
  app.socket.on("trail", (entry) => {
    if (entry.ticket_id !== ticketId || trailList.querySelector(`[data-trail-id="${entry.id}"]`)) return;
    if (entry.summary === null) return; // the entry before it says it already
    const li = element("li", `ws-event${entry.actor_id === null ? " ws-event-auto" : ""}`);
    li.dataset.trailId = String(entry.id);
    const head = element("div", "ws-event-head");
    head.append(timeNode(entry.created_at));
    li.append(element("div", "ws-event-summary", entry.summary || entry.kind), head);
    if (entry.why && entry.why.length) {
      const box = element("details", "ws-because");
      const ul = element("ul");
      entry.why.forEach((reason) => ul.append(element("li", "", reason)));
      box.append(element("summary", "", "why"), ul);
      li.append(box);
    }
    trailList.prepend(li);  // newest first
  });
})();
