// The reference for bench/compare.sh: the npm `socket.io` server (4.8) with the events of
// bench/routes.toml, written as a socket.io user would write them:
//
//   "chat message" = "io"        io.emit("chat message", ...args)
//   echo = { ack = "{args}" }    the ack callback answers with the arguments
//   ping = "emit"                socket.emit("ping", ...args)
//
//   node bench/reference-server.mjs [--listen 127.0.0.1:0]
//
// prints `socket.io listening on http://HOST:PORT` once bound.

import { createServer } from "node:http";
import { Server } from "socket.io";

const i = process.argv.indexOf("--listen");
const listen = i === -1 ? "127.0.0.1:0" : process.argv[i + 1];
const sep = listen.lastIndexOf(":");
const [host, port] = [listen.slice(0, sep), Number(listen.slice(sep + 1))];

const http = createServer();
const io = new Server(http, { serveClient: false });

io.on("connection", (socket) => {
  socket.on("chat message", (...args) => {
    if (typeof args.at(-1) === "function") args.pop()();
    io.emit("chat message", ...args);
  });
  socket.on("echo", (...args) => {
    const ack = typeof args.at(-1) === "function" ? args.pop() : null;
    if (ack) ack(...args);
  });
  socket.on("ping", (...args) => {
    const ack = typeof args.at(-1) === "function" ? args.pop() : null;
    socket.emit("ping", ...args);
    if (ack) ack();
  });
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}

http.listen(port, host, () => {
  const addr = http.address();
  console.log(`socket.io listening on http://${addr.address}:${addr.port}`);
});
