// The demo chat client, shared by the pages. A page is a shell whose <body> says what to build:
//   <body data-namespace="/chat" data-event="message" data-title="Chat"
//         data-subtitle="(namespace /chat)"                      (optional, small text in the h1)
//         data-link-href="/admin.html" data-link-text="go to /admin">  (optional, small link in the h1)
// `?transport=polling` or `?transport=websocket` forces one transport; `?token=…` sends auth.
(function () {
  "use strict";
  const body = document.body;
  const data = body.dataset;
  const namespace = data.namespace || "/";
  const event = data.event || "chat message";

  /** Create a `tag` element with the given attributes and children (nodes or strings). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === true) node.setAttribute(name, "");
      else node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  }

  // The UI, built before anything can fail so the page always has its controls.
  const title = el("h1", null, data.title || "Chat");
  if (data.subtitle) title.append(" ", el("small", null, data.subtitle));
  if (data.linkHref) {
    title.append(" ", el("small", null, el("a", { href: data.linkHref }, data.linkText || data.linkHref)));
  }
  const status = el("span", { id: "status", role: "status", "aria-live": "polite" }, "Loading…");
  const messages = el("ul", { id: "messages", "aria-label": "Messages", "aria-live": "polite" });
  const input = el("input", { id: "input", name: "message", placeholder: "Type a message", autofocus: true });
  const send = el("button", { id: "send", type: "submit", disabled: true }, "Send");
  const form = el(
    "form",
    { id: "form", autocomplete: "off" },
    el("label", { class: "visually-hidden", for: "input" }, "Message"),
    input,
    send,
  );
  body.prepend(el("header", null, title, status), messages, form);
  input.focus();

  const params = new URLSearchParams(location.search);
  const options = {};
  const transport = params.get("transport");
  if (transport === "polling" || transport === "websocket") options.transports = [transport];
  if (params.has("token")) options.auth = { token: params.get("token") };

  const socket = io(namespace, options);

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
