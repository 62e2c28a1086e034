/*
 * Small loopback proxies the browser tests put between Chromium and
 * cometboxd: a TCP proxy that can cut or freeze connections, and an HTTP
 * proxy that buffers response bodies (like nginx with proxy_buffering on).
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
