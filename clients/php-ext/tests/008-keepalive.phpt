--TEST--
cometbox: one kept-alive connection, replaced when the server closed it
--EXTENSIONS--
cometbox
--SKIPIF--
<?php require __DIR__ . '/cometbox.inc'; skip_without('COMETBOX_URL', 'COMETBOX_BROWSER_URL', 'COMETBOX_FAKE_SERVER'); ?>
--FILE--
<?php
require __DIR__ . '/cometbox.inc';

/** Established connections of this network namespace whose far end is $url's port. */
function established_to(string $url): int
{
    $port = strtoupper(sprintf('%04x', (int) substr($url, strrpos($url, ':') + 1)));
    $n = 0;
    foreach (['/proc/net/tcp', '/proc/net/tcp6'] as $f) {
        foreach (array_slice(file($f) ?: [], 1) as $line) {
            $c = preg_split('/\s+/', trim($line));
            if (substr($c[2], -5) === ":$port" && $c[3] === '01') {
                $n++;
            }
        }
    }
    return $n;
}

$url = env_url('COMETBOX_URL');
$browser = env_url('COMETBOX_BROWSER_URL');
$q = queue('ka');
$ids = [];
for ($i = 0; $i < 5; $i++) {
    $ids[] = cometbox_publish($q, "m$i", $url);
}
echo 'connections after 5 publishes: ', established_to($url), "\n";
$ids = array_merge($ids, cometbox_publish_many([['queue' => $q, 'data' => 'm5'], ['queue' => $q, 'data' => 'm6']], $url));
echo 'connections after a batch: ', established_to($url), "\n";
var_dump(array_column(poll($browser, $q), 'id') === $ids);

// An answer with "Connection: close" is not kept.
$f = fake_server([answer(200, '{"ids":[3]}')]);
var_dump(cometbox_publish('a', 'x', $f[0]));
echo 'kept after Connection: close: ', established_to($f[0]), "\n";
fake_stop($f);

// The server closes the kept connection when the next request comes, without
// an answer: the request goes again on a new connection, once.
$f = fake_server([
    ['raw' => "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ids\":[1]}", 'drop_next' => true],
    ['raw' => "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ids\":[2]}", 'drop_next' => true],
    answer(200, '{"ids":[3]}'),
]);
var_dump(cometbox_publish('a', 'first', $f[0]));
var_dump(cometbox_publish('a', 'second', $f[0]));
var_dump(cometbox_publish('a', 'third', $f[0]));
echo 'connections the server saw: ', count(glob($f[3] . '/request-*')), "\n";
fake_stop($f);

// A kept connection that the server closed while idle is noticed before use.
$f = fake_server([
    ['raw' => "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ids\":[4]}"],
    ['raw' => "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ids\":[5]}"],
]);
var_dump(cometbox_publish('a', 'x', $f[0]));
usleep(100000); // let the server's close arrive; the next call must notice it either way
var_dump(cometbox_publish('a', 'y', $f[0]));
fake_stop($f);

// A server that never answers the second request on a kept connection: a
// timeout, not a retry.
$f = fake_server([['raw' => "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ids\":[6]}", 'hold' => true]]);
var_dump(cometbox_publish('a', 'x', $f[0]));
show(fn() => cometbox_publish('a', 'y', $f[0], ['timeout' => 0.3]));
echo 'connections the server saw: ', count(glob($f[3] . '/request-*')), "\n";
fake_stop($f);
?>
--EXPECTF--
connections after 5 publishes: 1
connections after a batch: 1
bool(true)
int(3)
kept after Connection: close: 0
int(1)
int(2)
int(3)
connections the server saw: 3
int(4)
int(5)
int(6)
Cometbox\Exception 0/0 timeout | no answer within 0.3 s | cometbox: no answer from http://127.0.0.1:%d/publish within 0.3 s
connections the server saw: 1
