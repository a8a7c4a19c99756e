// Test harness: starts one server process per test and hands back its URL.
//
//   const server = await startServer({ routes: `...routes.toml text...` });
//   server.url      -> "http://127.0.0.1:PORT"
//   server.port     -> PORT
//   await server.restart()  // SIGKILL, then start again on the SAME port
//   await server.restart({ whileDown: async () => {...} })  // ...running this in between
//   await server.stop()     // SIGTERM (SIGKILL after a grace period)
//
//   const server = await startRepoServer({ config: "routes.toml" });
//     The switchboard binary with a routes file of the repository, as README's run command
//     starts it: working directory = the repository root (so the static folders and
//     node_modules/socket.io-client resolve as for a user), `--config <config> --listen
//     127.0.0.1:0`. Same handle as above. Used by the browser tests (tests/browser/);
//     always the switchboard binary, whatever SWITCHBOARD_TEST_TARGET says.
//
// Target selection (environment):
//   default                            -> the switchboard binary: $SWITCHBOARD_BIN, else
//                                         debug/switchboard in cargo's target directory
//                                         ($CARGO_TARGET_DIR, or as `cargo metadata` says)
//   SWITCHBOARD_TEST_TARGET=reference  -> tests/node/reference-server.mjs, a small
//                                         server built on the real `socket.io` package that
//                                         reads the same routes.toml and speaks the same CLI.
//
// Both targets are started the same way:
//   <cmd> --config <tmp>/routes.toml --listen 127.0.0.1:<port|0>
// and must print `... listening on http://HOST:PORT` on stdout once bound.

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "..", "..");

const LISTEN_RE = /listening on (https?):\/\/([\d.]+):(\d+)/;
const START_TIMEOUT_MS = Number(process.env.SWITCHBOARD_START_TIMEOUT_MS ?? 10_000);
const STOP_GRACE_MS = 3_000;
const MAX_LOG_CHARS = 64 * 1024;

export const target = process.env.SWITCHBOARD_TEST_TARGET ?? "switchboard";

/** Every child we started, so that a crashing test run never leaves servers behind. */
const live = new Set();
process.on("exit", () => {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
});

function command() {
  if (target === "reference") {
    return { cmd: process.execPath, pre: [join(here, "reference-server.mjs")] };
  }
  if (target !== "switchboard") {
    throw new Error(
      `SWITCHBOARD_TEST_TARGET=${target} is not known (use "reference" or leave it unset)`,
    );
  }
  return switchboardCommand();
}

/** Cargo's target directory: $CARGO_TARGET_DIR, or as `cargo metadata` reports it. */
function cargoTargetDir() {
  if (process.env.CARGO_TARGET_DIR) return resolve(repoRoot, process.env.CARGO_TARGET_DIR);
  const meta = spawnSync("cargo", ["metadata", "--format-version", "1", "--no-deps", "--offline"], {
    cwd: repoRoot,
    encoding: "utf8",
  });
  if (meta.status === 0) {
    try {
      return JSON.parse(meta.stdout).target_directory;
    } catch {
      // fall through to the default
    }
  }
  return join(repoRoot, "target");
}

let binary;
/**
 * The switchboard binary the suite runs, or an Error saying how to get it: $SWITCHBOARD_BIN,
 * else `debug/switchboard` in cargo's target directory. Found once per process.
 */
export function switchboardBinary() {
  binary ??= (() => {
    const bin = process.env.SWITCHBOARD_BIN || join(cargoTargetDir(), "debug", "switchboard");
    if (existsSync(bin)) return bin;
    return new Error(
      `switchboard binary not found at ${bin}: build it first (cargo build) or point ` +
        `SWITCHBOARD_BIN at it; SWITCHBOARD_TEST_TARGET=reference runs the suite against ` +
        `the Node reference server instead`,
    );
  })();
  return binary;
}

function switchboardCommand() {
  const bin = switchboardBinary();
  if (bin instanceof Error) throw bin;
  return { cmd: bin, pre: [] };
}

function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * Spawn one server process and resolve once it printed its listening line.
 * Rejects (with the process output) if it exits first or takes too long.
 */
