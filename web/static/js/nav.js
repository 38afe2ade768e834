// The main navigation folds behind a "Menu" button on narrow screens, so a phone sees the
// page rather than ~230 px of links. Progressive enhancement: the button is `hidden` in the
// HTML and the links are only folded once this script has marked the header, so without
// JavaScript the links are listed as they are on a desktop.
(function () {
  "use strict";
  const toggle = document.getElementById("nav-toggle");
  const header = toggle && toggle.closest(".site-header");
  const links = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
  if (!toggle || !header || !links) return;

  function setOpen(open) {
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    header.classList.toggle("nav-open", open);
  }

  header.classList.add("nav-collapsible");
  toggle.hidden = false;
  setOpen(false);
  toggle.addEventListener("click", () => setOpen(toggle.getAttribute("aria-expanded") !== "true"));
  // Escape closes the open menu and gives the focus back to its button, as menus do.
  header.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
      setOpen(false);
      toggle.focus();
    }
  });
})();
