// Shared by every logged-in page: the Socket.IO connection (session cookie auth), a visible
// "reconnecting" state, live notification count, and a CSRF-aware fetch helper.
(function () {
  "use strict";
  const banner = document.getElementById("connection-banner");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const socket = window.io({ transports: ["websocket", "polling"] });
  const reconnectHandlers = [];

  socket.on("disconnect", () => { if (banner) banner.hidden = false; });
  socket.on("connect", () => {
    if (banner) banner.hidden = true;
    reconnectHandlers.forEach((handler) => handler());
  });

  const unread = document.getElementById("unread-count");
  async function refreshUnread() {
    if (!unread) return;
    const response = await fetch("/notifications/unread", { headers: { Accept: "application/json" } });
    if (response.ok) {
      const data = await response.json();
      unread.textContent = data.unread ? String(data.unread) : "";
    }
  }
  socket.on("notification", refreshUnread);
  refreshUnread();

  window.AutoCRM = {
    socket,
    csrf,
    // Called on every (re)connection, including the first: join rooms and catch up there.
    onConnect(handler) { reconnectHandlers.push(handler); if (socket.connected) handler(); },
    emit(event, payload) {
      return new Promise((resolve) => socket.timeout(10000).emit(event, payload, (err, ack) => {
        resolve(err ? { ok: false, error: "No answer from the server; try again." } : ack);
      }));
    },
    post(url, body) {
      return fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
        body: JSON.stringify(body),
      });
    },
  };
})();
