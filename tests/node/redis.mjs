// Debian's redis-server for the cluster tests: started on a given port in a temp dir, without
// persistence — or, with `tls`, on a TLS port only, its certificate signed by a CA made here
// with `openssl` (`ca` is that CA's file, for SSL_CERT_FILE). A missing redis-server or
// openssl is an error, never a skip (.ci/run installs them).

import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { makeCertificates } from "./certs.mjs";

/** Debian's redis-server on `port`, in a temp dir, without persistence; `tls`: TLS only. */
export async function startRedis(port, { tls = false } = {}) {
  for (const [tool, pkg] of [["redis-server", "redis-server"], ...(tls ? [["openssl", "openssl"]] : [])]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      throw new Error(`${tool} is not installed: apt-get install -y ${pkg} (.ci/run does)`);
    }
  }
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
  await new Promise((resolve, reject) => {
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
  child.stdout.resume();
  child.stderr.resume();
  process.once("exit", () => child.kill("SIGKILL"));
  return {
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

