// Run before the Node and browser suites (`npm test`): stops at once, with one message, when
// the switchboard binary they drive is missing — instead of every test failing on its own.

import { switchboardBinary, target } from "./harness.mjs";

if (target === "switchboard") {
  const bin = switchboardBinary();
  if (bin instanceof Error) {
    console.error(`npm test: ${bin.message}`);
    process.exit(1);
  }
}
