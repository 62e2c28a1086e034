--TEST--
cometbox: cometbox_token() against a daemon with subscribe-auth = token
--EXTENSIONS--
cometbox
--INI--
zend.exception_ignore_args=0
--SKIPIF--
<?php require __DIR__ . '/cometbox.inc'; skip_without('COMETBOX_TOKEN_BROWSER_URL', 'COMETBOX_TOKEN_SECRET'); ?>
--FILE--
<?php
require __DIR__ . '/cometbox.inc';
$browser = env_url('COMETBOX_TOKEN_BROWSER_URL');
$secret = env_url('COMETBOX_TOKEN_SECRET');
$a = queue('alice');
$b = queue('room');
$x = queue('x');

function get_poll(string $browser, string $queues, string $token): string
{
    [$status, , $body] = http_get("$browser/poll/$queues?since=0&timeout=0&token=" . rawurlencode($token));
    // A JSON answer may end with "\n": a parser does not care, nor does this test.
    return "$status " . rtrim($body, "\n");
}

echo "-- format\n";
$before = time();
$t = cometbox_token(['k' => $a, 3 => $b], 60, $secret);
$after = time();
$parts = explode('.', $t);
$sig = array_pop($parts);
$expiry = array_shift($parts);
$list = implode('.', $parts);
var_dump($list === "$a,$b", (bool) preg_match('/^[A-Za-z0-9_-]{43}$/D', $sig));
var_dump($expiry >= $before + 60 && $expiry <= $after + 60);
$mac = hash_hmac('sha256', "cometbox1:$expiry:$list", $secret, true);
var_dump($sig === rtrim(strtr(base64_encode($mac), '+/', '-_'), '='));
// A key longer than SHA-256's block is hashed first, as in hash_hmac().
$long = str_repeat("\xA5", 65);
$u = explode('.', cometbox_token(['q'], 60, $long));
var_dump($u[2] === rtrim(strtr(base64_encode(hash_hmac('sha256', "cometbox1:$u[0]:q", $long, true)), '+/', '-_'), '='));

echo "-- the daemon\n";
echo get_poll($browser, $a, $t), "\n";
echo get_poll($browser, "$b,$a", $t), "\n";
[$status, $type] = http_get("$browser/events/$a?token=" . rawurlencode($t), true);
echo "$status $type\n";
echo get_poll($browser, $a, ''), "\n";
echo str_replace($x, 'X', get_poll($browser, $x, $t)), "\n";
echo str_replace($x, 'X', get_poll($browser, "$a,$x", $t)), "\n";
[$status, , $body] = http_get("$browser/events/$x?token=" . rawurlencode($t));
echo $status, ' ', str_replace($x, 'X', rtrim($body, "\n")), "\n";
echo get_poll($browser, $a, cometbox_token([$a], 60, 'another-secret-0123456789')), "\n";
echo get_poll($browser, $x, "$expiry.$a,$b,$x.$sig"), "\n";

echo "-- expiry\n";
// Valid while time() < EXPIRY = time() + 1: retried if a second boundary
// passed between making and using it.
for ($try = 0; $try < 5; $try++) {
    $t1 = cometbox_token([$a], 1, $secret);
    $e1 = (int) $t1;
    $got = get_poll($browser, $a, $t1);
    if ($got === '200 []') {
        break;
    }
}
echo $got, "\n";
$deadline = microtime(true) + 5;
while (microtime(true) < $e1 && microtime(true) < $deadline) {
    usleep(10000); // polling the clock, at most a little over a second
}
echo get_poll($browser, $a, $t1), "\n";

echo "-- ini cometbox.subscribe_secret\n";
ini_set('cometbox.subscribe_secret', $secret);
echo get_poll($browser, $a, cometbox_token([$a])), "\n";
echo get_poll($browser, $a, cometbox_token([$a], 60, null)), "\n";
show(fn() => cometbox_token([$a], 60, '')); // '' is no secret, not "use the ini"
ob_start();
phpinfo(INFO_MODULES);
$info = ob_get_clean();
var_dump(strpos($info, $secret));
echo preg_match('/^cometbox\.subscribe_secret => .*$/m', $info, $m) ? $m[0] : 'no row', "\n";
ini_set('cometbox.subscribe_secret', '');
show(fn() => cometbox_token([$a]));

echo "-- arguments\n";
$ok = str_repeat('s', 16);
show(fn() => cometbox_token(['a'], 60, str_repeat('s', 15)));
show(fn() => cometbox_token(['a'], 60, "$ok\0"));
show(fn() => cometbox_token([], 60, $ok));
show(fn() => cometbox_token(array_map('strval', range(1, 17)), 60, $ok));
show(fn() => cometbox_token(['a', 'b c'], 60, $ok));
show(fn() => cometbox_token(['a,b'], 60, $ok));
show(fn() => cometbox_token([''], 60, $ok));
show(fn() => cometbox_token([str_repeat('q', 129)], 60, $ok));
show(fn() => cometbox_token(['a', 7], 60, $ok));
show(fn() => cometbox_token(['a', null], 60, $ok));
show(fn() => cometbox_token([new ArrayObject()], 60, $ok));
show(fn() => cometbox_token(['a', 'b', 'a'], 60, $ok));
show(fn() => cometbox_token(['a'], 0, $ok));
show(fn() => cometbox_token(['a'], -1, $ok));
show(fn() => cometbox_token(['a'], 31622401, $ok));
show(fn() => cometbox_token(['a'], PHP_INT_MAX, $ok));
show(fn() => cometbox_token(['short'], 0, 'short'));
$many = [];
for ($i = 0; $i < 16; $i++) {
    $many[] = sprintf('%02d', $i) . str_repeat('q', 126);
}
var_dump(strlen(cometbox_token($many, 31622400, $ok)));
$ref = 'a';
$arr = [&$ref, 'b'];
var_dump(explode('.', cometbox_token($arr, 60, $ok))[1]);

