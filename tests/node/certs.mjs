// Certificates made at test time with `openssl` (never committed): a CA, and certificates for
// 127.0.0.1 it signs. A missing openssl is an error, never a skip (.ci/run installs it).

import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * In `dir`: the CA (made once, `ca.pem`) and a certificate for 127.0.0.1 with common name `cn`,
 * signed by it (`<name>.pem`, `<name>.key`). Returns their paths.
 */
export function makeCertificates(dir, { name = "redis", cn = "127.0.0.1" } = {}) {
  const openssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  if (!existsSync(join(dir, "ca.pem"))) {
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=switchboard test CA",
      "-keyout", "ca.key", "-out", "ca.pem");
  }
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`, "-keyout", `${name}.key.new`,
    "-out", `${name}.csr`);
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
  openssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
    "-days", "1", "-extfile", "san.ext", "-out", `${name}.pem.new`);
  // Each file replaced at once (renamed into place), as a certificate renewal does.
  execFileSync("mv", [`${name}.key.new`, `${name}.key`], { cwd: dir });
  execFileSync("mv", [`${name}.pem.new`, `${name}.pem`], { cwd: dir });
  return { ca: join(dir, "ca.pem"), cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}
