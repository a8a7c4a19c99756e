// Mints a token as a login system would, for trying the notifications example:
//   node examples/notifications/mint-token.mjs <user id> [display name] [minutes valid]
// It signs HS256 with NOTIFY_JWT_SECRET (the server's secret_env) and prints the page's URL.
import { createHmac } from "node:crypto";

const [sub, name = sub, minutes = "60"] = process.argv.slice(2);
const secret = process.env.NOTIFY_JWT_SECRET;
if (!sub || !secret) {
  console.error("usage: NOTIFY_JWT_SECRET=… node mint-token.mjs <user id> [display name] [minutes valid]");
  process.exit(2);
}
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const exp = Math.floor(Date.now() / 1000) + Number(minutes) * 60;
const head = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, name, exp })}`;
const token = `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
console.log(`http://localhost:3000/?token=${token}`);