echo "-- the secret stays out of traces\n";
try {
    cometbox_token(['a b'], 60, $secret);
} catch (Cometbox\Exception $e) {
    $arg = $e->getTrace()[0]['args'][2];
    var_dump(get_class($arg), strpos($e->getTraceAsString(), $secret));
}
?>
--EXPECT--
-- format
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
-- the daemon
200 []
200 []
200 text/event-stream; charset=utf-8
403 {"error":"forbidden","detail":"a token is required (?token=)"}
403 {"error":"forbidden","detail":"token does not cover queue \"X\""}
403 {"error":"forbidden","detail":"token does not cover queue \"X\""}
403 {"error":"forbidden","detail":"token does not cover queue \"X\""}
403 {"error":"forbidden","detail":"token signature does not match"}
403 {"error":"forbidden","detail":"token signature does not match"}
-- expiry
200 []
403 {"error":"forbidden","detail":"token expired"}
-- ini cometbox.subscribe_secret
200 []
200 []
Cometbox\Exception 0/0 invalid_argument | a token needs a subscribe secret (option "subscribe_secret", or ini cometbox.subscribe_secret for the extension) | cometbox: a token needs a subscribe secret (option "subscribe_secret", or ini cometbox.subscribe_secret for the extension)
bool(false)
cometbox.subscribe_secret => (set, hidden) => no value
Cometbox\Exception 0/0 invalid_argument | a token needs a subscribe secret (option "subscribe_secret", or ini cometbox.subscribe_secret for the extension) | cometbox: a token needs a subscribe secret (option "subscribe_secret", or ini cometbox.subscribe_secret for the extension)
-- arguments
Cometbox\Exception 0/0 invalid_argument | the subscribe secret must be at least 16 bytes, got 15 | cometbox: the subscribe secret must be at least 16 bytes, got 15
Cometbox\Exception 0/0 invalid_argument | the subscribe secret must not contain NUL bytes | cometbox: the subscribe secret must not contain NUL bytes
Cometbox\Exception 0/0 invalid_argument | a token covers 1 to 16 queues, got 0 | cometbox: a token covers 1 to 16 queues, got 0
Cometbox\Exception 0/0 invalid_argument | a token covers 1 to 16 queues, got 17 | cometbox: a token covers 1 to 16 queues, got 17
Cometbox\Exception 0/0 invalid_argument | queue 2: invalid queue name "b c": a queue name is 1 to 128 ASCII letters, digits and . _ : @ - | cometbox: queue 2: invalid queue name "b c": a queue name is 1 to 128 ASCII letters, digits and . _ : @ -
Cometbox\Exception 0/0 invalid_argument | queue 1: invalid queue name "a,b": a queue name is 1 to 128 ASCII letters, digits and . _ : @ - | cometbox: queue 1: invalid queue name "a,b": a queue name is 1 to 128 ASCII letters, digits and . _ : @ -
Cometbox\Exception 0/0 invalid_argument | queue 1: invalid queue name "": a queue name is 1 to 128 ASCII letters, digits and . _ : @ - | cometbox: queue 1: invalid queue name "": a queue name is 1 to 128 ASCII letters, digits and . _ : @ -
Cometbox\Exception 0/0 invalid_argument | queue 1: invalid queue name "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"...: a queue name is 1 to 128 ASCII letters, digits and . _ : @ - | cometbox: queue 1: invalid queue name "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"...: a queue name is 1 to 128 ASCII letters, digits and . _ : @ -
Cometbox\Exception 0/0 invalid_argument | queue 2: expected a string, got int | cometbox: queue 2: expected a string, got int
Cometbox\Exception 0/0 invalid_argument | queue 2: expected a string, got null | cometbox: queue 2: expected a string, got null
Cometbox\Exception 0/0 invalid_argument | queue 1: expected a string, got ArrayObject | cometbox: queue 1: expected a string, got ArrayObject
Cometbox\Exception 0/0 invalid_argument | queue 3: duplicate queue name "a" | cometbox: queue 3: duplicate queue name "a"
Cometbox\Exception 0/0 invalid_argument | ttl must be 1 to 31622400 seconds, got 0 | cometbox: ttl must be 1 to 31622400 seconds, got 0
Cometbox\Exception 0/0 invalid_argument | ttl must be 1 to 31622400 seconds, got -1 | cometbox: ttl must be 1 to 31622400 seconds, got -1
Cometbox\Exception 0/0 invalid_argument | ttl must be 1 to 31622400 seconds, got 31622401 | cometbox: ttl must be 1 to 31622400 seconds, got 31622401
Cometbox\Exception 0/0 invalid_argument | ttl must be 1 to 31622400 seconds, got 9223372036854775807 | cometbox: ttl must be 1 to 31622400 seconds, got 9223372036854775807
Cometbox\Exception 0/0 invalid_argument | the subscribe secret must be at least 16 bytes, got 5 | cometbox: the subscribe secret must be at least 16 bytes, got 5
int(2118)
string(3) "a,b"
-- the secret stays out of traces
string(23) "SensitiveParameterValue"
bool(false)
