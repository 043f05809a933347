// Headless Chromium (Debian's) logs in on the web page, sends a message a telnet user receives,
// and shows the telnet user's answer. Driven by tests/real_clients.rs, which plays the telnet side.
// Usage: node browser.mjs URL SCREENSHOT
import { launch, step } from "./chromium.mjs";

const [url, screenshot] = process.argv.slice(2);

const browser = await launch();
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const outside = [];
  page.on("request", (request) => {
    if (!request.url().startsWith(new URL(url).origin) && !request.url().startsWith("data:")) outside.push(request.url());
  });
  // The page asks for the user list once, then follows the login and logout lines.
  let userlists = 0;
  page.on("websocket", (ws) => ws.on("framesent", (frame) => { if (frame.payload === "/userlist") userlists++; }));
  const dialogs = [];
  page.on("dialog", (dialog) => { dialogs.push(dialog.message()); dialog.dismiss(); });

  await page.goto(url);
  await page.locator("#state.online").waitFor();
  step("connected");

  await page.fill("#name", "webuser");
  await page.click("#login");
  await page.locator("#chat-panel").waitFor({ state: "visible" });
  await page.locator("#users li", { hasText: "tuser" }).waitFor();
  step("logged in, tuser listed");

  await page.fill("#text", "hello from chromium");
  await page.press("#text", "Enter");
  step("sent");

  await page.locator("#log li", { hasText: "hello back from telnet" }).waitFor();
  step("answer shown");
  await page.locator("#log li", { hasText: "<img src=x onerror=alert(1)>" }).waitFor();
  const images = await page.locator("#log img").count();
  if (images !== 0 || dialogs.length !== 0) throw new Error(`markup from a user was interpreted: ${images} img, dialogs ${dialogs}`);
  step("markup shown as text");
  await page.locator("#users li", { hasText: "late" }).waitFor();
  step("a later login listed");

  // Pick the telnet user as target: a private message.
  await page.selectOption("#target", "tuser");
  await page.fill("#text", "just for you");
  await page.press("#text", "Enter");
  await page.locator("#log li", { hasText: "[webuser][->][tuser]: just for you" }).waitFor();
  step("private message");
  await page.locator("#users li", { hasText: "late" }).waitFor({ state: "detached" });
  step("a logout unlisted");
  if (userlists !== 1) throw new Error(`the page asked for the user list ${userlists} times`);

  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  if (outside.length) throw new Error("requests to another host: " + outside.join(", "));

  await page.click("#logout");
  await page.locator("#login-panel").waitFor({ state: "visible" });
  step("logged out");
  console.log("OK");
} finally {
  await browser.close();
}
