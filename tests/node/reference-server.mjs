// Reference server for validating the Node test suite.
//
// Same CLI and the same routes.toml contract as switchboard, implemented on the
// real `socket.io` package:
//
//   node tests/node/reference-server.mjs --config routes.toml --listen 127.0.0.1:0
//
// prints `switchboard-reference listening on http://HOST:PORT` once bound.
//
// Supported routes.toml subset (what the tests use):
//
//   [server]
//   ping_interval = "100ms"      # durations: "<n>ms" | "<n>s" | "<n>m"
//   ping_timeout  = "200ms"
//   max_payload   = 1000000      # bytes (integer) or "1MB" / "1MiB" / "512KB" ...
//   parser        = "msgpack"    # socket.io-msgpack-parser
//
//   [admin_ui]                           # instrument() of @socket.io/admin-ui
//   username = "admin"
//   password_hash_env = "ADMIN_HASH"     # the bcrypt hash, from the environment
//   readonly = false
//
//   [namespaces."/".events]
//   "chat message" = "io"                # target only; a client ack gets an empty answer
//   echo = { ack = "{args}" }            # ack only, answered with the client's own args
//   other = { to = "broadcast", ack = "{args}" }
//   enter = { join = "{0}", ack = "{args}" }        # join the room named by the first argument
//   said = { to = "room", room = "{0}" }              # to that room, the sender aside
//
//   [server.recovery]                    # connectionStateRecovery
//   max_disconnection = "2m"
//   skip_auth = false
//
// Targets: "emit" (sender), "broadcast" (namespace minus sender), "io" (whole
// namespace). Namespaces that are not declared refuse with "Invalid namespace".

import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { Server } from "socket.io";

// ---------------------------------------------------------------- tiny TOML

function parseString(src, i) {
  // src[i] is the opening quote; returns [value, indexAfterClosingQuote]
  const quote = src[i];
  let out = "";
  i++;
  while (i < src.length && src[i] !== quote) {
    if (quote === '"' && src[i] === "\\") {
      const esc = src[i + 1];
      const map = { n: "\n", t: "\t", r: "\r", '"': '"', "\\": "\\" };
      if (!(esc in map)) throw new Error(`unsupported escape \\${esc}`);
      out += map[esc];
      i += 2;
    } else {
      out += src[i++];
    }
  }
  if (src[i] !== quote) throw new Error("unterminated string");
  return [out, i + 1];
}

function skipWs(src, i) {
  while (i < src.length && (src[i] === " " || src[i] === "\t")) i++;
  return i;
}

function parseKey(src, i) {
  i = skipWs(src, i);
  if (src[i] === '"' || src[i] === "'") return parseString(src, i);
  const m = /^[A-Za-z0-9_-]+/.exec(src.slice(i));
  if (!m) throw new Error(`bad key at: ${src.slice(i)}`);
  return [m[0], i + m[0].length];
}

function parseValue(src, i) {
  i = skipWs(src, i);
  const c = src[i];
  if (c === '"' || c === "'") return parseString(src, i);
  if (c === "{") {
    const table = {};
    i = skipWs(src, i + 1);
    if (src[i] === "}") return [table, i + 1];
    for (;;) {
      let key;
      [key, i] = parseKey(src, i);
      i = skipWs(src, i);
      if (src[i] !== "=") throw new Error(`expected = in inline table`);
      let value;
      [value, i] = parseValue(src, i + 1);
      table[key] = value;
      i = skipWs(src, i);
      if (src[i] === ",") {
        i++;
        continue;
      }
      if (src[i] === "}") return [table, i + 1];
      throw new Error("bad inline table");
    }
  }
  const m = /^(true|false|[+-]?[0-9_]+)/.exec(src.slice(i));
  if (!m) throw new Error(`unsupported value at: ${src.slice(i)}`);
  const raw = m[1];
  const value = raw === "true" ? true : raw === "false" ? false : Number(raw.replaceAll("_", ""));
  return [value, i + raw.length];
}

function parseToml(text) {
  const root = {};
  let current = root;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("[")) {
      if (line.startsWith("[[")) throw new Error("arrays of tables are not supported");
      const path = [];
      let i = 1;
      for (;;) {
        let key;
        [key, i] = parseKey(line, i);
        path.push(key);
        i = skipWs(line, i);
        if (line[i] === ".") {
          i++;
          continue;
        }
        if (line[i] === "]") break;
        throw new Error(`bad table header: ${line}`);
      }
      current = root;
      for (const key of path) current = current[key] ??= {};
      continue;
    }
    let key;
    let i;
    [key, i] = parseKey(line, 0);
    i = skipWs(line, i);
    if (line[i] !== "=") throw new Error(`expected = in: ${line}`);
    let value;
    [value, i] = parseValue(line, i + 1);
    const rest = line.slice(i).trim();
    if (rest !== "" && !rest.startsWith("#")) throw new Error(`trailing text in: ${line}`);
    current[key] = value;
  }
  return root;
}

