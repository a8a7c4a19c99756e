// examples/auth: namespace "/" requires auth { token: "123" }. The page sends `?token=` or
// what is typed into its Token field.
import { describe } from "node:test";
import assert from "node:assert/strict";
import {
  browserTest,
  chat,
  chatMessages,
  messageBox,
  sendButton,
  statusOf,
  useBrowser,
  waitForState,
} from "./browser.mjs";

const config = "examples/auth/routes.toml";

describe("auth example", () => {
  useBrowser();

  browserTest("a wrong token shows the connect_error message to the user", async (s) => {
    await s.server({ config });
    const page = await s.open("/?token=nope", "wrong token");
    await waitForState(page, "error");

    const alert = page.getByRole("alert");
    await alert.waitFor({ state: "visible" });
    assert.equal(await alert.textContent(), "Connection refused: unauthorized");
    assert.match(await statusOf(page).textContent(), /Error · unauthorized/);
    assert.equal(await sendButton(page).isDisabled(), true);
    // No retry after a refusal: still refused, nothing else happened.
    assert.equal(await statusOf(page).getAttribute("data-state"), "error");
    assert.deepEqual(await chatMessages(page), []);
  });

  browserTest("with the right token it chats", async (s) => {
    await s.server({ config });
    const a = await s.open("/?token=123", "token 123 (first)");
    await waitForState(a, "connected");
    const b = await s.open("/?token=123", "token 123 (second)");
    await waitForState(b, "connected");
    await chat(a, "hello with the right token", [a, b]);
    await chat(b, "and back", [a, b], { via: "button" });

    // The example's `connect` route told A that someone joined.
    assert.deepEqual(await chatMessages(a), ["someone joined", "hello with the right token", "and back"]);
    assert.deepEqual(await chatMessages(b), ["hello with the right token", "and back"]);
    assert.equal(await a.getByRole("alert").isVisible(), false);
  });

  browserTest("a refused user types the right token and gets in", async (s) => {
    await s.server({ config });
    const [other, page] = await s.openAll([
      ["/?token=123", "token 123"],
      ["/", "no token, then 123 typed in"],
    ]);
    await waitForState(other, "connected");

    // No token in the URL: the page asks for one instead of connecting.
    await waitForState(page, "idle");
    const token = page.getByRole("textbox", { name: "Token" });
    await token.fill("wrong");
    await page.getByRole("button", { name: "Connect" }).click();
    await waitForState(page, "error");
    assert.equal(await page.getByRole("alert").textContent(), "Connection refused: unauthorized");

    await token.fill("123");
    await token.press("Enter");
    await waitForState(page, "connected");
    assert.equal(await page.getByRole("alert").isVisible(), false, "the error is gone once connected");
    await messageBox(page).waitFor();
    await chat(page, "finally in", [page, other]);
  });
});
