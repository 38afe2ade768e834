// @mentions in the workspace's reply box: in an internal note, "@" and a few letters offer the
// colleagues who may see the ticket (from the server: autocrm.tickets.mentions). The list is a
// listbox the textarea points into with aria-activedescendant, so focus stays in the text:
// Up/Down move, Enter or Tab picks, Escape closes; a click picks too. The pick is written as
// @[Name](user:id), which the posted note shows as the highlighted name. Without this script a
// note can still carry the syntax typed by hand.
(function () {
  "use strict";
  const box = document.getElementById("ws-mentions");
  const body = document.getElementById("ws-body");
  const form = document.getElementById("ws-reply");
  if (!box || !body || !form) return;
  const list = document.getElementById("ws-mention-list");
  const status = document.getElementById("ws-mention-status");
  const url = box.dataset.url;
  // "@" at the start or after a space or bracket, then up to two words (a first name and a bit).
  const TOKEN = /(^|[\s(>])@([^\s@[\]()]{1,40}(?: [^\s@[\]()]{0,40})?)$/;

  let items = [];
  let active = -1;
  let token = null; // {start, end, q}: the "@text" being completed
  let dismissed = null; // the start of a token Escape closed: not reopened until it changes
  let asked = 0; // answers to older questions are dropped
  let timer = 0;

  body.setAttribute("aria-autocomplete", "list");
  body.setAttribute("aria-controls", list.id);

  const isInternal = () => form.querySelector('input[name="visibility"]:checked')?.value === "internal";
  const isOpen = () => !list.hidden;

  function currentToken() {
    if (body.selectionStart !== body.selectionEnd) return null;
    const caret = body.selectionStart;
    const match = TOKEN.exec(body.value.slice(0, caret));
    if (!match) return null;
    return { start: caret - match[2].length - 1, end: caret, q: match[2].trim() };
  }

  function close() {
    window.clearTimeout(timer);
    asked += 1;
    list.hidden = true;
    list.replaceChildren();
    items = [];
    active = -1;
    token = null;
    body.removeAttribute("aria-activedescendant");
  }

  function say(text) {
    status.textContent = text;
  }

  function option(person, index) {
    const li = document.createElement("li");
    li.id = `ws-mention-opt-${index}`;
    li.className = "ws-mention-option";
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", "false");
    const name = document.createElement("span");
    name.className = "ws-mention-name";
    name.textContent = person.name;
    const email = document.createElement("span");
    email.className = "ws-mention-email";
    email.textContent = person.email;
    li.append(name, " ", email);
    li.addEventListener("mousedown", (event) => {
      event.preventDefault(); // the text keeps the focus (and its caret)
      pick(index);
    });
    return li;
  }

  function highlight(index) {
    active = index;
    list.querySelectorAll('[role="option"]').forEach((node, i) => {
      node.setAttribute("aria-selected", String(i === index));
      node.classList.toggle("is-active", i === index);
    });
    const node = document.getElementById(`ws-mention-opt-${index}`);
    if (node) {
      body.setAttribute("aria-activedescendant", node.id);
      node.scrollIntoView({ block: "nearest" });
    }
  }

  function show(found, q) {
    items = found;
    list.replaceChildren(...found.map(option));
    if (!found.length) {
      list.hidden = true;
      body.removeAttribute("aria-activedescendant");
      say(`No colleague who can see this ticket matches “${q}”.`);
      return;
    }
    list.hidden = false;
    highlight(0);
    const n = found.length;
    say(`${n} colleague${n === 1 ? "" : "s"} to mention: Up and Down to choose, Enter to pick, Escape to close.`);
  }

  async function lookUp(found) {
    const question = ++asked;
    try {
      const response = await fetch(`${url}?q=${encodeURIComponent(found.q)}`, {
        headers: { Accept: "application/json" },
      });
      const data = await response.json();
      if (question !== asked) return;
      if (!response.ok || !data.ok) {
        close();
        say(data.error || "Colleagues could not be looked up.");
        return;
      }
      token = found;
      show(data.items || [], found.q);
    } catch (_) {
      if (question === asked) close();
    }
  }

  function update() {
    const found = isInternal() ? currentToken() : null;
    if (!found || found.start === dismissed) {
      if (isOpen() || token) close();
      if (!found) dismissed = null;
      return;
    }
    dismissed = null;
    token = found;
    window.clearTimeout(timer);
    timer = window.setTimeout(() => lookUp(found), 120);
  }

  function pick(index) {
    const person = items[index];
    const at = token;
    if (!person || !at) return;
    close();
    body.focus();
    body.setRangeText(`${person.mention} `, at.start, at.end, "end");
    body.dispatchEvent(new Event("input", { bubbles: true })); // the draft is saved
    say(`${person.name} mentioned: they will be notified of this note.`);
  }

  body.addEventListener("input", update);
  body.addEventListener("click", update);
  body.addEventListener("keyup", (event) => {
    if (["ArrowLeft", "ArrowRight", "Home", "End"].includes(event.key)) update();
  });
  body.addEventListener("blur", () => window.setTimeout(() => {
    if (document.activeElement !== body) close();
  }, 150));
  body.addEventListener("keydown", (event) => {
    if (!isOpen() || !items.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight((active + step + items.length) % items.length);
    } else if (event.key === "Enter" || event.key === "Tab") {
      if (event.shiftKey || event.ctrlKey || event.metaKey || event.altKey) return;
      event.preventDefault();
      pick(active);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      dismissed = token ? token.start : null;
      close();
      say("Suggestions closed.");
    }
  });
  form.querySelectorAll('input[name="visibility"]').forEach((radio) => {
    radio.addEventListener("change", () => { if (!isInternal()) close(); });
  });
})();