// ---------------------------------------------------------------- config

function duration(v, name) {
  if (typeof v === "number") return v;
  const m = /^(\d+)\s*(ms|s|m)$/.exec(String(v));
  if (!m) throw new Error(`bad duration for ${name}: ${v}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2]];
}

function bytes(v) {
  if (typeof v === "number") return v;
  const m = /^(\d+)\s*(B|KB|MB|KiB|MiB)?$/i.exec(String(v));
  if (!m) throw new Error(`bad size: ${v}`);
  const unit = (m[2] ?? "B").toLowerCase();
  return Number(m[1]) * { b: 1, kb: 1e3, mb: 1e6, kib: 1024, mib: 1024 * 1024 }[unit];
}

const TARGETS = new Set(["emit", "broadcast", "io", "room"]);

function route(event, spec) {
  if (typeof spec === "string") spec = { to: spec };
  if (spec.to !== undefined && !TARGETS.has(spec.to)) {
    throw new Error(`reference server does not implement target "${spec.to}" (event ${event})`);
  }
  if (spec.ack !== undefined && spec.ack !== "{args}") {
    throw new Error(`reference server only implements ack = "{args}" (event ${event})`);
  }
  for (const key of ["room", "join"]) {
    if (spec[key] !== undefined && spec[key] !== "{0}") {
      throw new Error(`reference server only implements ${key} = "{0}" (event ${event})`);
    }
  }
  return { to: spec.to, ackArgs: spec.ack === "{args}", join: spec.join !== undefined };
}

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i === -1 || i + 1 >= process.argv.length) throw new Error(`missing ${name}`);
  return process.argv[i + 1];
}

// ---------------------------------------------------------------- server

const config = parseToml(readFileSync(arg("--config"), "utf8"));
const [host, port] = (() => {
  const listen = arg("--listen");
  const idx = listen.lastIndexOf(":");
  return [listen.slice(0, idx), Number(listen.slice(idx + 1))];
})();

const serverCfg = config.server ?? {};
const opts = {
  pingInterval: duration(serverCfg.ping_interval ?? "25s", "ping_interval"),
  pingTimeout: duration(serverCfg.ping_timeout ?? "20s", "ping_timeout"),
  maxHttpBufferSize: bytes(serverCfg.max_payload ?? 1_000_000),
};

if (serverCfg.parser === "msgpack") {
  opts.parser = (await import("socket.io-msgpack-parser")).default;
}

const recovery = serverCfg.recovery;
if (recovery) {
  opts.connectionStateRecovery = {
    maxDisconnectionDuration: duration(recovery.max_disconnection ?? "2m", "max_disconnection"),
    skipMiddlewares: recovery.skip_auth ?? false,
  };
}

const http = createServer();
const io = new Server(http, opts);

const adminUi = config.admin_ui;
if (adminUi) {
  const { instrument } = (await import("@socket.io/admin-ui")).default;
  instrument(io, {
    namespaceName: adminUi.namespace ?? "/admin",
    auth: { type: "basic", username: adminUi.username, password: process.env[adminUi.password_hash_env] },
    readonly: adminUi.readonly ?? false,
    mode: "development",
  });
}

const namespaces = config.namespaces ?? {};
if (!("/" in namespaces)) {
  // socket.io always has "/"; make it behave like any undeclared namespace.
  io.of("/").use((_socket, next) => next(new Error("Invalid namespace")));
}
for (const [name, nsCfg] of Object.entries(namespaces)) {
  const routes = Object.entries(nsCfg.events ?? {}).map(([ev, spec]) => [ev, route(ev, spec)]);
  const nsp = io.of(name);
  nsp.on("connection", (socket) => {
    for (const [event, r] of routes) {
      socket.on(event, (...args) => {
        const ack = typeof args.at(-1) === "function" ? args.pop() : null;
        if (r.join) socket.join(String(args[0]));
        if (r.to === "emit") socket.emit(event, ...args);
        else if (r.to === "broadcast") socket.broadcast.emit(event, ...args);
        else if (r.to === "io") nsp.emit(event, ...args);
        else if (r.to === "room") socket.to(String(args[0])).emit(event, ...args);
        if (ack) {
          if (r.ackArgs) ack(...args);
          else ack();
        }
      });
    }
  });
}

process.on("SIGTERM", () => {
  io.close();
  process.exit(0);
});

http.listen(port, host, () => {
  const addr = http.address();
  console.log(`switchboard-reference listening on http://${addr.address}:${addr.port}`);
});
