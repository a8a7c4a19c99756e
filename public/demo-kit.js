// Shared by the example pages that bring their own logic (private messages, typing,
// moderation): element lookup, appending to the message list, and the connection status.
// The chat pages use chat.js instead.
// It also builds the page from <body data-title="…" data-recipient>: a header with the
// title and the status, the message list, a notice line, and a form whose optional "To"
// field (data-recipient) precedes the message input.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  }
  function build() {
    const body = document.body;
    const header = el("header");
    header.append(el("h1", {}, body.dataset.title || "Demo"));
    header.append(el("span", { id: "status", role: "status", "aria-live": "polite" }, "Loading…"));
    const form = el("form", { id: "form", autocomplete: "off" });
    if ("recipient" in body.dataset) {
      form.append(el("label", { for: "to" }, "To"));
      form.append(el("input", { id: "to", name: "to", placeholder: "bob", size: "8" }));
    }
    form.append(el("label", { class: "visually-hidden", for: "input" }, "Message"));
    form.append(el("input", { id: "input", name: "message", placeholder: "Type a message" }));
    form.append(el("button", { id: "send", type: "submit", disabled: "" }, "Send"));
    body.prepend(
      header,
      el("ul", { id: "messages", "aria-label": "Messages", "aria-live": "polite" }),
      el("p", { id: "notice", class: "system", "aria-live": "polite" }),
      form,
    );
  }
  build();
  function append(text, kind) {
    const li = document.createElement("li");
    li.textContent = text;
    if (kind) li.className = kind;
    $("messages").appendChild(li);
  }
  function status(state, text) {
    $("status").dataset.state = state;
    $("status").textContent = text;
    $("send").disabled = state !== "connected";
  }
  // Show the socket's connection state in #status.
  function track(socket) {
    status("connecting", "Connecting…");
    socket.on("connect", () => status("connected", "Connected"));
    // The client reconnects by itself, except when the server removed it from the namespace.
    socket.on("disconnect", (reason) =>
      reason === "io server disconnect"
        ? status("error", "Disconnected by the server")
        : status("reconnecting", "Reconnecting…"),
    );
    socket.on("connect_error", (err) => status("error", "Error: " + err.message));
  }
  window.demoKit = { $, append, status, track };
})();
