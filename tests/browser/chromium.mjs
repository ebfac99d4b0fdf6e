// Headless Chromium for the browser tests: Debian's (never a downloaded one), with a
// fresh profile each launch (playwright gives each launch a new --user-data-dir).
import { chromium } from 'playwright-core';

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export function launchChromium(executablePath) {
  return chromium.launch({ executablePath, headless: true, args: FLAGS, timeout: 30_000 });
}
