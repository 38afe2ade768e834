// The customer portal's live parts: status badges on the dashboard, a ticket's conversation
// (send over the socket with an acknowledgement, HTTP when the socket is down, keep the text
// and offer Retry on failure, catch up on what was missed after a reconnect), and help-center
// articles suggested while a new ticket's subject is typed.
(function () {
  "use strict";
  const app = window.AutoCRM;
  if (!app) return;

  function labelsOf(element) {
    try { return JSON.parse(element.dataset.statusLabels || "{}"); } catch (e) { return {}; }
  }
  function labelFor(labels, status) {
    return labels[status] || String(status).replace(/_/g, " ");
  }
  function setBadge(badge, category, label) {
    badge.className = "status status-" + category;
    badge.textContent = label;
  }
  // The page's one time formatter (js/time.js), as for every time the server renders.
  function timeElement(iso) {
    return window.AutoCRMTime.element(iso);
  }
  const CLOSED = ["solved", "closed"];

  // -- dashboard ------------------------------------------------------------------------------
  function dashboard(root) {
    const labels = labelsOf(root);
    const rows = () => Array.from(root.querySelectorAll("[data-ticket-id]"));
    app.onConnect(() => {
      rows().forEach((row) => app.emit("join_ticket", { ticket_id: Number(row.dataset.ticketId) }));
    });
    function refreshEmpty() {
      ["open", "closed"].forEach((key) => {
        const list = root.querySelector('[data-list="' + key + '"]');
        if (!list) return;
        const empty = root.querySelector('[data-empty="' + key + '"]');
        if (empty) empty.hidden = list.children.length > 0;
      });
    }
    app.socket.on("ticket_updated", (data) => {
      const row = root.querySelector('[data-ticket-id="' + data.id + '"]');
      if (!row) return;
      setBadge(row.querySelector("[data-status-badge]"), data.category, data.status_label || labelFor(labels, data.status));
      const subject = row.querySelector(".ticket-subject");
      if (data.subject) subject.textContent = data.subject;
      const updated = row.querySelector("[data-updated]");
      if (updated && data.updated_at) updated.replaceChildren(timeElement(data.updated_at));
      const key = CLOSED.includes(data.category) ? "closed" : "open";
      const list = root.querySelector('[data-list="' + key + '"]');
      if (list && row.parentElement !== list) list.prepend(row);
      row.classList.add("just-updated");
      setTimeout(() => row.classList.remove("just-updated"), 3000);
      refreshEmpty();
    });
  }

  // -- one ticket -----------------------------------------------------------------------------
  function ticketPage(root) {
    const ticketId = Number(root.dataset.ticketId);
    const userId = Number(root.dataset.userId);
    const list = document.getElementById("message-list");
    const known = new Set(Array.from(list.querySelectorAll("[data-message-id]"))
      .map((li) => Number(li.dataset.messageId)));
    let lastId = Math.max(0, ...known);
    const catchupStatus = document.getElementById("catchup-status");

    function appendMessage(m, isNew) {
      if (known.has(m.id)) return;
      known.add(m.id);
      lastId = Math.max(lastId, m.id);
      const mine = m.author_id === userId;
      const staff = m.author_role !== "customer";
      const li = document.createElement("li");
      li.className = "message" + (mine ? " message-mine" : staff ? " message-staff" : "");
      if (isNew) li.classList.add("message-new");
      li.dataset.messageId = m.id;
      const header = document.createElement("header");
      const who = document.createElement("strong");
      who.textContent = mine ? "You" : m.author_name;
      header.append(who);
      if (staff) {
        const tag = document.createElement("span");
        tag.className = "role-tag";
        tag.textContent = "Support";
        header.append(" ", tag);
      }
      const small = document.createElement("small");
      small.append(timeElement(m.created_at));
      header.append(" ", small);
      const body = document.createElement("div");
      body.className = "message-body";
      body.innerHTML = m.body_html;  // rendered and sanitized by the server (autocrm.markdown)
      li.append(header, body);
      if (m.attachments && m.attachments.length && window.AutoCRMFiles) {
        li.append(window.AutoCRMFiles.fileList(m.attachments));
      }
      // Keep id order even if a catch-up and a live event cross.
      const later = Array.from(list.children).find((el) => Number(el.dataset.messageId) > m.id);
      list.insertBefore(li, later || null);
      const none = document.getElementById("no-messages");
      if (none) none.remove();
      if (isNew) setTimeout(() => li.classList.remove("message-new"), 4000);
    }

    // One catch-up at a time; a request for another while one runs repeats it once after.
    let running = null;
    let again = false;
    function catchUp() {
      if (running) { again = true; return running; }
      running = (async () => {
        const slow = setTimeout(() => { catchupStatus.hidden = false; }, 400);
        try {
          for (let page = 0; page < 20; page++) {
            const response = await fetch(root.dataset.messagesUrl + "?after=" + lastId,
              { headers: { Accept: "application/json" }, credentials: "same-origin" });
            if (!response.ok) break;
            const data = await response.json();
            data.items.forEach((m) => appendMessage(m, true));
            if (!data.has_more) {
              const more = document.getElementById("more-messages");
              if (more) more.remove();  // everything is on the page now
              break;
            }
          }
        } catch (e) {
          // Offline: the next (re)connection catches up again.
        } finally {
          clearTimeout(slow);
          catchupStatus.hidden = true;
          running = null;
          if (again) { again = false; catchUp(); }
        }
      })();
      return running;
    }

    app.onConnect(() => {
      app.emit("join_ticket", { ticket_id: ticketId }).then(catchUp);
    });
    // Every event carries what the page draws: nothing is fetched for it.
    app.socket.on("message", (m) => {
      if (m.ticket_id === ticketId && !m.internal) appendMessage(m, true);
    });

    // -- the ticket: status, actions, the rating form, the reply box ---------------------------
    let ticket = JSON.parse(root.dataset.ticket);
    const transitionLabels = JSON.parse(root.dataset.transitionLabels || "{}");
    const statusBadge = document.getElementById("ticket-status");
    const notice = document.getElementById("status-notice");

    function transitionForm(t) {
      const form = document.createElement("form");
      form.method = "post";
      form.action = root.dataset.transitionUrl;
      form.className = "transition-form";
      for (const [name, value] of [["csrf_token", app.csrf], ["name", t.name], ["version", ticket.version]]) {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        input.value = String(value);
        form.append(input);
      }
      const button = document.createElement("button");
      button.type = "submit";
      if (t.name !== "solve") button.className = "secondary";
      button.textContent = transitionLabels[t.name] || t.label || t.name;
      form.append(button);
      return form;
    }

    function drawTicket() {
      setBadge(statusBadge, ticket.category, ticket.status_label);
      root.dataset.category = ticket.category;
      const priority = document.getElementById("ticket-priority");
      priority.textContent = ticket.priority.charAt(0).toUpperCase() + ticket.priority.slice(1);
      // The customer's own buttons: the transitions offered to customers, and of those only
      // the assignee's when a guard says so (a customer is never the assignee).
      const mine = ticket.transitions.filter((t) => t.roles.includes("customer") &&
        (!t.assignee_only || ticket.assignee_id === userId));
      document.getElementById("transition-forms").replaceChildren(...mine.map(transitionForm));
      document.getElementById("actions").hidden = mine.length === 0;
      document.getElementById("feedback").hidden = !CLOSED.includes(ticket.category);
      const closed = ticket.category === "closed";
      document.getElementById("closed-note").hidden = !closed;
      const form = document.getElementById("reply-form");
      if (form) form.hidden = closed;
    }

    app.socket.on("ticket_updated", (data) => {
      // Events of one ticket arrive in order; a lower version is an older change.
      if (data.id !== ticketId || data.version < ticket.version) return;
      const before = ticket.status;
      ticket = data;
      drawTicket();
      if (data.status !== before) {
        notice.textContent = "The status is now " + data.status_label + ".";
        notice.hidden = false;
      }
    });

    const timeline = document.getElementById("timeline");
    app.socket.on("trail", (entry) => {
      if (entry.ticket_id !== ticketId || timeline.querySelector('[data-trail-id="' + entry.id + '"]')) return;
      const li = document.createElement("li");
      li.dataset.trailId = entry.id;
      const text = document.createElement("span");
      text.className = "timeline-text";
      text.textContent = entry.kind === "ticket.created" ? "Ticket opened" : "Status set to " + (entry.to_state_label || "");
      const who = entry.actor_id === null ? "automatically"
        : entry.actor_id === userId ? "by you" : "by " + (entry.actor_name || "");
      const small = document.createElement("small");
      small.append(who + ", ", timeElement(entry.created_at));
      li.append(text, " ", small);
      timeline.append(li);
    });

    const form = document.getElementById("reply-form");
    if (!form) return;
    const textarea = form.querySelector("textarea");
    const button = document.getElementById("send-button");
    const errorBox = document.getElementById("send-error");
    const errorText = document.getElementById("send-error-text");
    const retry = document.getElementById("retry-send");
    let sending = false;

    function showError(message) {
      errorText.textContent = message;
      errorBox.hidden = false;
      textarea.setAttribute("aria-invalid", "true");
    }
    function clearError() {
      errorBox.hidden = true;
      textarea.removeAttribute("aria-invalid");
    }

    async function deliver(body) {
      if (app.socket.connected) {
        return app.emit("send_message", { ticket_id: ticketId, body });
      }
      // No socket: a queued emit could arrive after we gave up and post twice; use HTTP.
      try {
        const response = await app.post(root.dataset.sendUrl, { body });
        const data = await response.json().catch(() => null);
        if (data) return data;
        return { ok: false, error: "The server answered " + response.status + "; try again." };
      } catch (e) {
        return { ok: false, error: "You seem to be offline. Your message is kept; try again." };
      }
    }

    async function send() {
      if (sending) return;
      const body = textarea.value;
      if (!body.trim()) { showError("Please write a message first."); textarea.focus(); return; }
      sending = true;
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      button.textContent = "Sending…";
      const ack = await deliver(body);
      sending = false;
      button.disabled = false;
      button.removeAttribute("aria-busy");
      button.textContent = "Send reply";
      if (ack && ack.ok) {
        clearError();
        appendMessage(ack.message, false);
        if (textarea.value === body) textarea.value = "";
        textarea.focus();
      } else {
        showError((ack && ack.error) || "Your message was not sent.");
      }
    }

    // With files the form posts itself (multipart); the reply then arrives like any other.
    const withFiles = () => window.AutoCRMFiles && window.AutoCRMFiles.hasFiles(form);
    form.addEventListener("submit", (event) => {
      if (withFiles()) return;
      event.preventDefault();
      send();
    });
    retry.addEventListener("click", send);
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        if (withFiles()) form.requestSubmit(); else send();
      }
    });
  }

  // -- new ticket: suggest help articles while the subject is typed ----------------------------
  // Each suggestion's link (signed by the server for this customer) records that it was opened.
  function ticketSuggestions(box) {
    const MIN_CHARS = 3;
    const DELAY_MS = 300;
    const subject = document.getElementById("subject");
    const list = document.getElementById("suggestion-list");
    const status = document.getElementById("suggestion-status");
    let timer = null;
    let controller = null;
    let shown = "";  // ids of the suggestions on screen, to announce only changes

    function render(items) {
      const ids = items.map((item) => item.id).join(",");
      if (ids === shown) return;
      shown = ids;
      list.replaceChildren(...items.map((item) => {
        const li = document.createElement("li");
        const link = document.createElement("a");
        link.href = item.url;
        link.target = "_blank";
        link.rel = "noopener";
        link.textContent = item.title;
        const hint = document.createElement("span");
        hint.className = "visually-hidden";
        hint.textContent = " (opens in a new tab)";
        link.append(hint);
        li.append(link);
        if (item.category) {
          const category = document.createElement("span");
          category.className = "suggestion-category";
          category.textContent = item.category;
          li.append(category);
        }
        return li;
      }));
      box.hidden = items.length === 0;
      const n = items.length;
      status.textContent = n ? n + (n === 1 ? " help article" : " help articles") +
        " might answer your question; they are listed under the subject." : "";
    }

    async function suggest() {
      const q = subject.value.trim();
      if (controller) controller.abort();
      if (q.length < MIN_CHARS) { render([]); return; }
      controller = new AbortController();
      try {
        const response = await fetch(box.dataset.suggestUrl + "?q=" + encodeURIComponent(q), {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
          signal: controller.signal,
        });
        if (!response.ok) return;  // suggestions are a help, never in the way
        const data = await response.json();
        if (subject.value.trim() === q) render(data.items || []);
      } catch (e) {
        // Aborted by a newer keystroke, or offline: keep what is shown.
      }
    }

    subject.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(suggest, DELAY_MS);
    });
    if (subject.value.trim().length >= MIN_CHARS) suggest();  // a form shown again keeps it
  }

  const suggestions = document.getElementById("suggestions");
  if (suggestions) ticketSuggestions(suggestions);
  const dash = document.getElementById("portal-dashboard");
  if (dash) dashboard(dash);
  const page = document.getElementById("ticket-page");
  if (page) ticketPage(page);
})();
