// Debian's redis-server for the cluster tests: started on a free port (or a given one) in a temp
// dir, without persistence — or, with `tls`, on a TLS port only, its certificate signed by a CA
// made here with `openssl` (`ca` is that CA's file, for SSL_CERT_FILE). A missing redis-server or
// openssl is an error, never a skip (.ci/run installs them).

import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { makeCertificates } from "./certs.mjs";
import { freePort } from "./cluster-helpers.mjs";

/** Attempts at a free port: one found free may be taken by another test's server before
 * redis-server binds it (redis-server cannot be told port 0 and say which it got). */
const ATTEMPTS = 5;

/**
 * Debian's redis-server in a temp dir, without persistence; `tls`: TLS only. On `port` when
 * given (a restart on the port of a stopped one); otherwise on a free port, another tried when
 * the one found is taken before redis-server binds it. `port` of the result says which.
 */
export async function startRedis({ port, tls = false } = {}) {
  for (const [tool, pkg] of [["redis-server", "redis-server"], ...(tls ? [["openssl", "openssl"]] : [])]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      throw new Error(`${tool} is not installed: apt-get install -y ${pkg} (.ci/run does)`);
    }
  }
  if (port !== undefined) {
    return startRedisOn(port, tls);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRedisOn(await freePort(), tls);
    } catch (e) {
      if (attempt === ATTEMPTS || !String(e.message).includes("Address already in use")) {
        throw e;
      }
    }
  }
}

async function startRedisOn(port, tls) {
  const dir = await mkdtemp(join(tmpdir(), "switchboard-redis-"));
  const certs = tls ? makeCertificates(dir) : undefined;
  const listen = tls
    ? ["--port", "0", "--tls-port", String(port), "--tls-cert-file", certs.cert, "--tls-key-file", certs.key,
        "--tls-ca-cert-file", certs.ca, "--tls-auth-clients", "no"]
    : ["--port", String(port)];
  const child = spawn(
    "redis-server",
    [...listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 10_000);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      out += chunk;
      if (out.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}):\n${out}`));
    });
  });
  try {
    await started;
  } catch (e) {
    // A failed attempt leaves nothing behind: no server still starting, no temp dir.
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  child.stdout.resume();
  child.stderr.resume();
  process.once("exit", () => child.kill("SIGKILL"));
  return {
    port,
    url: `${tls ? "rediss" : "redis"}://127.0.0.1:${port}`,
    ca: certs?.ca,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await new Promise((resolve) => child.once("exit", resolve));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

