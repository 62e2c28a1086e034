/*
 * The daemon, page server and browser that most e2e files share: started
 * before the file's tests and stopped after them. The test file keeps its own
 * variables (a test may replace the daemon, e.g. after a restart), so it
 * passes one function that sets them and one that reads them back.
 */
import test from 'node:test';
import { startDaemon } from './daemon.mjs';
import { launchBrowser, startPageServer } from './browser.mjs';

export function useStack(daemonOptions, set, get, { pages = true } = {}) {
  test.before(async () => {
    const s = { daemon: await startDaemon(daemonOptions) };
    if (pages) s.pages = await startPageServer();
    s.browser = await launchBrowser();
    set(s);
  });
  test.after(async () => {
    const s = get();
    if (s.browser) await s.browser.close();
    if (s.pages) await s.pages.close();
    if (s.daemon) await s.daemon.stop();
  });
}
