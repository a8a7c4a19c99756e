// examples/admin-ui: the Socket.IO Admin UI (@socket.io/admin-ui's own pages, served by
// switchboard at /admin-ui/) logs in and shows this server's sockets and rooms, in Chromium.
// The UI names a font CDN and an icon CDN: those requests are aborted (the test runs
// offline); everything else it loads comes from switchboard.
import { describe } from "node:test";
import assert from "node:assert/strict";
import bcrypt from "bcryptjs";
import { browserTest, evaluateWithin, useBrowser, waitForState, WAIT_MS } from "./browser.mjs";

const config = "examples/admin-ui/routes.toml";
const env = { ADMIN_UI_PASSWORD_HASH: bcrypt.hashSync("admin-ui-test", 4) };
const CDNS = ["fonts.googleapis.com", "cdn.jsdelivr.net", "fonts.gstatic.com"];

describe("admin UI example", () => {
  useBrowser();

  browserTest("the UI logs in and lists the chat's sockets and rooms", async (s) => {
    const server = await s.server({ config, env });
    const chat = await s.open("/", "a chat page (in room lobby)");
    await waitForState(chat, "connected");
    const id = await evaluateWithin(chat, "a second socket connects and joins lobby", async () => {
      const socket = io();
      await new Promise((resolve) => socket.on("connect", resolve));
      await socket.emitWithAck("enter", "lobby");
      return socket.id;
    });

    const ui = await s.open("/admin-ui/", "the admin UI, logged in", { foreign: CDNS });
    await ui.getByLabel("Server URL").fill(server.url);
    await ui.getByLabel("Username").fill("admin");
    await ui.getByLabel("Password").fill("admin-ui-test");
    await ui.getByRole("button", { name: /connect/i }).click();

    // Logged in: the status chip says so, and the connection dialog goes.
    await ui.getByText(/^\s*connected\s*$/i).first().waitFor({ state: "attached" });
    await ui.getByLabel("Password").waitFor({ state: "hidden" });

    // The sockets page lists the chat page's extra socket; the rooms page lists "lobby".
    await ui.evaluate(() => (location.hash = "#/sockets/"));
    await ui.getByText(id, { exact: false }).first().waitFor({ timeout: WAIT_MS });
    await ui.evaluate(() => (location.hash = "#/rooms/"));
    const lobby = ui.getByRole("row").filter({ hasText: "lobby" });
    await lobby.waitFor({ timeout: WAIT_MS });
    assert.match(await lobby.textContent(), /lobby\s*public\s*1/i);
  });
});
