// The demo chat client, shared by every demo page. A page is a shell whose <body> says what to build:
//
//   <body data-namespace="/chat"            the namespace to join (default "/")
//         data-event="message"              the chat event, sent and received (default "chat message")
//         data-title="Chat"                 the heading
//         data-subtitle="namespace /chat"   optional: small text beside the heading
//         data-link-href="/admin.html"      optional: a link beside the heading…
//         data-link-text="go to /admin"     …and its text
//         data-rooms="lobby"                optional: rooms mode, a room field (this default value) with
//                                           Join/Leave buttons; messages are sent as { room, text } and
//                                           the server's "notice" events are shown
//         data-auth="token">                optional: a Token field; the socket sends auth { token }
//
// Query flags: `?transport=polling` or `?transport=websocket` forces one transport;
// `?token=…` sends auth { token } from the start.
//
// Everything it needs is served by switchboard itself (this file, style.css, the socket.io client
// bundle): the page makes no request to any other host and works offline.
(function () {
  "use strict";
  const data = document.body.dataset;
  const namespace = data.namespace || "/";
  const event = data.event || "chat message";
  const roomsMode = "rooms" in data;
  const authMode = data.auth === "token";

  /** Create a `tag` element with the given attributes and children (nodes or strings). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value == null) continue;
      if (value === true) node.setAttribute(name, "");
      else node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  }

  const params = new URLSearchParams(location.search);
  const transport = params.get("transport");

  // ------------------------------------------------------------------ the UI
  // Built before anything can fail, so the page always has its controls.

  const title = el("h1", null, data.title || "Chat");
  if (data.subtitle) title.append(" ", el("small", null, data.subtitle));
  if (data.linkHref) {
    title.append(" ", el("small", null, el("a", { href: data.linkHref }, data.linkText || data.linkHref)));
  }

  // Connection status: a coloured dot plus words (never colour alone), announced politely.
  const statusText = el("span", { class: "status-text" }, "Loading…");
  const statusDetail = el("span", { class: "status-detail" });
  const status = el(
    "p",
    { id: "status", role: "status", "aria-live": "polite", "data-state": "loading" },
    el("span", { class: "dot", "aria-hidden": "true" }),
    el("span", null, statusText, statusDetail),
  );
  const header = el("header", null, el("div", { class: "titles" }, title), status);

  // A refused connection is an error the user must see: an alert, not just a status colour.
  const alert = el("p", { id: "alert", role: "alert", hidden: true });

  const toolbars = [];
  let tokenInput;
  if (authMode) {
    tokenInput = el("input", {
      id: "token",
      name: "token",
      autocomplete: "off",
      spellcheck: "false",
      value: params.get("token") ?? "",
    });
    const tokenForm = el(
      "form",
      { id: "auth", class: "toolbar", "aria-label": "Authentication" },
      el("label", { for: "token" }, "Token"),
      tokenInput,
      el("button", { id: "connect", type: "submit" }, "Connect"),
    );
    tokenForm.addEventListener("submit", (e) => {
      e.preventDefault();
      reconnectWith(tokenInput.value);
    });
    toolbars.push(tokenForm);
  }

  let roomInput;
  if (roomsMode) {
    roomInput = el("input", { id: "room", name: "room", autocomplete: "off", value: data.rooms || "lobby" });
    const join = el("button", { id: "join", type: "submit" }, "Join");
    const leave = el("button", { id: "leave", type: "button", class: "secondary" }, "Leave");
    const roomForm = el(
      "form",
      { id: "rooms", class: "toolbar", "aria-label": "Rooms" },
      el("label", { for: "room" }, "Room"),
      roomInput,
      join,
      leave,
    );
    roomForm.addEventListener("submit", (e) => {
      e.preventDefault();
      roomRequest("join");
    });
    leave.addEventListener("click", () => roomRequest("leave"));
    toolbars.push(roomForm);
  }

  const messages = el("ul", { id: "messages", role: "log", "aria-label": "Messages", "aria-live": "polite" });
  const empty = el(
    "p",
    { id: "empty", class: "hint" },
    roomsMode
      ? "No messages yet. Join a room, open this page in a second window, join the same room there " +
          "and say hello."
      : "No messages yet. Open this page in a second window and say hello.",
  );
  const input = el("input", {
    id: "input",
    name: "message",
    placeholder: roomsMode ? "Message to the room" : "Type a message",
    autocomplete: "off",
  });
  const send = el("button", { id: "send", type: "submit", disabled: true }, "Send");
  const form = el(
    "form",
    { id: "form", class: "composer", "aria-label": "Send a message" },
    el("label", { class: "visually-hidden", for: "input" }, "Message"),
    input,
    send,
  );

  const main = el("main", null, alert, ...toolbars, el("section", { class: "feed" }, empty, messages));
  document.body.prepend(header, main, form);
  input.focus();

  function setStatus(state, text, detail) {
    status.dataset.state = state;
    statusText.textContent = text;
    statusDetail.textContent = detail ? " · " + detail : "";
    send.disabled = state !== "connected";
  }

  function showAlert(text) {
    alert.textContent = text;
    alert.hidden = !text;
  }

  function append(text, kind) {
    const item = el("li", kind ? { class: kind } : null, text);
    messages.appendChild(item);
    empty.hidden = true;
    item.scrollIntoView({ block: "end" });
  }

  if (typeof io !== "function") {
    setStatus("error", "Error", "the socket.io client did not load");
    showAlert("The socket.io client (/socket.io/socket.io.js) did not load: is switchboard running?");
    return;
  }

  // -------------------------------------------------------------- the socket

  const options = {};
  if (transport === "polling" || transport === "websocket") options.transports = [transport];
  if (authMode || params.has("token")) options.auth = { token: params.get("token") ?? "" };
  // A page that asks for a token waits for one rather than being refused straight away.
  const waitForToken = authMode && !params.has("token");
  if (waitForToken) options.autoConnect = false;
  const socket = io(namespace, options);

  /** The transport in use, kept current across the polling → WebSocket upgrade. */
  function transportName() {
    const engine = socket.io.engine;
    return engine && engine.transport ? engine.transport.name : "";
  }
  function showConnected() {
    const name = transportName();
    status.dataset.transport = name;
    setStatus("connected", "Connected", name);
  }

  if (waitForToken) {
    setStatus("idle", "Not connected", "enter a token");
    tokenInput.focus();
  } else {
    setStatus("connecting", "Connecting…", transport ? transport + " only" : "");
  }
  socket.on("connect", () => {
    showAlert("");
    showConnected();
    // A reconnection builds a new engine: follow the upgrade of each one.
    socket.io.engine.once("upgrade", () => socket.connected && showConnected());
  });
  socket.on("disconnect", (reason) => {
    if (socket.active) {
      setStatus("reconnecting", "Reconnecting…", reason);
      append("Connection lost (" + reason + "), reconnecting…", "system");
    } else {
      setStatus("disconnected", "Disconnected", reason);
      append("Disconnected (" + reason + ")", "system");
    }
  });
  socket.io.on("reconnect_attempt", (attempt) => {
    setStatus("reconnecting", "Reconnecting…", "attempt " + attempt);
  });
  socket.io.on("reconnect", () => append("Reconnected", "system"));
  socket.on("connect_error", (err) => {
    if (socket.active) {
      // A temporary failure (the server is unreachable): the client retries on its own.
      setStatus("reconnecting", "Reconnecting…", err.message);
    } else {
      // Refused by the server (a namespace that does not exist, a wrong token): no retry.
      setStatus("error", "Error", err.message);
      showAlert("Connection refused: " + err.message);
      if (tokenInput) tokenInput.focus();
    }
  });

  function reconnectWith(token) {
    socket.auth = { token };
    showAlert("");
    if (socket.connected) socket.disconnect();
    setStatus("connecting", "Connecting…");
    socket.connect();
  }

  socket.on(event, (msg) => {
    if (roomsMode && msg && typeof msg === "object" && "text" in msg) {
      append(msg.room + ": " + msg.text);
    } else {
      append(typeof msg === "string" ? msg : JSON.stringify(msg));
    }
  });

  if (roomsMode) {
    socket.on("notice", (text) => append(String(text), "system"));
  }

  async function roomRequest(what) {
    const room = roomInput.value.trim();
    if (!room) return roomInput.focus();
    try {
      const name = await socket.timeout(5000).emitWithAck(what, room);
      append((what === "join" ? "You joined " : "You left ") + name, "system");
    } catch {
      append("No answer to " + what + " " + room + ": is the connection up?", "system");
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || !socket.connected) return;
    socket.emit(event, roomsMode ? { room: roomInput.value.trim(), text } : text);
    input.value = "";
    input.focus();
  });
})();
