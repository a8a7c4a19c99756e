// The demo chat client, shared by the pages: <body data-namespace="/chat" data-event="message">.
// `?transport=polling` or `?transport=websocket` forces one transport; `?token=…` sends auth.
(function () {
  "use strict";
  const body = document.body;
  const namespace = body.dataset.namespace || "/";
  const event = body.dataset.event || "chat message";
  const params = new URLSearchParams(location.search);
  const options = {};
  const transport = params.get("transport");
  if (transport === "polling" || transport === "websocket") options.transports = [transport];
  if (params.has("token")) options.auth = { token: params.get("token") };

  const socket = io(namespace, options);
  const form = document.getElementById("form");
  const input = document.getElementById("input");
  const send = document.getElementById("send");
  const messages = document.getElementById("messages");
  const status = document.getElementById("status");

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
    send.disabled = state !== "connected";
  }

  function append(text, kind) {
    const item = document.createElement("li");
    item.textContent = text;
    if (kind) item.className = kind;
    messages.appendChild(item);
    messages.scrollTop = messages.scrollHeight;
  }

  setStatus("connecting", "Connecting…");
  socket.on("connect", () => setStatus("connected", "Connected"));
  socket.on("disconnect", (reason) => {
    setStatus(socket.active ? "reconnecting" : "disconnected", socket.active ? "Reconnecting…" : "Disconnected");
    append("Disconnected: " + reason, "system");
  });
  socket.io.on("reconnect_attempt", () => setStatus("reconnecting", "Reconnecting…"));
  socket.on("connect_error", (err) => {
    setStatus(socket.active ? "reconnecting" : "error", "Error: " + err.message);
    if (!socket.active) append("Connection refused: " + err.message, "system");
  });
  socket.on(event, (msg) => append(typeof msg === "string" ? msg : JSON.stringify(msg)));

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    socket.emit(event, text);
    input.value = "";
    input.focus();
  });
})();
