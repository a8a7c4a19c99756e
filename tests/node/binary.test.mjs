// Binary attachments and acknowledgements.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { useServer, waitForArgs } from "./helpers.mjs";

const routes = `
[namespaces."/".events]
"chat message" = "io"
bin = "emit"
echo = { ack = "{args}" }
`;

function bytes(n, seed) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function assertSameBuffer(actual, expected, what) {
  assert.ok(Buffer.isBuffer(actual), `${what} should arrive as a Buffer, got ${typeof actual} ${actual?.constructor?.name}`);
  assert.equal(actual.length, expected.length, `${what}: length`);
  assert.ok(actual.equals(expected), `${what}: contents differ`);
}

for (const transports of [["websocket"], ["polling"]]) {
  describe(`binary over ${transports[0]}`, () => {
    const ctx = useServer(routes);

    test("a single Buffer round-trips byte for byte", { timeout: 10_000 }, async () => {
      const socket = await ctx.clients.connect(ctx.server.url, { transports });
      // Every byte value, including 0x00 and 0xff, which text framing would mangle.
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const back = waitForArgs(socket, "bin");
      socket.emit("bin", all);
      const args = await back;
      assert.equal(args.length, 1);
      assertSameBuffer(args[0], all, "buffer");
    });

    test("several Buffers, nested in objects and arrays, keep their place", { timeout: 10_000 }, async () => {
      const socket = await ctx.clients.connect(ctx.server.url, { transports });
      const first = bytes(1, 7);
      const big = bytes(64 * 1024, 3);
      const inner = bytes(300, 11);
      const empty = Buffer.alloc(0);
      const back = waitForArgs(socket, "bin");
      socket.emit("bin", first, { label: "nested", data: big, list: [1, inner, "x"], none: empty }, "tail");
      const [gotFirst, obj, tail] = await back;
      assertSameBuffer(gotFirst, first, "first argument");
      assert.equal(obj.label, "nested");
      assertSameBuffer(obj.data, big, "obj.data");
      assert.equal(obj.list.length, 3);
      assert.equal(obj.list[0], 1);
      assertSameBuffer(obj.list[1], inner, "obj.list[1]");
      assert.equal(obj.list[2], "x");
      assertSameBuffer(obj.none, empty, "obj.none");
      assert.equal(tail, "tail");
    });

    test("a string that looks like a placeholder stays a string", { timeout: 10_000 }, async () => {
      const socket = await ctx.clients.connect(ctx.server.url, { transports });
      const tricky = { _placeholder: true, num: 0 };
      const back = waitForArgs(socket, "bin");
      socket.emit("bin", tricky, "b64:AAAA", "6-[]");
      assert.deepEqual(await back, [tricky, "b64:AAAA", "6-[]"]);
    });

    test("emitWithAck on a plain route resolves with no value", { timeout: 10_000 }, async () => {
      const socket = await ctx.clients.connect(ctx.server.url, { transports });
      const echoed = waitForArgs(socket, "chat message");
      const answer = await socket.timeout(2000).emitWithAck("chat message", "x");
      assert.equal(answer, undefined);
      assert.deepEqual(await echoed, ["x"], "the acked event is still routed, without the ack");
    });

    test('ack = "{args}" answers with the client\'s own arguments', { timeout: 10_000 }, async () => {
      const socket = await ctx.clients.connect(ctx.server.url, { transports });
      assert.equal(await socket.timeout(2000).emitWithAck("echo", 1, "a"), 1);
      // All the arguments come back, in order, through a callback ack.
      const args = await new Promise((resolve, reject) => {
        socket.timeout(2000).emit("echo", 1, "a", { b: [true, null] }, (err, ...rest) =>
          err ? reject(err) : resolve(rest),
        );
      });
      assert.deepEqual(args, [1, "a", { b: [true, null] }]);
    });

    test("binary arguments come back in an ack", { timeout: 10_000 }, async () => {
      const socket = await ctx.clients.connect(ctx.server.url, { transports });
      const payload = bytes(1000, 5);
      const answer = await socket.timeout(2000).emitWithAck("echo", { blob: payload, n: 2 });
      assert.equal(answer.n, 2);
      assertSameBuffer(answer.blob, payload, "ack blob");
    });

    test("concurrent acks are matched to their own requests", { timeout: 10_000 }, async () => {
      const socket = await ctx.clients.connect(ctx.server.url, { transports });
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => socket.timeout(2000).emitWithAck("echo", `req-${i}`)),
      );
      assert.deepEqual(answers, Array.from({ length: 10 }, (_, i) => `req-${i}`));
    });
  });
}
