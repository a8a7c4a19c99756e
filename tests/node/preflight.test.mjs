// `npm test` stops at once, with one message, when the switchboard binary is missing; the
// binary is found through SWITCHBOARD_BIN or cargo's target directory (CARGO_TARGET_DIR).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";

import { repoRoot, target } from "./harness.mjs";

const preflight = (env) =>
  spawnSync(process.execPath, [join(repoRoot, "tests", "node", "preflight.mjs")], {
    env: { ...process.env, SWITCHBOARD_BIN: "", CARGO_TARGET_DIR: "", ...env },
    encoding: "utf8",
  });

describe("npm test's preflight", { skip: target === "reference" && "switchboard only" }, () => {
  it("passes when the binary is built", () => {
    const run = preflight({ SWITCHBOARD_BIN: process.env.SWITCHBOARD_BIN ?? "" });
    assert.equal(run.status, 0, run.stderr);
  });

  it("stops with one line naming where it looked: SWITCHBOARD_BIN", () => {
    const run = preflight({ SWITCHBOARD_BIN: "/nonexistent/switchboard" });
    assert.equal(run.status, 1);
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
    assert.match(run.stderr, /not found at \/nonexistent\/switchboard: build it first/);
  });

  it("looks in CARGO_TARGET_DIR", () => {
    const run = preflight({ CARGO_TARGET_DIR: "/nonexistent-target" });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /not found at \/nonexistent-target\/debug\/switchboard/);
  });
});
