// Headless Chromium (Debian's) logged in on the web page while its server's process is killed
// (the WebSocket is handed to the next process: the page notices nothing) and then stopped and
// started again (the WebSocket closes: the page reconnects quietly, under the same name, with no
// flash of the login panel). Driven by tests/real_clients.rs, which plays a telnet user and does
// the killing; it says what happened on the telnet side.
// Usage: node reconnect.mjs URL
import { launch, step } from "./chromium.mjs";

const [url] = process.argv.slice(2);

const browser = await launch();
try {
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(20000);
  let sockets = 0;
  // How many WebSockets the page had opened when the line sent after the kill arrived: counted
  // then, since the test goes on to stop the server as soon as its telnet user sees that line.
  let openedByKillLine;
  page.on("websocket", (ws) => {
    sockets++;
    console.log("websocket " + sockets + " opened");
    ws.on("framesent", (f) => console.log("sent: " + f.payload));
    ws.on("framereceived", (f) => {
      const text = String(f.payload);
      console.log("received: " + text.slice(0, 120));
      if (openedByKillLine === undefined && text.includes("after the kill")) openedByKillLine = sockets;
    });
    ws.on("close", () => console.log("websocket closed"));
  });
  page.on("console", (m) => console.log("console: " + m.text()));
  await page.goto(url);
  await page.locator("#state.online").waitFor();
  await page.fill("#name", "webuser");
  await page.click("#login");
  await page.locator("#chat-panel").waitFor({ state: "visible" });
  // From here on, count every time the login panel shows.
  await page.evaluate(() => {
    window.panelShown = 0;
    const panel = document.getElementById("login-panel");
    new MutationObserver(() => { if (!panel.hidden) window.panelShown++; })
      .observe(panel, { attributes: true, attributeFilter: ["hidden"] });
  });
  step("logged in");

  // The test kills the server's process; a line sent after that still arrives, on the same socket.
  await page.locator("#log li", { hasText: "after the kill" }).waitFor();
  if (openedByKillLine !== 1) {
    throw new Error(`the page opened ${openedByKillLine} WebSockets across a kill -9`);
  }
  step("the kill went unnoticed");

  // The test stops and starts the server: the socket closes, and the page comes back by itself.
  await page.locator("#log li.notice", { hasText: "reconnected" }).waitFor({ timeout: 30000 });
  await page.locator("#log li", { hasText: "after the restart" }).waitFor();
  const shown = await page.evaluate(() => window.panelShown);
  if (shown !== 0) throw new Error(`the login panel showed ${shown} times while reconnecting`);
  const me = await page.locator("#me").textContent();
  if (!me.includes("webuser")) throw new Error(`logged in as ${me}`);
  step("reconnected quietly as webuser");
  console.log("OK");
} finally {
  await browser.close();
}
