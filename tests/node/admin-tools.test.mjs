// `plan`, `explain` and `trace` against a running server, through its admin port: what a
// reload to a new file would do to the routes in force, an explanation against them, and the
// next occurrences of one event explained as they are routed — never on the public port.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { eventually } from "./cluster-helpers.mjs";
import { startServer, switchboardBinary, target } from "./harness.mjs";
import { Clients } from "./helpers.mjs";

describe("tools against a running server", { skip: target === "reference" && "switchboard only" }, () => {
  let server, admin, dir;
  const clients = new Clients();

  before(async () => {
    // The server picks its admin port and says which: a port chosen here and bound later
    // could be taken meanwhile by another test file's server.
    server = await startServer({
      routes: `
[server]
admin_listen = "127.0.0.1:0"

[namespaces."/".events]
say = "io"
enter = [ { join = "{0}" }, { ack = "in {0}" } ]

[namespaces."/other".events]
x = "io"
`,
    });
    const said = /Serving \/metrics, \/healthz and \/readyz.*addr=(127\.0\.0\.1:\d+)/;
    await eventually(async () => said.test(server.output()), { label: "the admin port in the log" });
    admin = `http://${said.exec(server.output())[1]}`;
    dir = await mkdtemp(join(tmpdir(), "switchboard-tools-"));
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const run = (...args) => spawnSync(switchboardBinary(), args, { encoding: "utf8", timeout: 30_000 });

  test("plan: a reload that drops a namespace, said and exit 2", async () => {
    const next = join(dir, "next.toml");
    await writeFile(next, `[namespaces."/".events]\nsay = "broadcast"\nshout = "io"\n`);
    const plan = run("plan", next, "--server", admin);
    assert.equal(plan.status, 2, plan.stderr);
    assert.match(plan.stdout, /~ \/ event `say` changed/);
    assert.match(plan.stdout, /~ \/ event `shout` added/);
    assert.match(plan.stdout, /~ \/ event `enter` removed/);
    assert.match(plan.stdout, /the sockets of \/other are disconnected/);
    assert.match(plan.stdout, /config_hash [0-9a-f]{64}/);
    const invalid = join(dir, "bad.toml");
    await writeFile(invalid, `[namespaces."/".events]\nsay = "everyone"\n`);
    const refused = run("plan", invalid, "--server", admin);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /unknown target `everyone`/);
  });

  test("explain against the routes in force", () => {
    const out = run("explain", "/", "enter", '["lobby"]', "--server", admin);
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /matched by its route `enter`/);
    assert.match(out.stdout, /lobby/);
  });

  test("trace: the next event of a name, with its sender's rooms", async () => {
    const a = await clients.connect(server.url);
    assert.equal(await a.emitWithAck("enter", "lobby"), "in lobby");
    const tracer = spawn(switchboardBinary(), ["trace", "/", "say", "--server", admin, "--count", "1", "--seconds", "20"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    tracer.stdout.on("data", (d) => (out += d));
    const done = new Promise((resolve) => tracer.on("exit", resolve));
    // The trace starts once the server has the request: send until it has taken one.
    const sender = setInterval(() => a.emit("say", "traced"), 50);
    const code = await done;
    clearInterval(sender);
    assert.equal(code, 0);
    assert.match(out, new RegExp(`socket ${a.id}:`));
    assert.match(out, /event `say` in \/ with \["traced"\]/);
    assert.match(out, /matched by its route `say`/);
  });

  test("a body over 1 MiB, a GET or a question that is not one is refused, and the next call answered", async () => {
    const big = await fetch(`${admin}/plan`, { method: "POST", body: "#".repeat(1024 * 1024 + 1) });
    assert.equal(big.status, 413);
    assert.match(await big.text(), /over 1 MiB/);
    const get = await fetch(`${admin}/explain`);
    assert.equal(get.status, 405);
    const bad = await fetch(`${admin}/explain`, { method: "POST", body: "not json" });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /not JSON/);
    const ok = await fetch(`${admin}/explain`, {
      method: "POST",
      body: JSON.stringify({ namespace: "/", event: "say", args: ["hi"] }),
    });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /matched by its route `say`/);
  });

  test("the tools are not on the public port", async () => {
    for (const path of ["/plan", "/explain", "/trace"]) {
      const res = await fetch(`${server.url}${path}`, { method: "POST", body: "{}" });
      assert.equal(res.status, 404, path);
    }
  });
});
