// One way to show time (web/timefmt.py renders every <time data-when> on the server in UTC):
// here each becomes the viewer's local time, relative to now ("3 minutes ago", "yesterday",
// "in 2 hours"), with the exact local time in its title for hover. Times a script adds later
// (live rows, socket updates) go through the same formatter: scripts build them with
// AutoCRMTime.element(iso), and server-rendered partials dropped into the page are caught by
// a MutationObserver. Relative texts are refreshed every half minute.
(function () {
  "use strict";
  const MINUTE = 60 * 1000, HOUR = 60 * MINUTE, DAY = 24 * HOUR;
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const exact = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
  const older = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const dayOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

  // Whole local calendar days between two moments (so 23:50 yesterday is "yesterday").
  function dayDifference(date, now) {
    const start = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
    return Math.round((start(date) - start(now)) / DAY);
  }

  function relativeText(date, now) {
    const diff = date.getTime() - now.getTime();
    const span = Math.abs(diff);
    if (span < MINUTE) return diff < 0 ? "just now" : "in a moment";
    if (span < HOUR) return relative.format(Math.trunc(diff / MINUTE), "minute");
    if (span < 6 * HOUR) return relative.format(Math.trunc(diff / HOUR), "hour");
    const days = dayDifference(date, now);
    if (days === 0) return relative.format(Math.trunc(diff / HOUR), "hour");
    if (Math.abs(days) < 7) return relative.format(days, "day");
    return older.format(date);
  }

  // Formats one <time>: its text (relative, or a date) and its title (the exact local time).
  function render(el) {
    const iso = el.getAttribute("datetime");
    if (!iso) return;
    // A bare calendar day (YYYY-MM-DD) has no time zone: read it as a local date, not as
    // UTC midnight (which is the day before west of Greenwich).
    const [y, m, d] = iso.length === 10 ? iso.split("-").map(Number) : [];
    const date = y ? new Date(y, m - 1, d) : new Date(iso);
    if (Number.isNaN(date.getTime())) return;
    if (el.dataset.when === "day") {
      el.textContent = dayOnly.format(date);
      el.title = y ? el.textContent : exact.format(date);
      return;
    }
    el.textContent = relativeText(date, new Date());
    el.title = exact.format(date);
  }

  function renderAll(scope) {
    const root = scope || document;
    if (root.matches && root.matches("time[data-when]")) render(root);
    root.querySelectorAll("time[data-when]").forEach(render);
  }

  // A <time> for a script to insert: the same markup as the server's, already formatted.
  function element(iso, kind) {
    const time = document.createElement("time");
    time.dateTime = iso || "";
    time.dataset.when = kind || "moment";
    render(time);
    return time;
  }

  renderAll(document);
  new MutationObserver((records) => {
    records.forEach((record) => record.addedNodes.forEach((node) => {
      if (node.nodeType === Node.ELEMENT_NODE) renderAll(node);
    }));
  }).observe(document.body, { childList: true, subtree: true });
  window.setInterval(() => renderAll(document), 30 * 1000);

  window.AutoCRMTime = { render, renderAll, element };
})();
