/*
 * cometbox.mjs: the ES module face of cometbox.js, for browsers.
 * Importing cometbox.js for its side effect defines globalThis.cometbox
 * (cometbox.js is a classic script); this file re-exports it.
 */
import './cometbox.js';

const cometbox = globalThis.cometbox;

export default cometbox;
export const subscribe = cometbox.subscribe;
export const init = cometbox.init;
export const stop = cometbox.stop;
export const version = cometbox.version;
