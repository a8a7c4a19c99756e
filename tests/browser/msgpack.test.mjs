// examples/msgpack: the chat page with the served socket.io.msgpack.min.js bundle (the client
// built with socket.io-msgpack-parser) against `[server] parser = "msgpack"` — polling, the
// upgrade, binary both ways, and a template route, in Chromium.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { browserTest, chat, chatMessages, evaluateWithin, useBrowser, waitForState } from "./browser.mjs";

const config = "examples/msgpack/routes.toml";

describe("msgpack example", () => {
  useBrowser();

  browserTest("two pages chat over the msgpack parser, upgraded to WebSocket", async (s) => {
    await s.server({ config });
    const [a, b] = await s.openAll([["/", "page A (msgpack)"], ["/", "page B (msgpack)"]]);
    await Promise.all([waitForState(a, "connected"), waitForState(b, "connected")]);
    await chat(a, "hello over msgpack", [a, b]);
    await chat(b, "and back", [a, b], { via: "button" });
    for (const page of [a, b]) assert.deepEqual(await chatMessages(page), ["hello over msgpack", "and back"]);
    await a.waitForFunction(() => document.getElementById("status").dataset.transport === "websocket");
    assert.equal(s.traffic(a).websockets.length, 1, "one WebSocket after the upgrade");
  });

  browserTest("binary goes both ways inline; a template route and a script read it", async (s) => {
    await s.server({ config });
    const [a, b] = await s.openAll([["/", "page A (sends a file)"], ["/", "page B (receives it)"]]);
    await Promise.all([waitForState(a, "connected"), waitForState(b, "connected")]);
    // B listens with a socket of its own (the page's chat does not show files). In a browser,
    // notepack sends an ArrayBuffer as msgpack binary (a typed array would be a map).
    await b.evaluate(() => {
      const s = io();
      s.on("connect", () => { window.listening = true; });
      window.received = new Promise((resolve) => {
        s.on("file", (f) => resolve({ name: f.name, bytes: Array.from(new Uint8Array(f.bytes)) }));
      });
      window.typing = new Promise((resolve) => s.on("typing", (who) => resolve(typeof who.id)));
    });
    await b.waitForFunction(() => window.listening === true);
    const sent = await evaluateWithin(a, "A echoes, sends the file and is acked", async () => {
      const s = io();
      await new Promise((resolve) => s.on("connect", resolve));
      const echoed = await new Promise((resolve) =>
        s.emit("echo", new Uint8Array([0, 1, 255]).buffer, { n: 1 }, (...args) => resolve(args)),
      );
      const ack = await s.emitWithAck("file", { name: "a.bin", bytes: new Uint8Array([7, 8, 9]).buffer });
      s.emit("typing"); // a Rhai handler (scripts/typing.rhai) tells the others
      s.close();
      return { echoed: [Array.from(new Uint8Array(echoed[0])), echoed[1]], ack };
    });
    assert.deepEqual(sent.echoed, [[0, 1, 255], { n: 1 }]);
    assert.equal(sent.ack, "a.bin sent");
    assert.deepEqual(await evaluateWithin(b, "B receives the file", () => window.received), {
      name: "a.bin",
      bytes: [7, 8, 9],
    });
    assert.equal(await evaluateWithin(b, "B hears A typing", () => window.typing), "string");
  });
});
