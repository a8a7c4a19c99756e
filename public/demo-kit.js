// Shared by the example pages that bring their own logic (private messages, typing,
// moderation): element lookup, appending to the message list, and the connection status.
// The chat pages use chat.js instead.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
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
    socket.on("disconnect", () => status("reconnecting", "Reconnecting…"));
    socket.on("connect_error", (err) => status("error", "Error: " + err.message));
  }
  window.demoKit = { $, append, status, track };
})();
