--TEST--
cometbox: arguments refused before anything is sent
--EXTENSIONS--
cometbox
--FILE--
<?php
require __DIR__ . '/cometbox.inc';
// Nothing listens here: a check that let a call through would say connection_failed.
$url = dead_url();
$o = ['timeout' => 2];

echo "-- queue names\n";
foreach (['', str_repeat('q', 129), 'a b', 'a,b', "a\0b", "caf\u{E9}"] as $queue) {
    show(fn() => cometbox_publish($queue, 'x', $url, $o));
}
show(fn() => cometbox_publish_json('a/b', 1, $url, $o));
show(fn() => cometbox_publish_many([['queue' => 'ok', 'data' => 'x'], ['queue' => '', 'data' => 'x']], $url, $o));

echo "-- text\n";
foreach (["ab\x80", "ab\xC3", "\xC0\xAF", "x\xE0\x80\xAF", "ok \xED\xA0\x80", "\xF4\x90\x80\x80", "\u{E9}\xFF", "\x01\xFF",
          "a\0", "\x08", "\t\n\r\x0B", "\u{E9}\x0C", "\x1B[31m", "x\u{FFFE}", "\u{FFFF}"] as $text) {
    show(fn() => cometbox_publish('alice', $text, $url, $o));
}
show(fn() => cometbox_publish_many([['queue' => 'a', 'data' => 'x'], ['queue' => 'b', 'data' => "\x02"]], $url, $o));
echo "allowed: ";
show(fn() => cometbox_publish(str_repeat('q', 128), "\t\n\r\u{7F}\u{9F}\u{FFFD}\u{10FFFF}", $url, $o));

echo "-- json\n";
$deep = [];
for ($i = 0; $i < 600; $i++) {
    $deep = [$deep];
}
$rec = new stdClass();
$rec->self = $rec;
foreach ([NAN, ['a' => [1, INF]], ['k' => "\xFF"], STDIN, $deep, $rec] as $v) {
    show(fn() => cometbox_publish_json('alice', $v, $url, $o));
}
unset($rec->self); // no cycle left for valgrind to call a leak
show(fn() => cometbox_publish_many([['queue' => 'a', 'data' => NAN, 'json' => true]], $url, $o));
try {
    cometbox_publish_json('alice', new class implements JsonSerializable {
        public function jsonSerialize(): mixed { throw new DomainException('from jsonSerialize'); }
    }, $url, $o);
} catch (DomainException $e) {
    echo get_class($e), ': ', $e->getMessage(), "\n";
}
// The texts are json_last_error_msg()'s.
json_encode(NAN);
echo json_last_error_msg(), "\n";

echo "-- batches\n";
$batches = [
    [],
    array_fill(0, 10001, ['queue' => 'a', 'data' => 'x']),
    ['hello'],
    [['queue' => 'a', 'data' => 'x'], null],
    [new stdClass()],
    [new class {}],
    [STDIN],
    [['queue' => 'a', 'data' => 'x', 'type' => 'json']],
    [['a', 'x']],
    [['data' => 'x']],
    [['queue' => 'a']],
    [['queue' => 'a', 'data' => 'x', 'json' => 1]],
    [['queue' => 5, 'data' => 'x']],
    [['queue' => 'a', 'data' => ['x']]],
    [['queue' => 'a', 'data' => 1.5]],
    [['queue' => 'a', 'data' => null]],
];
foreach ($batches as $b) {
    show(fn() => cometbox_publish_many($b, $url, $o));
}
$ref = ['queue' => 'a', 'data' => "\x03"];
$list = [&$ref];
show(fn() => cometbox_publish_many($list, $url, $o));

