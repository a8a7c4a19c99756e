// Fan-out targets: "io" reaches every client in the namespace (sender
// included), "broadcast" every client but the sender, "emit" only the sender.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { record, useServer, waitForArgs, waitUntil } from "./helpers.mjs";

const routes = `
[namespaces."/".events]
"chat message" = "io"
typing = "broadcast"
bin = "emit"
`;

describe("chat fan-out", () => {
  const ctx = useServer(routes);

  async function three() {
    return Promise.all([
      ctx.clients.connect(ctx.server.url),
      ctx.clients.connect(ctx.server.url, { transports: ["websocket"] }),
      ctx.clients.connect(ctx.server.url, { transports: ["polling"] }),
    ]);
  }

  test('"io" route: a chat message reaches all three clients, sender included', { timeout: 10_000 }, async () => {
    const [a, b, c] = await three();
    const got = [a, b, c].map((s) => waitForArgs(s, "chat message", { label: `chat message on ${s.id}` }));
    a.emit("chat message", "hello everyone", { from: "a" });
    for (const args of await Promise.all(got)) {
      assert.deepEqual(args, ["hello everyone", { from: "a" }]);
    }
  });

  test('"broadcast" route: everyone but the sender gets it', { timeout: 10_000 }, async () => {
    const [a, b, c] = await three();
    const typingAtSender = record(a, "typing");
    const got = [b, c].map((s) => waitForArgs(s, "typing"));
    a.emit("typing", "a is typing");
    assert.deepEqual(await Promise.all(got), [["a is typing"], ["a is typing"]]);

    // Barrier: an "io" message from the sender comes back to it after anything
    // the server sent it earlier; by then a wrongly echoed "typing" would be here.
    const barrier = waitForArgs(a, "chat message");
    a.emit("chat message", "barrier");
    assert.deepEqual(await barrier, ["barrier"]);
    assert.deepEqual(typingAtSender, [], "the sender of a broadcast must not receive it");
  });

  test('"emit" route: only the sender gets it back', { timeout: 10_000 }, async () => {
    const [a, b, c] = await three();
    const atB = record(b, "bin");
    const atC = record(c, "bin");
    const back = waitForArgs(a, "bin");
    a.emit("bin", "just for me");
    assert.deepEqual(await back, ["just for me"]);

    // Barrier on b and c: an "io" message sent after the "emit" one.
    const barriers = [b, c].map((s) => waitForArgs(s, "chat message"));
    a.emit("chat message", "barrier");
    await Promise.all(barriers);
    assert.deepEqual(atB, []);
    assert.deepEqual(atC, []);
  });

  test("messages from one client arrive in the order they were sent", { timeout: 10_000 }, async () => {
    const [a, b, c] = await three();
    const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
    const atB = record(b, "chat message");
    const atC = record(c, "chat message");
    const allB = waitUntil(b, "chat message", () => atB.length >= sent.length, { label: "20 messages at b" });
    const allC = waitUntil(c, "chat message", () => atC.length >= sent.length, { label: "20 messages at c" });
    for (const m of sent) a.emit("chat message", m);
    await Promise.all([allB, allC]);
    assert.deepEqual(atB.map(([m]) => m), sent);
    assert.deepEqual(atC.map(([m]) => m), sent);
  });
});
