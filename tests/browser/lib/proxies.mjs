/*
 * Small loopback proxies the browser tests put between Chromium and
 * cometboxd: a TCP proxy that can cut or freeze connections, an HTTP proxy
 * that buffers response bodies (like nginx with proxy_buffering on), and an
 * HTTP proxy that passes plain requests but breaks WebSocket upgrades.
 */
import net from 'node:net';
import http from 'node:http';

/* TCP proxy to 127.0.0.1:targetPort. cut() resets every open connection;
 * freeze() keeps them open but forwards nothing more (a dead socket that
 * still looks open, as Safari leaves them after sleep). */
export async function startTcpProxy(targetPort) {
  const pairs = new Set();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    const up = net.connect(targetPort, '127.0.0.1');
    const pair = { client, up, frozen: false };
    pairs.add(pair);
    client.on('data', (b) => { if (!pair.frozen) up.write(b); });
    up.on('data', (b) => { if (!pair.frozen) client.write(b); });
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      up.destroy();
    };
    client.on('error', close);
    up.on('error', close);
    client.on('close', close);
    up.on('close', close);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get open() { return pairs.size; },
    get accepted() { return accepted; },
    setTarget(p) { targetPort = p; },
    cut() {
      const n = pairs.size;
      for (const p of [...pairs]) {
        pairs.delete(p);
        if (typeof p.client.resetAndDestroy === 'function') p.client.resetAndDestroy();
        else p.client.destroy();
        p.up.destroy();
      }
      return n;
    },
    freeze() {
      for (const p of pairs) p.frozen = true;
      return pairs.size;
    },
    close() {
      for (const p of [...pairs]) { p.client.destroy(); p.up.destroy(); }
      return new Promise((r) => server.close(r));
    }
  };
}

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer']);

/* HTTP proxy to 127.0.0.1:targetPort that sends response headers at once but
 * holds the body until `limit` bytes are buffered or the upstream answer
 * ends. Long-poll answers pass (they end); streams are held back. */
export async function startBufferingProxy(targetPort, limit = 65536) {
  const paths = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url);
    const headers = Object.assign({}, req.headers);
    for (const h of HOP) delete headers[h];
    const up = http.request({
      host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers
    }, (ur) => {
      const out = {};
      for (const [k, v] of Object.entries(ur.headers)) if (!HOP.has(k)) out[k] = v;
      res.writeHead(ur.statusCode, out);
      res.flushHeaders();
      let chunks = [];
      let size = 0;
      ur.on('data', (b) => {
        chunks.push(b);
        size += b.length;
        if (size >= limit) {
          res.write(Buffer.concat(chunks));
          chunks = [];
          size = 0;
        }
      });
      ur.on('end', () => { res.end(Buffer.concat(chunks)); });
      ur.on('error', () => res.destroy());
    });
    up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    paths,
    close: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); }
  };
}

/* HTTP proxy to 127.0.0.1:targetPort that passes plain requests through
 * (streamed, not buffered) and breaks WebSocket upgrades, as `mode` says:
 *   refuse  answers the upgrade itself with 400 Bad Request;
 *   strip   forwards it without Upgrade/Connection (nginx without
 *           `proxy_set_header Upgrade`): cometboxd's 426 goes back;
 *   drop    forwards it, passes the 101 head, then closes both sides;
 *   mute    forwards it, passes the 101 head, then passes nothing more.
 * `upgrades` counts the upgrade requests, `paths` the plain ones. */
export async function startUpgradeBreakingProxy(targetPort, mode) {
  const paths = [];
  const sockets = new Set();
  let upgrades = 0;
  const server = http.createServer((req, res) => {
    paths.push(req.url);
    const headers = Object.assign({}, req.headers);
    for (const h of HOP) delete headers[h];
    const up = http.request({
      host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers
    }, (ur) => {
      const out = {};
      for (const [k, v] of Object.entries(ur.headers)) if (!HOP.has(k)) out[k] = v;
      res.writeHead(ur.statusCode, out);
      res.flushHeaders();
      ur.pipe(res);
      ur.on('error', () => res.destroy());
    });
    up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  server.on('upgrade', (req, socket, head) => {
    upgrades++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    if (mode === 'refuse') {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n' +
        'Connection: close\r\n\r\nno upgrades');
      return;
    }
    if (mode === 'strip') {
      const headers = Object.assign({}, req.headers);
      for (const h of HOP) delete headers[h];
      const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers }, (ur) => {
        const chunks = [];
        ur.on('data', (b) => chunks.push(b));
        ur.on('end', () => {
          const body = Buffer.concat(chunks);
          let head = `HTTP/1.1 ${ur.statusCode} ${ur.statusMessage}\r\n`;
          for (const [k, v] of Object.entries(ur.headers)) {
            if (!HOP.has(k) && k !== 'content-length') head += `${k}: ${v}\r\n`;
          }
          head += `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
          socket.end(Buffer.concat([Buffer.from(head), body]));
        });
      });
      up.on('error', () => socket.destroy());
      up.end();
      return;
    }
    // drop, mute: the real handshake, then nothing
    const up = net.connect(targetPort, '127.0.0.1');
    sockets.add(up);
    up.on('close', () => sockets.delete(up));
    let lines = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    up.write(lines + '\r\n');
    if (head && head.length) up.write(head);
    let buf = Buffer.alloc(0);
    let passed = false;
    up.on('data', (b) => {
      if (passed) return; // mute: the frames go nowhere
      buf = Buffer.concat([buf, b]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      passed = true;
      socket.write(buf.subarray(0, end + 4));
      if (mode === 'drop') {
        socket.destroy();
        up.destroy();
      }
    });
    up.on('error', () => socket.destroy());
    socket.on('close', () => up.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    paths,
    get upgrades() { return upgrades; },
    close: () => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    }
  };
}
