// What the stock socket.io-client sees at switchboard's limits ([limits] in routes.toml):
// an ack error for an event over the rate, "io server disconnect" for a flood, a
// connect_error for a namespace over the cap, and a refused handshake that the client's own
// reconnection turns into a connection once a place is free. The reference socket.io server
// has none of these limits, so these tests run against switchboard only.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { target } from "./harness.mjs";
import { useServer, waitFor, waitForArgs } from "./helpers.mjs";

const routes = `
[limits]
events_per_socket = { rate = "5/s", burst = 5 }
events_excess_disconnect = "1s"
namespaces_per_session = 1
max_connections_per_ip = 1
header_timeout = "1s"

[namespaces."/".events]
echo = { ack = "{args}" }

[namespaces."/chat".events]
echo = { ack = "{args}" }
`;

describe("the stock client at switchboard's limits", {
  skip: target === "reference" ? "the reference socket.io server has no such limits" : false,
}, () => {
  const ctx = useServer(routes);

  test("events over the rate are answered with an error, a flood is disconnected", async () => {
    const socket = await ctx.clients.connect(ctx.server.url, { transports: ["websocket"] });
    const answers = await Promise.all(
      Array.from({ length: 7 }, (_, i) => socket.timeout(2000).emitWithAck("echo", i)),
    );
    assert.deepEqual(answers.slice(0, 5), [0, 1, 2, 3, 4]);
    assert.deepEqual(answers.slice(5), [
      { error: "rate limit exceeded" },
      { error: "rate limit exceeded" },
    ]);
    const gone = waitForArgs(socket, "disconnect", { timeout: 5000, label: "the flood's end" });
    const flood = setInterval(() => socket.emit("echo", "flood"), 5);
    const [reason] = await gone;
    clearInterval(flood);
    assert.equal(reason, "io server disconnect");
  });

  test("a namespace over namespaces_per_session is a connect_error", async () => {
    const root = await ctx.clients.connect(ctx.server.url, { transports: ["websocket"] });
    const chat = root.io.socket("/chat");
    chat.connect();
    const err = await waitFor(chat, "connect_error");
    assert.equal(err.message, "Too many namespaces");
  });

  test("a handshake over the cap fails until a place is free, then the client gets in", async () => {
    const first = await ctx.clients.connect(ctx.server.url, { transports: ["polling"] });
    const second = ctx.clients.socket(ctx.server.url, {
      transports: ["polling"],
      reconnection: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
    });
    const err = await waitFor(second, "connect_error");
    assert.match(err.message, /xhr poll error/);
    assert.equal(err.description, 503, "the handshake's status");
    first.disconnect();
    // The client retries on its own; once the first session (and its idle connections,
    // closed after header_timeout) are gone, it is in.
    await waitFor(second, "connect", { timeout: 8000 });
    assert.deepEqual(await second.timeout(2000).emitWithAck("echo", "in"), "in");
  });
});
