// Typed events (examples/typed): an event's `schema` checks its arguments on arrival — an
// invalid one gets an error ack and reaches nobody — and `switchboard types` writes
// TypeScript interfaces that `tsc` checks a socket.io-client program against (both ways:
// right calls compile, wrong ones are errors), and an AsyncAPI 3 document.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { repoRoot, startRepoServer, switchboardBinary, target } from "./harness.mjs";
import { Clients, waitFor } from "./helpers.mjs";

const config = "examples/typed/routes.toml";

function switchboard(...args) {
  const run = spawnSync(switchboardBinary(), ["--config", join(repoRoot, config), ...args], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  return run.stdout;
}

describe("typed events", { skip: target === "reference" && "switchboard only" }, () => {
  let server, dir;
  const clients = new Clients();

  before(async () => {
    server = await startRepoServer({ config });
    // Inside the repository (test-artifacts/ is ignored by git), so that the program finds
    // socket.io-client in node_modules as any app would.
    await mkdir(join(repoRoot, "test-artifacts"), { recursive: true });
    dir = await mkdtemp(join(repoRoot, "test-artifacts", "types-"));
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("arguments that break the schema get an error ack and reach nobody", async () => {
    const a = await clients.connect(server.url);
    const b = await clients.connect(server.url);
    const got = [];
    b.on("chat message", (text) => got.push(text));
    const refused = await a.emitWithAck("chat message", "x".repeat(501));
    assert.equal(refused.error, "invalid arguments");
    assert.match(refused.detail, /^\/0: /);
    const badRoom = await a.emitWithAck("join", { room: "Not A Room!" });
    assert.equal(badRoom.error, "invalid arguments");
    assert.equal(await a.emitWithAck("join", { room: "lobby" }), "joined lobby");
    // A valid message after the refused one: once it arrives, the refused one would have.
    const next = waitFor(b, "chat message");
    a.emit("chat message", "hello");
    assert.equal(await next, "hello");
    assert.deepEqual(got, ["hello"]);
  });

  test("the TypeScript interfaces type a socket.io-client program", async () => {
    await writeFile(join(dir, "events.ts"), switchboard("types"));
    await writeFile(
      join(dir, "client.ts"),
      `import { io, type Socket } from "socket.io-client";
import type { ClientToServerEvents, ServerToClientEvents } from "./events";

const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io("http://localhost:3000");
socket.on("chat message", (text) => { const upper: string = text.toUpperCase(); void upper; });
socket.on("room message", (m) => { const room: string = m.room; const urgent: boolean | undefined = m.urgent; void room; void urgent; });
socket.emit("chat message", "hi");
socket.emit("room message", { room: "lobby", text: "hi" });
socket.emit("join", { room: "lobby" }, (answer) => { void answer; });
export async function joined(): Promise<unknown> { return socket.emitWithAck("join", { room: "lobby" }); }
// @ts-expect-error a number is no text
socket.emit("chat message", 42);
// @ts-expect-error a room message needs its text
socket.emit("room message", { room: "lobby" });
// @ts-expect-error no such event
socket.emit("shout", "hi");
// @ts-expect-error the server sends no such event
socket.on("shout", () => {});
`,
    );
    await writeFile(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: "es2022",
          module: "esnext",
          moduleResolution: "bundler",
          skipLibCheck: true,
        },
        files: ["client.ts"],
      }),
    );
    const tsc = spawnSync(join(repoRoot, "node_modules/.bin/tsc"), ["-p", dir], { encoding: "utf8" });
    assert.equal(tsc.status, 0, `tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  });

  test("explain tells whether an event's arguments satisfy its schema", () => {
    assert.match(switchboard("explain", "/", "chat message", "[12]"), /refused by its schema `schemas\/chat-message.json` \(\/0: 12 is not of type "string"\)/);
    assert.match(switchboard("explain", "/", "chat message", '["hi"]'), /the arguments satisfy its schema/);
  });

  test("the AsyncAPI document names each event and its schema", async () => {
    const doc = JSON.parse(switchboard("types", "--format", "asyncapi"));
    assert.equal(doc.asyncapi, "3.0.0");
    const schema = JSON.parse(await readFile(join(repoRoot, "examples/typed/schemas/chat-message.json"), "utf8"));
    assert.deepEqual(doc.channels.root.messages.chat_message.payload, schema);
    assert.equal(doc.channels.root.address, "/");
    assert.equal(doc.operations.root_receive_join.action, "receive");
  });
});
