--TEST--
cometbox: functions, Cometbox\Exception and ini defaults
--EXTENSIONS--
cometbox
--FILE--
<?php
var_dump(extension_loaded('cometbox'));
foreach (['cometbox_publish', 'cometbox_publish_json', 'cometbox_publish_many', 'cometbox_token'] as $f) {
    $r = new ReflectionFunction($f);
    echo $f, '(', implode(', ', array_map(fn($p) => $p->getType() . ' $' . $p->getName()
        . ($p->isOptional() ? ' = ' . var_export($p->getDefaultValue(), true) : ''), $r->getParameters())),
        '): ', $r->getReturnType(), "\n";
}
$c = new ReflectionClass('Cometbox\Exception');
var_dump($c->isInternal(), $c->getParentClass()->getName());
var_dump($c->getConstants());
var_dump(ini_get('cometbox.url'), ini_get('cometbox.timeout'), ini_get('cometbox.subscribe_secret'));
$e = new Cometbox\Exception('m', 503, 'unavailable', 'd', $p = new LogicException('p'));
var_dump($e->getMessage(), $e->getCode(), $e->getStatus(), $e->getErrorCode(), $e->getDetail(), $e->getPrevious() === $p);
$e = new Cometbox\Exception('only');
var_dump($e->getCode(), $e->getStatus(), $e->getErrorCode(), $e->getDetail(), $e->getPrevious());
try {
    new Cometbox\Exception();
} catch (ArgumentCountError $e) {
    echo get_class($e), "\n";
}
?>
--EXPECT--
bool(true)
cometbox_publish(string $queue, string $data, ?string $url = NULL, ?array $options = NULL): int
cometbox_publish_json(string $queue, mixed $value, ?string $url = NULL, ?array $options = NULL): int
cometbox_publish_many(array $messages, ?string $url = NULL, ?array $options = NULL): array
cometbox_token(array $queues, int $ttl = 3600, ?string $secret = NULL): string
bool(true)
string(16) "RuntimeException"
array(5) {
  ["INVALID_ARGUMENT"]=>
  string(16) "invalid_argument"
  ["CONNECTION_FAILED"]=>
  string(17) "connection_failed"
  ["TIMEOUT"]=>
  string(7) "timeout"
  ["BAD_RESPONSE"]=>
  string(12) "bad_response"
  ["HTTP_ERROR"]=>
  string(10) "http_error"
}
string(21) "http://127.0.0.1:1802"
string(1) "5"
string(0) ""
string(1) "m"
int(503)
int(503)
string(11) "unavailable"
string(1) "d"
bool(true)
int(0)
int(0)
string(0) ""
string(0) ""
NULL
ArgumentCountError
