// `[server] tls`: the stock client over HTTPS and WSS — long-polling, the upgrade, WebSocket
// only — with a certificate from a CA made at test time; a renewed certificate is served to
// new connections without a restart; plain HTTP to the TLS port gets no answer.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { after, before, describe, it } from "node:test";

import { io as connect } from "socket.io-client";

import { makeCertificates } from "./certs.mjs";
import { eventually } from "./cluster-helpers.mjs";
import { startServer, switchboardBinary, target } from "./harness.mjs";
import { waitConnected, waitFor } from "./helpers.mjs";

describe("TLS", { skip: target === "reference" && "switchboard only" }, () => {
  let dir, certs, server;
  const clients = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "switchboard-tls-"));
    certs = makeCertificates(dir, { name: "server", cn: "first" });
    server = await startServer({
      routes: `[server]\ntls = { cert = "${certs.cert}", key = "${certs.key}" }\n\n[namespaces."/".events]\n"chat message" = "io"\n`,
    });
    assert.match(server.url, /^https:\/\//);
  });

  after(async () => {
    for (const c of clients) c.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const client = (transports) => {
    const socket = connect(server.url, {
      transports,
      forceNew: true,
      reconnection: false,
      ca: readFileSync(certs.ca),
    });
    clients.push(socket);
    return waitConnected(socket);
  };

  for (const transports of [["polling", "websocket"], ["polling"], ["websocket"]]) {
    it(`chat over ${transports.join(" then ")}`, async () => {
      const [a, b] = await Promise.all([client(transports), client(transports)]);
      // `io`: the sender gets its own copy too.
      const got = [waitFor(a, "chat message"), waitFor(b, "chat message")];
      a.emit("chat message", "over tls");
      assert.deepEqual(await Promise.all(got), ["over tls", "over tls"]);
      if (transports.length === 2) {
        await eventually(async () => a.io.engine.transport.name === "websocket", { label: "the upgrade" });
        const again = [waitFor(a, "chat message"), waitFor(b, "chat message")];
        b.emit("chat message", "after the upgrade");
        assert.deepEqual(await Promise.all(again), ["after the upgrade", "after the upgrade"]);
      }
      a.close();
      b.close();
    });
  }

  it("plain HTTP on the TLS port gets no HTTP answer", async () => {
    const status = await new Promise((resolve) => {
      const req = request(`http://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=polling`, (res) =>
        resolve(res.statusCode),
      );
      req.on("error", () => resolve("error"));
      req.end();
    });
    assert.equal(status, "error");
  });

  it("a peer that never finishes its handshake is closed at header_timeout; others are served", async () => {
    const slow = await startServer({
      routes: `[server]\ntls = { cert = "${certs.cert}", key = "${certs.key}" }\n\n[limits]\nheader_timeout = "1s"\n\n[namespaces."/".events]\n"chat message" = "io"\n`,
    });
    try {
      // TCP connected, no ClientHello: the server's deadline closes it.
      const stalled = tcpConnect(slow.port, "127.0.0.1");
      const closed = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("the stalled connection was never closed")), 10_000);
        stalled.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
      });
      stalled.on("error", () => {});
      // Meanwhile a real client is served.
      const socket = connect(slow.url, {
        transports: ["websocket"],
        forceNew: true,
        reconnection: false,
        ca: readFileSync(certs.ca),
      });
      clients.push(socket);
      await waitConnected(socket);
      const echo = waitFor(socket, "chat message");
      socket.emit("chat message", "served");
      assert.equal(await echo, "served");
      await closed;
      assert.equal(stalled.bytesRead, 0, "closed without an answer");
      socket.close();
    } finally {
      await slow.stop();
    }
  });

  it("check refuses a key that does not go with the certificate", () => {
    const other = makeCertificates(dir, { name: "other", cn: "other" });
    const routes = join(dir, "mismatch.toml");
    writeFileSync(routes, `[server]\ntls = { cert = "${certs.cert}", key = "${other.key}" }\n`);
    const run = spawnSync(switchboardBinary(), ["check", routes], { encoding: "utf8" });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /`key` does not go with `cert`/);
  });

  it("a renewed certificate is served to new connections, without a restart", async () => {
    const subject = () =>
      new Promise((resolve, reject) => {
        const s = tlsConnect({ host: "127.0.0.1", port: server.port, ca: readFileSync(certs.ca) }, () => {
          resolve(s.getPeerCertificate().subject.CN);
          s.end();
        });
        s.on("error", reject);
      });
    assert.equal(await subject(), "first");
    makeCertificates(dir, { name: "server", cn: "renewed" });
    await eventually(async () => (await subject()) === "renewed", { label: "the renewed certificate" });
  });
});
