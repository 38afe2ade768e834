// The knowledge-base editor: "Preview" renders the Markdown on the server (the same sanitizing
// renderer readers get) and shows it next to the text without leaving the page; once shown, the
// preview follows the typing. Without this script "Preview" submits the form, and the page comes
// back with the preview and the input kept, nothing saved.
(function () {
  "use strict";
  const form = document.getElementById("kb-editor");
  if (!form || !window.AutoCRM) return;
  const body = document.getElementById("kb-body");
  const button = document.getElementById("kb-preview-button");
  const section = document.getElementById("kb-preview");
  const output = document.getElementById("kb-preview-body");
  const state = document.getElementById("kb-preview-state");
  let requested = 0;
  let timer = null;

  async function render() {
    const seq = ++requested;
    state.textContent = "Updating…";
    let data;
    try {
      const response = await window.AutoCRM.post(form.dataset.previewUrl, { body: body.value });
      data = await response.json();
    } catch (_) {
      data = { ok: false, error: "Could not reach the server; try again." };
    }
    if (seq !== requested) return; // a later keystroke's preview is on its way
    if (!data || !data.ok) {
      state.textContent = `No preview: ${(data && data.error) || "unknown error"}`;
      return;
    }
    // Rendered and sanitized on the server (autocrm.markdown: nh3 allow-list).
    output.innerHTML = data.html || "<p><em>Nothing to preview yet.</em></p>";
    state.textContent = "";
  }

  button.addEventListener("click", (event) => {
    event.preventDefault();
    section.hidden = false;
    render().then(() => section.scrollIntoView({ block: "nearest" }));
  });

  body.addEventListener("input", () => {
    if (section.hidden) return;
    clearTimeout(timer);
    timer = setTimeout(render, 400);
  });
})();
