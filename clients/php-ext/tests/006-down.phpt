--TEST--
cometbox: refused, unaccepted and never-connecting servers fail within the timeout
--EXTENSIONS--
cometbox
--INI--
cometbox.timeout=0.5
--FILE--
<?php
require __DIR__ . '/cometbox.inc';

$t = microtime(true);
show(fn() => cometbox_publish('alice', 'x', dead_url()));
var_dump(microtime(true) - $t < 0.5);

// Listening, never accepting: connected by the kernel, no answer ever.
$srv = stream_socket_server('tcp://127.0.0.1:0');
$url = 'http://' . stream_socket_get_name($srv, false);
$t = microtime(true);
show(fn() => cometbox_publish('alice', 'x', $url));
$e = microtime(true) - $t;
var_dump($e >= 0.45 && $e < 2.0);

// A full backlog: connect() itself never completes.
$srv2 = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr, STREAM_SERVER_BIND | STREAM_SERVER_LISTEN,
    stream_context_create(['socket' => ['backlog' => 0]]));
$name = stream_socket_get_name($srv2, false);
$filler = stream_socket_client("tcp://$name");
$t = microtime(true);
show(fn() => cometbox_publish_many([['queue' => 'a', 'data' => 'x']], "http://$name", ['timeout' => 0.3]));
$e = microtime(true) - $t;
var_dump($e >= 0.25 && $e < 2.0);

// A name that does not resolve.
show(fn() => cometbox_publish('alice', 'x', 'http://no-such-host.invalid:1802'));
?>
--EXPECTF--
Cometbox\Exception 0/0 connection_failed | Connection refused | cometbox: cannot reach http://127.0.0.1:%d/publish: Connection refused
bool(true)
Cometbox\Exception 0/0 timeout | no answer within 0.5 s | cometbox: no answer from http://127.0.0.1:%d/publish within 0.5 s
bool(true)
Cometbox\Exception 0/0 timeout | no answer within 0.3 s | cometbox: no answer from http://127.0.0.1:%d/publish within 0.3 s
bool(true)
Cometbox\Exception 0/0 connection_failed | cannot resolve no-such-host.invalid: %s | cometbox: cannot reach http://no-such-host.invalid:1802/publish: cannot resolve no-such-host.invalid: %s