function spawnServer({ cmd, pre, cwd, env }, configPath, listen, log) {
  const args = [...pre, "--config", configPath, "--listen", listen];
  const child = spawn(cmd, args, {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { RUST_BACKTRACE: "1", ...process.env, ...env },
  });
  live.add(child);
  child.once("exit", () => live.delete(child));

  return new Promise((resolvePromise, reject) => {
    let stdoutBuf = "";
    let settled = false;
    const settle = (fn, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn(value);
    };
    const fail = (why) => {
      child.kill("SIGKILL");
      settle(
        reject,
        new Error(`${why}\ncommand: ${cmd} ${args.join(" ")}\n--- server output ---\n${log.text()}`),
      );
    };
    const timer = setTimeout(
      () => fail(`server did not print its listening line within ${START_TIMEOUT_MS} ms`),
      START_TIMEOUT_MS,
    );

    // Keep draining both pipes for the whole life of the process: a full pipe
    // would block the server.
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => log.add(chunk));
    child.stdout.on("data", (chunk) => {
      log.add(chunk);
      if (settled) return;
      stdoutBuf += chunk;
      let nl;
      while ((nl = stdoutBuf.indexOf("\n")) !== -1) {
        const line = stdoutBuf.slice(0, nl);
        stdoutBuf = stdoutBuf.slice(nl + 1);
        const m = LISTEN_RE.exec(line);
        if (m) {
          settle(resolvePromise, { child, scheme: m[1], host: m[2], port: Number(m[3]) });
          return;
        }
      }
    });
    child.once("error", (err) => fail(`could not start server: ${err.message}`));
    // "close" (not "exit") so that everything the process printed is in the log.
    child.once("close", (code, signal) =>
      fail(`server exited before listening (code ${code}, signal ${signal})`),
    );
  });
}

function makeLog() {
  let text = "";
  return {
    add(chunk) {
      text += chunk;
      if (text.length > MAX_LOG_CHARS) text = text.slice(-MAX_LOG_CHARS);
    },
    text: () => text,
  };
}

/**
 * @param {{ routes: string, env?: Record<string, string> }} options routes.toml content, and
 *   environment variables for the server (e.g. a JWT secret named by `secret_env`)
 * @returns {Promise<ServerHandle>}
 */
export async function startServer({ routes, env }) {
  if (typeof routes !== "string") throw new TypeError("startServer needs { routes: <toml text> }");
  const how = { ...command(), env };
  const dir = await mkdtemp(join(tmpdir(), "switchboard-test-"));
  const configPath = join(dir, "routes.toml");
  await writeFile(configPath, routes);
  return launch(how, configPath, () => rm(dir, { recursive: true, force: true }));
}

/**
 * The switchboard binary with one of the repository's own routes files, started from the
 * repository root as README's run command does (on a free port instead of 3000).
 *
 * @param {{ config?: string, env?: Record<string, string> }} options the routes file, relative
 *   to the repository root, and environment variables for the server
 * @returns {Promise<ServerHandle>}
 */
export async function startRepoServer({ config = "routes.toml", env } = {}) {
  const configPath = resolve(repoRoot, config);
  if (!existsSync(configPath)) throw new Error(`startRepoServer: no routes file at ${configPath}`);
  return launch({ ...switchboardCommand(), cwd: repoRoot, env }, config, async () => {});
}

/**
 * @typedef {object} ServerHandle
 * @property {string} url        "http://127.0.0.1:PORT"
 * @property {number} port
 * @property {() => string} output  everything the server printed (last 64 KiB)
 * @property {(opts?: { whileDown?: () => Promise<void> }) => Promise<void>} restart
 *   SIGKILL, run `whileDown` (if given) while no server listens, start again on the same port
 * @property {() => Promise<void>} kill  SIGKILL, and stay dead
 * @property {() => Promise<void>} stop  SIGTERM (SIGKILL after a grace period)
 */

/** Start a server and wrap it in a {@link ServerHandle}; `cleanup` runs once it is stopped. */
async function launch(how, configPath, cleanup) {
  const log = makeLog();
  let proc;
  try {
    proc = await spawnServer(how, configPath, "127.0.0.1:0", log);
  } catch (err) {
    await cleanup();
    throw err;
  }
  const { scheme, host, port } = proc;
  let child = proc.child;
  let stopped = false;

  return {
    url: `${scheme}://${host}:${port}`,
    port,
    output: () => log.text(),
    /** Kill the server abruptly and start it again on the same port. */
    async restart({ whileDown } = {}) {
      if (stopped) throw new Error("restart() after stop()");
      child.kill("SIGKILL");
      await exited(child);
      log.add("\n--- restart ---\n");
      if (whileDown) await whileDown();
      const next = await spawnServer(how, configPath, `${host}:${port}`, log);
      if (next.port !== port) {
        next.child.kill("SIGKILL");
        throw new Error(`server restarted on port ${next.port}, expected ${port}`);
      }
      child = next.child;
    },
    /** Kill the server abruptly and leave it dead (a node dying); `stop()` still cleans up. */
    async kill() {
      child.kill("SIGKILL");
      await exited(child);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const grace = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
        await exited(child);
        clearTimeout(grace);
      }
      await cleanup();
    },
  };
}
