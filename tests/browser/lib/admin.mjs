/*
 * Speaks cometboxd's admin socket line protocol (docs/ADMIN.md: one JSON
 * object per line each way) for tests that need an operator action before
 * cometboxctl exists, and finds cometboxctl when it does.
 */
import net from 'node:net';

/* Sends one request, resolves with the answer object (10 s at most). */
export function adminRequest(socketPath, cmd, args = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`admin ${cmd}: no answer in 10 s`)); }, 10000);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(Object.assign({ version: 1, id: 1, cmd }, args)) + '\n'));
    sock.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        sock.end();
        try { resolve(JSON.parse(buf.slice(0, nl))); } catch (e) { reject(new Error(`admin ${cmd}: bad answer ${buf}`)); }
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}
