// Headless Chromium (Debian's) on a phone-sized screen (375 x 667 CSS pixels): the page must fit
// its width, the composer and Send button must be on screen and work, the user list must be
// reachable, and `/userlist` typed in the composer must show the list in the log. Driven by
// tests/real_clients.rs, which plays a telnet user (`tuser`, logged in before this starts).
// Prints `measure: {...}` lines with what it found, then OK. Screenshots: SCREENSHOT at the end,
// and SCREENSHOT with `-users` before its extension with the user list open.
// Usage: node phone.mjs URL SCREENSHOT
import { launch, step } from "./chromium.mjs";

const [url, screenshot] = process.argv.slice(2);
const WIDTH = 375;

const browser = await launch();
try {
  const context = await browser.newContext({
    viewport: { width: WIDTH, height: 667 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const blocked = [];
  page.on("console", (message) => {
    if (/Content.Security.Policy/i.test(message.text())) blocked.push(message.text());
  });

  // Everything the checks need to know about the layout, measured in the page.
  const measure = () => page.evaluate(() => {
    const box = (selector) => {
      const element = document.querySelector(selector);
      if (!element || element.offsetParent === null) return null;
      const r = element.getBoundingClientRect();
      return { left: Math.round(r.left), top: Math.round(r.top), right: Math.round(r.right), bottom: Math.round(r.bottom) };
    };
    return {
      scrollWidth: document.documentElement.scrollWidth,
      bodyScrollWidth: document.body.scrollWidth,
      innerWidth: window.innerWidth,
      innerHeight: window.innerHeight,
      send: box("#send"),
      text: box("#text"),
      login: box("#login"),
      usersToggle: box("#users-toggle"),
      users: box("#users"),
    };
  });
  // The element is entirely inside the viewport.
  const onScreen = (m, what) => {
    const b = m[what];
    if (!b) throw new Error(`${what} is not shown: ${JSON.stringify(m)}`);
    if (b.left < 0 || b.top < 0 || b.right > m.innerWidth || b.bottom > m.innerHeight) {
      throw new Error(`${what} is off-screen: ${JSON.stringify(m)}`);
    }
  };
  const fits = (m, when) => {
    console.log(`measure: ${when} ${JSON.stringify(m)}`);
    if (m.scrollWidth > WIDTH || m.bodyScrollWidth > WIDTH) {
      throw new Error(`${when}: the page is ${m.scrollWidth} px wide on a ${WIDTH} px screen`);
    }
  };

  await page.goto(url);
  await page.locator("#state.online").waitFor();
  // The server's greeting is shown before login.
  await page.locator("#motd", { hasText: "Type help for the commands." }).waitFor();
  step("connected, greeted");
  let m = await measure();
  fits(m, "login");
  onScreen(m, "login");

  await page.fill("#name", "phoneuser");
  await page.locator("#login").tap();
  await page.locator("#chat-panel").waitFor({ state: "visible" });
  await page.locator("#log li", { hasText: "[INFO] - Welcome to the web chat." }).waitFor();
  step("logged in, the greeting in the log");
  m = await measure();
  fits(m, "chat");
  onScreen(m, "send");
  onScreen(m, "text");

  // Send is reachable and works by touch.
  await page.fill("#text", "hello from a phone");
  await page.locator("#send").tap();
  await page.locator("#log li", { hasText: "[phoneuser]: hello from a phone" }).waitFor();
  step("sent with the Send button");

  // The user list: behind a toggle on a narrow screen, and it lists the telnet user.
  onScreen(m, "usersToggle");
  await page.locator("#users-toggle").tap();
  await page.locator("#users li", { hasText: "tuser" }).waitFor({ state: "visible" });
  m = await measure();
  fits(m, "users open");
  onScreen(m, "users");
  onScreen(m, "send");
  step("user list opened");
  if (screenshot) await page.screenshot({ path: screenshot.replace(/(\.png)?$/, "-users.png") });
  // Picking a user targets them and closes the list again.
  await page.locator("#users li", { hasText: "tuser" }).tap();
  if ((await page.inputValue("#target")) !== "tuser") throw new Error("tapping a user did not pick them");
  await page.locator("#users").waitFor({ state: "hidden" });
  await page.selectOption("#target", "");
  step("a user picked from the list");

  // `/userlist` typed by hand shows the list in the log (the page's own request does not).
  const before = await page.locator("#log li", { hasText: "['" }).count();
  if (before !== 0) throw new Error(`the page's own /userlist showed ${before} line(s) in the log`);
  await page.fill("#text", "/userlist");
  await page.press("#text", "Enter");
  await page.locator("#log li", { hasText: "['tuser', 'phoneuser']" }).waitFor();
  step("/userlist shown in the log");
  // A long unbroken line wraps rather than widening the page.
  await page.fill("#text", "x".repeat(300));
  await page.locator("#send").tap();
  await page.locator("#log li", { hasText: "xxxxxxxxxx" }).waitFor();
  m = await measure();
  fits(m, "long line");
  onScreen(m, "send");
  step("a long line wraps");
  if (screenshot) await page.screenshot({ path: screenshot });

  if (blocked.length) throw new Error("the Content Security Policy blocked something: " + blocked.join("; "));
  console.log("OK");
} finally {
  await browser.close();
}