echo "-- urls and options\n";
foreach (['ftp://127.0.0.1:1802', '127.0.0.1:1802', 'http://', 'http://h:1/?a=1', 'http://h:1/#x', 'http://u:p@h:1',
          'http://h:1/a b', "http://h:1/\r\nX: y", 'http://h:0', 'http://h:65536', 'http://h:12x', 'http://[::1', 'http://h:1:2',
          'https://127.0.0.1:1802'] as $bad) {
    show(fn() => cometbox_publish('a', 'x', $bad, $o));
}
foreach ([['secrets' => 'x'], [0 => 'x'], ['timeout' => '5'], ['timeout' => 0], ['timeout' => -1.5], ['timeout' => NAN],
          ['timeout' => 86401], ['secret' => 5], ['secret' => 'a b'], ['secret' => "a\r\nX-Evil: 1"]] as $opts) {
    show(fn() => cometbox_publish('a', 'x', $url, $opts));
}
var_dump(ini_set('cometbox.timeout', '0'), ini_set('cometbox.timeout', 'abc'), ini_get('cometbox.timeout'));
ini_set('cometbox.url', 'nonsense');
show(fn() => cometbox_publish('a', 'x'));
?>
--EXPECTF--
-- queue names
Cometbox\Exception 0/0 invalid_argument | invalid queue name "": a queue name is 1 to 128 ASCII letters, digits and . _ : @ - | cometbox: invalid queue name "": a queue name is 1 to 128 ASCII letters, digits and . _ : @ -
Cometbox\Exception 0/0 invalid_argument | invalid queue name "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"...: a queue name is 1 to 128 ASCII letters, digits and . _ : @ - | cometbox: invalid queue name "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"...: a queue name is 1 to 128 ASCII letters, digits and . _ : @ -
Cometbox\Exception 0/0 invalid_argument | invalid queue name "a b": a queue name is 1 to 128 ASCII letters, digits and . _ : @ - | cometbox: invalid queue name "a b": a queue name is 1 to 128 ASCII letters, digits and . _ : @ -
Cometbox\Exception 0/0 invalid_argument | invalid queue name "a,b": a queue name is 1 to 128 ASCII letters, digits and . _ : @ - | cometbox: invalid queue name "a,b": a queue name is 1 to 128 ASCII letters, digits and . _ : @ -
Cometbox\Exception 0/0 invalid_argument | invalid queue name "a\x00b": a queue name is 1 to 128 ASCII letters, digits and . _ : @ - | cometbox: invalid queue name "a\x00b": a queue name is 1 to 128 ASCII letters, digits and . _ : @ -
Cometbox\Exception 0/0 invalid_argument | invalid queue name "caf\xC3\xA9": a queue name is 1 to 128 ASCII letters, digits and . _ : @ - | cometbox: invalid queue name "caf\xC3\xA9": a queue name is 1 to 128 ASCII letters, digits and . _ : @ -
Cometbox\Exception 0/0 invalid_argument | invalid queue name "a/b": a queue name is 1 to 128 ASCII letters, digits and . _ : @ - | cometbox: invalid queue name "a/b": a queue name is 1 to 128 ASCII letters, digits and . _ : @ -
Cometbox\Exception 0/0 invalid_argument | message 2: invalid queue name "": a queue name is 1 to 128 ASCII letters, digits and . _ : @ - | cometbox: message 2: invalid queue name "": a queue name is 1 to 128 ASCII letters, digits and . _ : @ -
-- text
Cometbox\Exception 0/0 invalid_argument | data is not valid UTF-8 (first bad byte at offset 2) | cometbox: data is not valid UTF-8 (first bad byte at offset 2)
Cometbox\Exception 0/0 invalid_argument | data is not valid UTF-8 (first bad byte at offset 2) | cometbox: data is not valid UTF-8 (first bad byte at offset 2)
Cometbox\Exception 0/0 invalid_argument | data is not valid UTF-8 (first bad byte at offset 0) | cometbox: data is not valid UTF-8 (first bad byte at offset 0)
Cometbox\Exception 0/0 invalid_argument | data is not valid UTF-8 (first bad byte at offset 1) | cometbox: data is not valid UTF-8 (first bad byte at offset 1)
Cometbox\Exception 0/0 invalid_argument | data is not valid UTF-8 (first bad byte at offset 3) | cometbox: data is not valid UTF-8 (first bad byte at offset 3)
Cometbox\Exception 0/0 invalid_argument | data is not valid UTF-8 (first bad byte at offset 0) | cometbox: data is not valid UTF-8 (first bad byte at offset 0)
Cometbox\Exception 0/0 invalid_argument | data is not valid UTF-8 (first bad byte at offset 2) | cometbox: data is not valid UTF-8 (first bad byte at offset 2)
Cometbox\Exception 0/0 invalid_argument | data is not valid UTF-8 (first bad byte at offset 1) | cometbox: data is not valid UTF-8 (first bad byte at offset 1)
Cometbox\Exception 0/0 invalid_argument | data contains U+0000 at byte offset 1, which XML cannot carry; publish it as JSON instead | cometbox: data contains U+0000 at byte offset 1, which XML cannot carry; publish it as JSON instead
Cometbox\Exception 0/0 invalid_argument | data contains U+0008 at byte offset 0, which XML cannot carry; publish it as JSON instead | cometbox: data contains U+0008 at byte offset 0, which XML cannot carry; publish it as JSON instead
Cometbox\Exception 0/0 invalid_argument | data contains U+000B at byte offset 3, which XML cannot carry; publish it as JSON instead | cometbox: data contains U+000B at byte offset 3, which XML cannot carry; publish it as JSON instead
Cometbox\Exception 0/0 invalid_argument | data contains U+000C at byte offset 2, which XML cannot carry; publish it as JSON instead | cometbox: data contains U+000C at byte offset 2, which XML cannot carry; publish it as JSON instead
Cometbox\Exception 0/0 invalid_argument | data contains U+001B at byte offset 0, which XML cannot carry; publish it as JSON instead | cometbox: data contains U+001B at byte offset 0, which XML cannot carry; publish it as JSON instead
Cometbox\Exception 0/0 invalid_argument | data contains U+FFFE at byte offset 1, which XML cannot carry; publish it as JSON instead | cometbox: data contains U+FFFE at byte offset 1, which XML cannot carry; publish it as JSON instead
Cometbox\Exception 0/0 invalid_argument | data contains U+FFFF at byte offset 0, which XML cannot carry; publish it as JSON instead | cometbox: data contains U+FFFF at byte offset 0, which XML cannot carry; publish it as JSON instead
Cometbox\Exception 0/0 invalid_argument | message 2: data contains U+0002 at byte offset 0, which XML cannot carry; publish it as JSON instead | cometbox: message 2: data contains U+0002 at byte offset 0, which XML cannot carry; publish it as JSON instead
allowed: Cometbox\Exception 0/0 connection_failed | Connection refused | cometbox: cannot reach http://127.0.0.1:%d/publish: Connection refused
-- json
Cometbox\Exception 0/0 invalid_argument | cannot encode data as JSON: Inf and NaN cannot be JSON encoded | cometbox: cannot encode data as JSON: Inf and NaN cannot be JSON encoded
Cometbox\Exception 0/0 invalid_argument | cannot encode data as JSON: Inf and NaN cannot be JSON encoded | cometbox: cannot encode data as JSON: Inf and NaN cannot be JSON encoded
Cometbox\Exception 0/0 invalid_argument | cannot encode data as JSON: Malformed UTF-8 characters, possibly incorrectly encoded | cometbox: cannot encode data as JSON: Malformed UTF-8 characters, possibly incorrectly encoded
Cometbox\Exception 0/0 invalid_argument | cannot encode data as JSON: Type is not supported | cometbox: cannot encode data as JSON: Type is not supported
Cometbox\Exception 0/0 invalid_argument | cannot encode data as JSON: Maximum stack depth exceeded | cometbox: cannot encode data as JSON: Maximum stack depth exceeded
Cometbox\Exception 0/0 invalid_argument | cannot encode data as JSON: Recursion detected | cometbox: cannot encode data as JSON: Recursion detected
Cometbox\Exception 0/0 invalid_argument | message 1: cannot encode data as JSON: Inf and NaN cannot be JSON encoded | cometbox: message 1: cannot encode data as JSON: Inf and NaN cannot be JSON encoded
DomainException: from jsonSerialize
Inf and NaN cannot be JSON encoded
-- batches
Cometbox\Exception 0/0 invalid_argument | a batch needs at least one message | cometbox: a batch needs at least one message
Cometbox\Exception 0/0 invalid_argument | a batch holds at most 10000 messages, got 10001 | cometbox: a batch holds at most 10000 messages, got 10001
Cometbox\Exception 0/0 invalid_argument | message 1: expected an array with "queue" and "data", got string | cometbox: message 1: expected an array with "queue" and "data", got string
Cometbox\Exception 0/0 invalid_argument | message 2: expected an array with "queue" and "data", got null | cometbox: message 2: expected an array with "queue" and "data", got null
Cometbox\Exception 0/0 invalid_argument | message 1: expected an array with "queue" and "data", got stdClass | cometbox: message 1: expected an array with "queue" and "data", got stdClass
Cometbox\Exception 0/0 invalid_argument | message 1: expected an array with "queue" and "data", got class@anonymous | cometbox: message 1: expected an array with "queue" and "data", got class@anonymous
Cometbox\Exception 0/0 invalid_argument | message 1: expected an array with "queue" and "data", got resource (stream) | cometbox: message 1: expected an array with "queue" and "data", got resource (stream)
Cometbox\Exception 0/0 invalid_argument | message 1: unknown key "type" (allowed: "queue", "data", "json") | cometbox: message 1: unknown key "type" (allowed: "queue", "data", "json")
Cometbox\Exception 0/0 invalid_argument | message 1: unknown key "0" (allowed: "queue", "data", "json") | cometbox: message 1: unknown key "0" (allowed: "queue", "data", "json")
Cometbox\Exception 0/0 invalid_argument | message 1: missing "queue" | cometbox: message 1: missing "queue"
Cometbox\Exception 0/0 invalid_argument | message 1: missing "data" | cometbox: message 1: missing "data"
Cometbox\Exception 0/0 invalid_argument | message 1: "json" must be a bool, got int | cometbox: message 1: "json" must be a bool, got int
Cometbox\Exception 0/0 invalid_argument | message 1: "queue" must be a string, got int | cometbox: message 1: "queue" must be a string, got int
Cometbox\Exception 0/0 invalid_argument | message 1: "data" must be a string unless "json" is true, got array | cometbox: message 1: "data" must be a string unless "json" is true, got array
Cometbox\Exception 0/0 invalid_argument | message 1: "data" must be a string unless "json" is true, got float | cometbox: message 1: "data" must be a string unless "json" is true, got float
Cometbox\Exception 0/0 invalid_argument | message 1: "data" must be a string unless "json" is true, got null | cometbox: message 1: "data" must be a string unless "json" is true, got null
Cometbox\Exception 0/0 invalid_argument | message 1: data contains U+0003 at byte offset 0, which XML cannot carry; publish it as JSON instead | cometbox: message 1: data contains U+0003 at byte offset 0, which XML cannot carry; publish it as JSON instead
-- urls and options
Cometbox\Exception 0/0 invalid_argument | invalid URL "ftp://127.0.0.1:%d": expected http://HOST:PORT with an optional path | cometbox: invalid URL "ftp://127.0.0.1:%d": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | invalid URL "127.0.0.1:%d": expected http://HOST:PORT with an optional path | cometbox: invalid URL "127.0.0.1:%d": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | invalid URL "http://": expected http://HOST:PORT with an optional path | cometbox: invalid URL "http://": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | invalid URL "http://h:1/?a=1": expected http://HOST:PORT with an optional path | cometbox: invalid URL "http://h:1/?a=1": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | invalid URL "http://h:1/#x": expected http://HOST:PORT with an optional path | cometbox: invalid URL "http://h:1/#x": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | invalid URL "http://u:p@h:1": expected http://HOST:PORT with an optional path | cometbox: invalid URL "http://u:p@h:1": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | invalid URL "http://h:1/a b": expected http://HOST:PORT with an optional path | cometbox: invalid URL "http://h:1/a b": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | invalid URL "http://h:1/\x0D\x0AX: y": expected http://HOST:PORT with an optional path | cometbox: invalid URL "http://h:1/\x0D\x0AX: y": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | invalid URL "http://h:0": expected http://HOST:PORT with an optional path | cometbox: invalid URL "http://h:0": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | invalid URL "http://h:65536": expected http://HOST:PORT with an optional path | cometbox: invalid URL "http://h:65536": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | invalid URL "http://h:12x": expected http://HOST:PORT with an optional path | cometbox: invalid URL "http://h:12x": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | invalid URL "http://[::1": expected http://HOST:PORT with an optional path | cometbox: invalid URL "http://[::1": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | invalid URL "http://h:1:2": expected http://HOST:PORT with an optional path | cometbox: invalid URL "http://h:1:2": expected http://HOST:PORT with an optional path
Cometbox\Exception 0/0 invalid_argument | the cometbox extension speaks plain http only; use the class with transport "curl" or "stream" for https | cometbox: the cometbox extension speaks plain http only; use the class with transport "curl" or "stream" for https
Cometbox\Exception 0/0 invalid_argument | unknown option "secrets" (allowed: "secret", "timeout") | cometbox: unknown option "secrets" (allowed: "secret", "timeout")
Cometbox\Exception 0/0 invalid_argument | unknown option "0" (allowed: "secret", "timeout") | cometbox: unknown option "0" (allowed: "secret", "timeout")
Cometbox\Exception 0/0 invalid_argument | option "timeout" must be a number of seconds, got string | cometbox: option "timeout" must be a number of seconds, got string
Cometbox\Exception 0/0 invalid_argument | option "timeout" must be more than 0 and at most 86400 seconds | cometbox: option "timeout" must be more than 0 and at most 86400 seconds
Cometbox\Exception 0/0 invalid_argument | option "timeout" must be more than 0 and at most 86400 seconds | cometbox: option "timeout" must be more than 0 and at most 86400 seconds
Cometbox\Exception 0/0 invalid_argument | option "timeout" must be more than 0 and at most 86400 seconds | cometbox: option "timeout" must be more than 0 and at most 86400 seconds
Cometbox\Exception 0/0 invalid_argument | option "timeout" must be more than 0 and at most 86400 seconds | cometbox: option "timeout" must be more than 0 and at most 86400 seconds
Cometbox\Exception 0/0 invalid_argument | option "secret" must be a string or null, got int | cometbox: option "secret" must be a string or null, got int
Cometbox\Exception 0/0 invalid_argument | option "secret" must be printable ASCII without spaces | cometbox: option "secret" must be printable ASCII without spaces
Cometbox\Exception 0/0 invalid_argument | option "secret" must be printable ASCII without spaces | cometbox: option "secret" must be printable ASCII without spaces
bool(false)
bool(false)
string(1) "5"
Cometbox\Exception 0/0 invalid_argument | invalid URL "nonsense": expected http://HOST:PORT with an optional path | cometbox: invalid URL "nonsense": expected http://HOST:PORT with an optional path
