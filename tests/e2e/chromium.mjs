// Debian's Chromium, headless, as every browser script here starts it (CHROMIUM overrides the
// path), and the `step:` lines they print for tests/real_clients.rs.
import { chromium } from "playwright-core";

export const step = (what) => console.log("step: " + what);

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-quic",
    ],
    timeout: 30000,
  });
}
